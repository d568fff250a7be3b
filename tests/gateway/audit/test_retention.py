"""Retention records a removal before it removes: a prune entry that cannot be written keeps
the file, a file that cannot be removed after its prune entry is harmless to ``verify``, and
a rotated file whose summary cannot be read is a ``cleanup`` problem, read once."""

from __future__ import annotations

import contextlib
import errno
from pathlib import Path

import pytest

from gateway.audit import retention, writer
from gateway.audit.chain import Entry, EntryError, parse_entry
from gateway.audit.files import Tail, open_member, rotated_files
from gateway.audit.trail import AuditTrail
from gateway.audit.verify import verify
from tests.gateway.audit.helpers import make_trail

FREE = (10**12, 10**11, 9 * 10**11)  # plenty of free space: the level is from failures only


def _rotating_trail(directory: Path, **kwargs: object) -> AuditTrail:
    """An open trail with three rotated files (nothing removed yet: no maintenance ran)."""
    options: dict[str, object] = {
        "max_size": 1024, "background": False, "usage": lambda p: FREE, **kwargs,
    }  # fmt: skip
    trail = make_trail(directory / "audit.jsonl", **options)  # type: ignore[arg-type]
    trail.open()
    while len(rotated_files(trail.path)) < 3:
        trail.record("config.reload", "ops", {"pad": "x" * 100})
    return trail


def _entries(directory: Path) -> list[Entry]:
    found = []
    for path in directory.iterdir():
        if path.name.endswith((".jsonl", ".jsonl.gz")):
            with open_member(path) as fh:
                for line in fh:
                    with contextlib.suppress(EntryError):  # the damaged file's line
                        found.append(parse_entry(line.rstrip(b"\n")))
    return sorted(found, key=lambda e: e.seq)


def _prunes(directory: Path) -> list[Entry]:
    return [e for e in _entries(directory) if e.action == "audit.prune"]


def test_a_prune_entry_that_cannot_be_written_keeps_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trail = _rotating_trail(tmp_path)
    oldest = rotated_files(trail.path)[0][1]
    trail.max_files = trail._upkeep.max_files = 1

    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    real = writer.write_all
    monkeypatch.setattr(writer, "write_all", disk_full)
    trail.maintain()
    assert oldest.exists() and len(rotated_files(trail.path)) == 3  # nothing removed
    assert _prunes(tmp_path) == []
    status = trail.status()
    assert status.level == "critical" and status.removed_files == {}
    assert verify([tmp_path]).ok  # the trail still starts at seq 1
    monkeypatch.setattr(writer, "write_all", real)
    trail.maintain()  # the disk has room again: removed, each recorded
    assert not oldest.exists() and len(rotated_files(trail.path)) == 1
    assert _prunes(tmp_path)[0].details["file"] == oldest.name
    trail.close()
    result = verify([tmp_path])
    assert result.ok, result.problem


def test_a_prune_entry_for_a_file_still_there_is_harmless(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trail = _rotating_trail(tmp_path)
    oldest = rotated_files(trail.path)[0][1]
    trail.max_files = trail._upkeep.max_files = 2
    real_unlink = Path.unlink

    def refuse(self: Path, missing_ok: bool = False) -> None:
        if self == oldest:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    trail.maintain()
    trail.maintain()
    assert oldest.exists()
    (prune,) = _prunes(tmp_path)  # recorded once, not at every pass
    assert prune.details["file"] == oldest.name
    status = trail.status()
    assert status.level == "warning" and "cleanup failed" in status.reasons[0]
    result = verify([tmp_path])  # the file is there and the prune entry names it: still OK
    assert result.ok, result.problem
    monkeypatch.setattr(Path, "unlink", real_unlink)
    trail.maintain()
    assert not oldest.exists() and len(_prunes(tmp_path)) == 1  # its entry was written already
    assert trail.status().level == "healthy"
    trail.close()
    result = verify([tmp_path])
    assert result.ok, result.problem


def test_an_unreadable_oldest_file_is_a_cleanup_problem_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rotating_trail(tmp_path).close()
    oldest = rotated_files(tmp_path / "audit.jsonl")[0][1]
    oldest.write_bytes(b"not an audit entry\n")  # damaged: nothing to record its removal by
    reads: list[Path] = []
    real = retention.read_tail

    def counting(path: Path) -> Tail:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(retention, "read_tail", counting)
    trail = make_trail(
        tmp_path / "audit.jsonl", max_size=1024, max_files=1, background=False,
        usage=lambda p: FREE,
    )  # fmt: skip
    trail.open()
    trail.maintain()
    status = trail.status()
    assert status.level == "warning", status
    assert any("cleanup failed" in r and oldest.name in r for r in status.reasons)
    assert oldest.exists() and _prunes(tmp_path) == []
    assert reads.count(oldest) == 1
    trail.maintain()
    trail.maintain()
    assert reads.count(oldest) == 1  # remembered until the file changes
    assert trail.status().level == "warning"
    oldest.write_bytes(b"still not an entry, but changed\n")
    trail.maintain()
    assert reads.count(oldest) == 2
    trail.close()
