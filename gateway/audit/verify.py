"""Checking an audit trail: every link, every ``seq``, across files (``otelgate audit verify``).

Files are put in chain order by the ``seq`` of their first entries, whatever their names. The
chain detects an edited, removed, inserted or reordered entry and a removed file, but not the
removal of the newest entries (nothing follows them): ``head`` is an anchor for that, a hash
taken earlier (``GET /audit`` or the trail's stop log line) that must still be in the trail.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from gateway.audit.chain import (
    AUDIT_PRUNE,
    AUDIT_RECOVER,
    GENESIS,
    HMAC_SHA256,
    Entry,
    EntryError,
    Linker,
    parse_entry,
)
from gateway.audit.files import GZ, is_gzip, open_member, plain_name, read_first_entry

#: What reading a file may raise: a damaged gzip member (bad CRC, cut short, bad data) or a
#: file that cannot be read at all (:func:`_is_damage` tells them apart).
GZIP_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class Problem:
    """Where the chain breaks: ``file``, 1-based ``line``, a ``kind`` and what is wrong."""

    file: Path
    line: int
    kind: str
    what: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.what}"


@dataclass
class VerifyResult:
    """The outcome: ``ok`` only when every link was checked and held."""

    entries: int = 0
    files: list[Path] = field(default_factory=list)
    head: str | None = None
    head_seq: int | None = None
    problem: Problem | None = None
    needs_key: Problem | None = None  # the first HMAC link that could not be checked
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem found and nothing left unchecked."""
        return self.problem is None and self.needs_key is None


@dataclass
class _Damage:
    file: Path
    line: int
    kind: str
    what: str
    discarded: int = 0

    def problem(self) -> Problem:
        return Problem(self.file, self.line, self.kind, self.what)


