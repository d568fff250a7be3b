"""``rotation:`` settings: defaults, the daily time, next rotation times, and errors that
name the key's path (``logging.rotation``, ``exporters.<id>.rotation``)."""

from __future__ import annotations

import calendar

import pytest
import yaml

from gateway.config.loading import parse_config
from gateway.logfiles.config import DAY, MIB, RotationConfig
from tests.gateway.config.helpers import issues_of, patched


def test_defaults() -> None:
    config = RotationConfig()
    assert config.max_size == 100 * MIB
    assert config.daily_at == "00:00"
    assert config.compress is True
    assert config.max_age == 30 * DAY
    assert config.max_files == 30  # with daily files kept 30 days: size can't fill a disk
    assert config.free_space.warning.ratio == 0.10
    assert config.free_space.warning.bytes == 1024 * MIB


def test_values_in_units() -> None:
    config = RotationConfig.model_validate(
        {"max_size": "10MiB", "max_age": "7d", "max_files": 3, "daily_at": None}
    )
    assert (config.max_size, config.max_age, config.max_files) == (10 * MIB, 7 * DAY, 3)
    assert config.next_daily(0.0) is None


def test_unquoted_yaml_time_is_taken_back() -> None:
    data = yaml.safe_load("daily_at: 12:30")  # YAML 1.1: 12 * 60 + 30
    assert data == {"daily_at": 750}
    assert RotationConfig.model_validate(data).daily_at == "12:30"


@pytest.mark.parametrize(
    ("daily_at", "after", "expected"),
    [
        ("00:00", (2025, 3, 1, 10, 0, 0), (2025, 3, 2, 0, 0, 0)),
        ("12:30", (2025, 3, 1, 10, 0, 0), (2025, 3, 1, 12, 30, 0)),
        ("12:30", (2025, 3, 1, 12, 30, 0), (2025, 3, 2, 12, 30, 0)),  # strictly after
        ("23:59", (2025, 12, 31, 23, 59, 30), (2026, 1, 1, 23, 59, 0)),
    ],
)
def test_next_daily(daily_at: str, after: tuple[int, ...], expected: tuple[int, ...]) -> None:
    config = RotationConfig(daily_at=daily_at)
    assert config.next_daily(float(calendar.timegm(after))) == calendar.timegm(expected)


def test_logging_file_and_rotation_in_the_config() -> None:
    text = patched(("logging", {"file": "/var/log/otelgate.log", "rotation": {"max_size": "1MiB"}}))
    config = parse_config(text, environ={})
    assert config.logging.file == "/var/log/otelgate.log"
    assert config.logging.rotation.max_size == MIB
    assert parse_config(patched(), environ={}).logging.file is None


def test_errors_name_the_keys_path() -> None:
    rotation = {
        "daily_at": "25:00",
        "max_size": "lots",
        "max_age": 0,
        "max_files": -1,
        "free_space": {"warning": {"ratio": 1.5, "bytes": 0}},
        "zip": True,
    }
    text = patched(("logging", {"file": "", "rotation": rotation}))
    assert sorted(issues_of(text)) == sorted([
        ("logging.file", "must not be empty"),
        ("logging.rotation.daily_at",
         "must be a UTC time of day HH:MM, 00:00 to 23:59, e.g. \"00:00\" (got '25:00')"),
        ("logging.rotation.max_size",
         "invalid size 'lots' (use bytes, or e.g. 512KiB, 100MiB, 1GiB)"),
        ("logging.rotation.max_age", "must be greater than 0 (got 0)"),
        ("logging.rotation.max_files", "must be at least 0 (got -1)"),
        ("logging.rotation.free_space.warning.ratio", "must be at most 1 (got 1.5)"),
        ("logging.rotation.zip", "unknown key"),
    ])  # fmt: skip


def test_critical_must_not_ask_for_more_than_warning() -> None:
    text = patched(
        ("logging", {"rotation": {"free_space": {"critical": {"ratio": 0.5, "bytes": 0}}}})
    )
    assert issues_of(text) == [
        ("logging.rotation.free_space",
         "critical must not ask for more free space than warning "
         "(its ratio and its bytes must each be at most warning's)"),
    ]  # fmt: skip
    text = patched(
        ("logging", {"rotation": {"free_space": {"warning": {"ratio": None, "bytes": None}}}})
    )
    assert issues_of(text) == [
        ("logging.rotation.free_space.warning", "give ratio, bytes or both"),
    ]  # fmt: skip


def test_file_exporter_rotation_errors_and_deprecated_keys() -> None:
    text = patched(
        ("exporters.file.rotation", {"max_size": "1MiB", "max_megabytes": 2, "daily_at": "7"})
    )
    assert sorted(issues_of(text)) == sorted([
        ("exporters.file.rotation.daily_at",
         "must be a UTC time of day HH:MM, 00:00 to 23:59, e.g. \"00:00\" (got '7')"),
    ])  # fmt: skip
    text = patched(("exporters.file.rotation", {"max_size": "1MiB", "max_megabytes": 2}))
    assert issues_of(text) == [
        ("exporters.file.rotation",
         "max_megabytes (deprecated) and max_size are both set: keep max_size"),
    ]  # fmt: skip
