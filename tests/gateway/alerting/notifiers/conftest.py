"""Fixtures of the notifier tests: one recording HTTP server for the whole package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.recorder import Recorder, recording_server


@pytest.fixture(scope="package")
def _shared_server() -> Iterator[Recorder]:
    with recording_server() as server:
        yield server


@pytest.fixture
def server(_shared_server: Recorder) -> Recorder:
    """The recording server, with nothing received yet and answering 200."""
    _shared_server.reset()
    return _shared_server