def trail_files(paths: Sequence[Path]) -> list[Path]:
    """``paths`` with each directory replaced by its ``*.jsonl`` and ``*.jsonl.gz`` files;
    FileNotFoundError."""
    found: dict[Path, Path] = {}
    for path in paths:
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and child.name.endswith((".jsonl", ".jsonl" + GZ)):
                    found.setdefault(child.resolve(), child)
        elif path.exists():
            found.setdefault(path.resolve(), path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    if not found:
        raise FileNotFoundError(f"no audit files (*.jsonl) in {', '.join(map(str, paths))}")
    return list(found.values())


def verify(
    paths: Sequence[Path], *, key: bytes | None = None, head: str | None = None,
    partial: bool = False,
) -> VerifyResult:  # fmt: skip
    """Check the trail in ``paths`` (files or directories) and say where it first breaks.

    With ``key``, HMAC links are checked and the trail must be HMAC-linked; without it they
    are reported in ``needs_key``. ``head`` must be the hash of some entry. ``partial``
    accepts a trail whose beginning is not given (otherwise it must start at the genesis
    entry, or after entries an ``audit.prune`` entry accounts for). OSError when a file
    cannot be read (``path: cannot read: Permission denied``): nothing is known of it.
    """
    result = VerifyResult()
    ordered = _in_chain_order(_without_compressed_twins(trail_files(paths), result), result)
    if result.problem is not None:
        return result
    result.files = ordered
    checker = _Checker(Linker(key), partial, result)
    checker.head_wanted = head.strip().lower() if head else None
    for path in ordered:
        if (problem := checker.check_file(path)) is not None:
            result.problem = problem
            return result
    result.problem = checker.finish(checker.head_wanted, ordered)
    return result


def _without_compressed_twins(files: list[Path], result: VerifyResult) -> list[Path]:
    """``files`` without a plain file whose ``.gz`` is given too (a compression cut short
    after its rename: the ``.gz`` is complete, and the next start removes the plain one)."""
    packed = {(p.parent.resolve(), plain_name(p)) for p in files if is_gzip(p)}
    kept = []
    for path in files:
        if not is_gzip(path) and (path.parent.resolve(), path.name) in packed:
            result.notes.append(f"{path}: read from its compressed copy {path.name}{GZ}")
            continue
        kept.append(path)
    return kept


def _in_chain_order(files: list[Path], result: VerifyResult) -> list[Path]:
    firsts: list[tuple[int, Path]] = []
    for path in files:
        try:
            first = read_first_entry(path)
        except EntryError as exc:
            what = f"bad entry: {exc} (the file cannot be placed in the chain)"
            result.problem = Problem(path, 1, "bad_json", what)
            return []
        except GZIP_ERRORS as exc:
            if not _is_damage(path, exc):
                raise _cannot_read(path, exc) from exc
            result.problem = _bad_gzip(path, 1, exc)
            return []
        if first is None:
            result.notes.append(f"{path}: empty, skipped")
            continue
        firsts.append((first.seq, path))
    firsts.sort(key=lambda item: item[0])
    for (seq, one), (other_seq, other) in itertools.pairwise(firsts):
        if seq == other_seq:
            what = f"file chain broken: {one.name} and {other.name} both start at seq {seq}"
            result.problem = Problem(other, 1, "file_gap", what)
            return []
    return [path for _, path in firsts]


class _Checker:
    def __init__(self, linker: Linker, partial: bool, result: VerifyResult) -> None:
        self.linker, self.partial, self.result = linker, partial, result
        self.last: Entry | None = None
        self.last_line = b""
        self.last_at: tuple[Path, int] = (Path(), 0)
        self.start: tuple[Path, int, Entry] | None = None  # a first entry that is not seq 1
        self.prunes: set[tuple[object, object]] = set()
        self.saw_hmac = False
        self.carry: _Damage | None = None  # damage at the end of the previous file
        self.anchor_at: tuple[Path, int] | None = None
        self.head_wanted: str | None = None
        self._lines_read = 0  # complete lines of the current file read so far

    def check_file(self, path: Path) -> Problem | None:
        try:
            return self._check_lines(path)
        except GZIP_ERRORS as exc:
            if not _is_damage(path, exc):
                raise _cannot_read(path, exc) from exc
            return _bad_gzip(path, self._lines_read + 1, exc)

    def _check_lines(self, path: Path) -> Problem | None:
        damage: _Damage | None = None
        offset = good_end = line_no = self._lines_read = 0
        with open_member(path) as fh:
            for raw in fh:
                line_no += 1
                self._lines_read = line_no
                offset += len(raw)
                if self.carry is not None and line_no == 1 and not _parses(raw):
                    return self.carry.problem()
                if not raw.endswith(b"\n"):
                    what = "truncated: the last line has no newline (cut in the middle of an entry)"
                    damage = damage or _Damage(path, line_no, "truncated", what)
                    break
                line = raw[:-1]
                try:
                    entry = parse_entry(line)
                except EntryError as exc:
                    damage = damage or _Damage(path, line_no, "bad_json", f"bad entry: {exc}")
                    continue
                if damage is not None:
                    return damage.problem()  # good entries after a bad line
                if (problem := self._entry(path, line_no, line, entry)) is not None:
                    return problem
                good_end = offset
        if damage is not None:
            damage.discarded = offset - good_end
            self.carry = damage
        return None

    def _entry(self, path: Path, line_no: int, line: bytes, entry: Entry) -> Problem | None:
        first_in_file = line_no == 1
        if first_in_file and self.carry is not None:
            carry, details = self.carry, entry.details
            if not (
                entry.action == AUDIT_RECOVER
                and details.get("previous_file") == plain_name(carry.file)
                and details.get("discarded_bytes") == carry.discarded
            ):
                return carry.problem()
            self.result.notes.append(
                f"{carry.file}:{carry.line}: {carry.discarded} damaged bytes at the end of the "
                f"file, recorded by the audit.recover entry at {path}:{line_no}"
            )
            self.carry = None
        problem = self._link(path, line_no, entry, first_in_file)
        if problem is not None:
            return problem
        if entry.action == AUDIT_PRUNE:
            self.prunes.add((entry.details.get("last_seq"), entry.details.get("last_hash")))
        self.result.entries += 1
        self.last, self.last_line, self.last_at = entry, line, (path, line_no)
        own = self._hash(line, entry.alg)
        self.result.head, self.result.head_seq = own, entry.seq
        if own is not None and own == self.head_wanted:
            self.anchor_at = (path, line_no)
        return None

    def _link(self, path: Path, line_no: int, entry: Entry, first_in_file: bool) -> Problem | None:
        def problem(kind: str, what: str) -> Problem:
            return Problem(path, line_no, kind, what)

        if entry.alg == HMAC_SHA256:
            self.saw_hmac = True
        last = self.last
        if last is None:
            if entry.seq == 1 and entry.prev != GENESIS:
                return problem("missing_genesis", "missing genesis: seq 1 does not start the chain")
            if entry.seq != 1 and self.partial:
                self.result.notes.append(f"starts at seq {entry.seq} (--partial: not checked)")
            elif entry.seq != 1:
                self.start = (path, line_no, entry)
            return None
        if entry.seq != last.seq + 1:
            missing = entry.seq - last.seq - 1
            if first_in_file:
                what = (
                    f"file chain broken: {path.name} starts at seq {entry.seq} but "
                    f"{self.last_at[0].name} ends at seq {last.seq}"
                )
                gap = f" ({missing} entries missing: a file removed?)" if missing > 0 else ""
                return problem("file_gap", what + gap)
            if missing < 0:
                what = f"out of order: seq {entry.seq} after seq {last.seq}"
                return problem("out_of_order", what)
            if (moved := _line_of_seq(path, line_no, last.seq + 1)) is not None:
                what = (
                    f"out of order: seq {entry.seq} after seq {last.seq} "
                    f"(seq {last.seq + 1} is at line {moved})"
                )
                return problem("out_of_order", what)
            what = f"seq gap: seq {entry.seq} after seq {last.seq} ({missing} missing)"
            return problem("seq_gap", what)
        if entry.alg == HMAC_SHA256 and not self.linker.keyed:
            if self.result.needs_key is None:
                what = "HMAC-linked: give the key (--key-file) to check the links"
                self.result.needs_key = problem("needs_key", what)
            return None
        if entry.alg != HMAC_SHA256 and self.linker.keyed and self.saw_hmac:
            what = "downgrade: a plain SHA-256 link after HMAC links (written without the key)"
            return problem("downgrade", what)
        if entry.prev != self.linker.link(self.last_line, entry.alg):
            at = self.last_at
            where = f"line {at[1]}" if at[0] == path else f"{at[0].name} line {at[1]}"
            what = (
                f"bad hash link: prev does not match the entry before it ({where}): that entry "
                "or this one was changed, or entries between them were removed or reordered"
            )
            return problem("bad_link", what)
        return None

    def _hash(self, line: bytes, alg: str) -> str | None:
        if alg == HMAC_SHA256 and not self.linker.keyed:
            return None
        return self.linker.link(line, alg)

    def finish(self, head: str | None, files: list[Path]) -> Problem | None:
        if self.carry is not None:
            return self.carry.problem()
        if self.last is None:
            return Problem(files[0] if files else Path(), 0, "empty", "no audit entries")
        if self.start is not None:
            path, line_no, entry = self.start
            if (entry.seq - 1, entry.prev) not in self.prunes:
                what = (
                    f"missing genesis: the trail starts at seq {entry.seq} and no audit.prune "
                    "entry accounts for the entries before it (a file removed? --partial "
                    "checks part of a trail)"
                )
                return Problem(path, line_no, "missing_genesis", what)
            self.result.notes.append(f"entries before seq {entry.seq} were pruned (audit.prune)")
        if self.linker.keyed and not self.saw_hmac:
            what = "not HMAC-linked: a key was given but every link is plain SHA-256"
            return Problem(files[0], 1, "not_hmac", what)
        return self._check_anchor(head)

    def _check_anchor(self, head: str | None) -> Problem | None:
        if head is None:
            return None
        if self.anchor_at is not None:
            path, line_no = self.anchor_at
            self.result.notes.append(f"anchor {head} is the entry at {path}:{line_no}")
            return None
        if self.result.needs_key is not None:
            return None  # cannot compute HMAC hashes: the anchor stays unchecked
        path, line_no = self.last_at
        what = (
            f"head anchor {head} is not the hash of any entry: the entries from it on were "
            f"removed or changed (the trail ends at seq {self.result.head_seq})"
        )
        return Problem(path, line_no, "head_missing", what)


def _is_damage(path: Path, exc: BaseException) -> bool:
    """Whether ``exc``, raised reading ``path``, says its gzip member is damaged. An error
    with an errno (permission denied, an I/O error) is not damage: the file cannot be read,
    and a plain ``.jsonl`` has no gzip member at all."""
    return is_gzip(path) and not (isinstance(exc, OSError) and exc.errno is not None)


def _cannot_read(path: Path, exc: BaseException) -> OSError:
    """The error ``verify`` raises for a file it cannot read (the trail is not checked)."""
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return OSError(f"{path}: cannot read: {why or type(exc).__name__}")


def _bad_gzip(path: Path, line_no: int, exc: BaseException) -> Problem:
    what = (
        f"bad gzip member: {exc or type(exc).__name__} (the compressed file was changed or "
        "cut; the entries before this line were read)"
    )
    return Problem(path, line_no, "bad_gzip", what)


def _parses(raw: bytes) -> bool:
    try:
        parse_entry(raw.rstrip(b"\n"))
    except EntryError:
        return False
    return raw.endswith(b"\n")


def _line_of_seq(path: Path, after: int, seq: int) -> int | None:
    """The line after line ``after`` of ``path`` holding entry ``seq`` (moved there)."""
    with open_member(path) as fh:
        for line_no, raw in enumerate(fh, start=1):
            if line_no > after:
                try:
                    data = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(data, dict) and data.get("seq") == seq:
                    return line_no
    return None
