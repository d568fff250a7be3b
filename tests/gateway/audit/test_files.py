"""Reading the ends of trail files: backwards by lines, the last good entry, rotated names."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.audit import files
from gateway.audit.chain import GENESIS, SHA256, Entry, encode_entry
from gateway.audit.files import lines_backward, read_tail, rotated_files, rotated_name


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", []),
        (b"a\nbb\nccc\n", [b"ccc", b"bb", b"a"]),
        (b"a\nbb\npartial", [b"bb", b"a"]),  # an entry being written is not a line yet
        (b"partial", []),
        (b"\n\n", [b"", b""]),
    ],
)
def test_lines_backward(tmp_path: Path, content: bytes, expected: list[bytes]) -> None:
    path = tmp_path / "f"
    path.write_bytes(content)
    assert list(lines_backward(path)) == expected


def test_lines_backward_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "_BLOCK", 7)
    wanted = [f"line {i} ".encode() * (i % 4) for i in range(50)]
    path = tmp_path / "f"
    path.write_bytes(b"".join(line + b"\n" for line in wanted) + b"tail")
    assert list(lines_backward(path)) == wanted[::-1]
    assert list(lines_backward(path, end=len(wanted[0]) + 1)) == [wanted[0]]


def _line(seq: int) -> bytes:
    entry = Entry(seq, "2024-01-01T00:00:00.000Z", "audit.start", None, {}, SHA256, GENESIS)
    return encode_entry(entry)


def test_read_tail_finds_the_last_good_entry(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(_line(n) + b"\n" for n in (1, 2, 3)))
    tail = read_tail(path)
    assert tail.last is not None and tail.last.seq == 3 and tail.problem is None
    assert tail.previous_line == _line(2) and tail.good_end == tail.size
    path.write_bytes(path.read_bytes() + b'junk\n{"seq"')
    tail = read_tail(path)
    assert tail.last is not None and tail.last.seq == 3 and tail.problem is not None
    assert tail.size - tail.good_end == len(b'junk\n{"seq"')
    small = read_tail(path, max_bytes=len(_line(3)) + 20)  # the chunk starts mid-line
    assert small.last is not None and small.last.seq == 3 and small.previous_line is None


def test_rotated_names_never_overwrite(tmp_path: Path) -> None:
    active = tmp_path / "audit.jsonl"
    first = rotated_name(active, 1)
    assert first.name == "audit.000000000001.jsonl"
    first.write_bytes(b"")
    second = rotated_name(active, 1)
    assert second.name == "audit.000000000001-1.jsonl"
    second.write_bytes(b"")
    (tmp_path / "audit.000000000040.jsonl").write_bytes(b"")
    (tmp_path / "other.000000000002.jsonl").write_bytes(b"")
    assert [(n, p.name) for n, p in rotated_files(active)] == [
        (1, "audit.000000000001.jsonl"), (1, "audit.000000000001-1.jsonl"),
        (40, "audit.000000000040.jsonl"),
    ]  # fmt: skip
    assert rotated_name(tmp_path / "audit", 7).name == "audit.000000000007"


@pytest.mark.parametrize("tmp_suffix", [".gz.tmp", ".gz.tmp.4242.x7Qz"])
def test_compression_temp_names_plain_and_unique(tmp_path: Path, tmp_suffix: str) -> None:
    """``<rotated>.gz.tmp`` and a unique ``<rotated>.gz.tmp.<anything>`` (what
    gateway.logfiles.compress may write) are both a compression in progress: never listed
    as a trail file, removed at start, and never a rotation's target name."""
    active = tmp_path / "audit.jsonl"
    (tmp_path / "audit.000000000001.jsonl").write_bytes(b"")
    leftover = tmp_path / ("audit.000000000001.jsonl" + tmp_suffix)
    leftover.write_bytes(b"\x1f\x8bpartial")
    assert [p.name for _, p in rotated_files(active)] == ["audit.000000000001.jsonl"]
    assert files.interrupted(active) == [leftover]
    (tmp_path / "audit.000000000001.jsonl").unlink()  # a compression's temp file alone
    assert rotated_files(active) == []
    assert rotated_name(active, 1).name == "audit.000000000001-1.jsonl"


def test_the_logfiles_compression_temp_name_is_recognised(tmp_path: Path) -> None:
    """Whatever temporary name gateway.logfiles writes while compressing is a leftover here."""
    from gateway.logfiles import naming

    plain = tmp_path / "audit.000000000001.jsonl"
    plain.write_bytes(b"")
    leftover = naming.temporary(plain)
    leftover.write_bytes(b"\x1f\x8bpartial")
    active = tmp_path / "audit.jsonl"
    assert files.interrupted(active) == [leftover]
    assert [p for _, p in rotated_files(active)] == [plain]
