"""Two writers on one file are refused at load: ``logging.file``, the ``file`` exporters'
``path`` and ``audit.path`` (resolved) must all name different files, whatever the spelling."""

from __future__ import annotations

import os
from pathlib import Path

from tests.gateway.config.helpers import issues_of, patched


def test_logging_file_and_a_file_exporter_on_one_path(tmp_path: Path) -> None:
    out = os.path.realpath(tmp_path / "out.jsonl")
    text = patched(
        ("exporters.file.path", str(tmp_path / "out.jsonl")),
        ("logging", {"file": str(tmp_path / "sub" / ".." / "out.jsonl")}),
    )
    assert issues_of(text) == [
        ("exporters.file.path",
         f"writes the same file as logging.file ({out}): give each its own path"),
    ]  # fmt: skip


def test_two_file_exporters_on_one_path_relative_and_absolute(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    text = patched(
        ("exporters.file.path", "out.jsonl"),
        ("exporters.file/b", {"path": str(tmp_path / "out.jsonl")}),
    )
    assert issues_of(text) == [
        ("exporters.file/b.path",
         f"writes the same file as exporters.file.path ({os.path.realpath('out.jsonl')}): "
         "give each its own path"),
    ]  # fmt: skip


def test_the_audit_trail_on_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "otelgate.log"
    text = patched(("logging", {"file": str(log)}), ("audit", {"path": str(log)}))
    real = os.path.realpath(log)
    assert issues_of(text) == [
        ("audit.path", f"writes the same file as logging.file ({real}): give each its own path"),
    ]


def test_a_disabled_audit_trail_and_distinct_paths_are_fine(tmp_path: Path) -> None:
    from gateway.config.loading import parse_config

    log = tmp_path / "otelgate.log"
    text = patched(
        ("logging", {"file": str(log)}),
        ("audit", {"enabled": False, "path": str(log)}),
        ("exporters.file/b", {"path": str(tmp_path / "b.jsonl")}),
    )
    assert parse_config(text, environ={}).logging.file == str(log)
