"""Rotated names: plain name order is time order (compressed or not, several per second),
odd names are ignored rather than fatal, and compressions in progress are recognised."""

from __future__ import annotations

import calendar
import os
import subprocess
from pathlib import Path

from gateway.logfiles import compress
from gateway.logfiles.naming import leftovers, new_name, parse, rotated_files, temporary

T0 = float(calendar.timegm((2025, 3, 1, 10, 0, 0)))
ACTIVE = Path("/logs/o.log")


def _names(count_per_second: list[int]) -> list[str]:
    """Names given by ``new_name`` for rotations at T0, T0+1...: ``count`` in each second."""
    names: list[str] = []
    for second, count in enumerate(count_per_second):
        for _ in range(count):
            path = new_name(ACTIVE, T0 + second, names)
            assert path is not None
            names.append(path.name)
    return names


def test_name_order_is_time_order_compressed_or_not() -> None:
    in_order = _names([3, 1, 12])
    # Any mix of compressed and plain files: sorting the names gives them in time order.
    mixed = [n + ".gz" if i % 2 == 0 else n for i, n in enumerate(in_order)]
    assert sorted(mixed) == mixed
    assert [f.path.name for f in rotated_files(ACTIVE, mixed)] == mixed
    assert in_order[:2] == ["o.log.20250301T100000Z-000", "o.log.20250301T100000Z-001"]


def test_ls_lists_them_in_time_order(tmp_path: Path) -> None:
    names = _names([2, 11])
    mixed = [n + ".gz" if i % 3 == 0 else n for i, n in enumerate(names)]
    for name in mixed:
        (tmp_path / name).write_bytes(b"")
    for locale in ("C", "C.UTF-8"):
        env = {**os.environ, "LC_ALL": locale}
        listed = subprocess.run(
            ["sh", "-c", "ls o.log.*Z-*"], cwd=tmp_path, env=env, capture_output=True,
            text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert listed == mixed, locale


def test_a_second_is_full_after_max_seq_rotations() -> None:
    names = [f"o.log.20250301T100000Z-{n:03d}" for n in range(1000)]
    assert new_name(ACTIVE, T0, names) is None
    assert new_name(ACTIVE, T0 + 1, names) == ACTIVE.with_name("o.log.20250301T100001Z-000")


def test_names_of_earlier_versions_are_still_read() -> None:
    old = ["o.log.20250301T100000Z.gz", "o.log.20250301T100000Z-1", "o.log.20250301T100001Z"]
    assert [(f.rotated_at, f.seq) for f in rotated_files(ACTIVE, old)] == [
        (T0, 0), (T0, 1), (T0 + 1, 0)
    ]  # fmt: skip
    path = new_name(ACTIVE, T0, old)
    assert path is not None and path.name == "o.log.20250301T100000Z-002"


def test_a_name_with_an_impossible_date_is_not_a_rotated_file() -> None:
    assert parse(ACTIVE, "o.log.20251399T000000Z") is None
    assert parse(ACTIVE, "o.log.20250230T250000Z-001.gz") is None
    assert rotated_files(ACTIVE, ["o.log.20251399T000000Z", "o.log.20250301T100000Z-000"]) == [
        parse(ACTIVE, "o.log.20250301T100000Z-000")
    ]


def test_temporary_names_are_unique_and_recognised_as_leftovers() -> None:
    plain = ACTIVE.with_name("o.log.20250301T100000Z-000")
    tmp = temporary(plain)
    assert tmp.name == f"o.log.20250301T100000Z-000.gz.tmp.{os.getpid()}"
    names = [tmp.name, "o.log.20250301T100000Z-001.gz.tmp", plain.name, "o.log.lock"]
    assert parse(ACTIVE, tmp.name) is None
    assert leftovers(ACTIVE, names) == [tmp, ACTIVE.with_name(names[1])]


def test_compress_refuses_a_temporary_file_that_exists(tmp_path: Path) -> None:
    plain = tmp_path / "o.log.20250301T100000Z-000"
    plain.write_bytes(b"a line\n")
    other = temporary(plain)
    other.write_bytes(b"another writer's compression")
    try:
        compress.compress(plain, other)
    except FileExistsError:
        pass
    else:
        raise AssertionError("compress wrote into a temporary file it did not create")
    assert other.read_bytes() == b"another writer's compression"  # not removed either
    assert plain.exists()
    other.unlink()
    done = compress.compress(plain, other)
    assert done.source_bytes == 7 and not other.exists() and not plain.exists()
