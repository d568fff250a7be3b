"""Tampering with a copy of a trail: verify names the first bad entry, or says what it cannot
know (a removed tail without an anchor, HMAC links without the key)."""

from __future__ import annotations

import hashlib
import tempfile
from functools import lru_cache
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.audit.chain import HMAC_SHA256, SHA256, Linker, encode_entry, parse_entry
from gateway.audit.verify import verify
from tests.gateway.audit.helpers import KEY, copy_dir, lines, rewrite, trail_files, write_trail


@pytest.fixture
def trail_dir(tmp_path: Path) -> Path:
    """A valid trail of 14 entries in one file, copied for tampering."""
    write_trail(tmp_path / "original", 12)
    assert verify([tmp_path / "original"]).ok
    return copy_dir(tmp_path / "original", tmp_path / "copy")


def _problem(paths: list[Path], **kwargs: object) -> tuple[str, int, str]:
    result = verify(paths, **kwargs)  # type: ignore[arg-type]
    assert not result.ok and result.problem is not None, result
    return result.problem.file.name, result.problem.line, result.problem.kind


def test_an_intact_trail(trail_dir: Path) -> None:
    result = verify([trail_dir])
    assert result.ok and result.entries == 14 and result.head_seq == 14
    last = lines(trail_dir / "audit.jsonl")[-1].rstrip(b"\n")
    assert result.head == hashlib.sha256(last).hexdigest()


def test_an_edited_field(trail_dir: Path) -> None:
    path = trail_dir / "audit.jsonl"
    found = lines(path)
    found[4] = found[4].replace(b'"actor":"user0"', b'"actor":"user2"')
    rewrite(path, found)
    assert _problem([trail_dir]) == ("audit.jsonl", 6, "bad_link")
    assert "(line 5)" in str(verify([trail_dir]).problem)


def test_a_deleted_line(trail_dir: Path) -> None:
    path = trail_dir / "audit.jsonl"
    found = lines(path)
    del found[6]
    rewrite(path, found)
    assert _problem([trail_dir]) == ("audit.jsonl", 7, "seq_gap")


def test_swapped_lines(trail_dir: Path) -> None:
    path = trail_dir / "audit.jsonl"
    found = lines(path)
    found[3], found[4] = found[4], found[3]
    rewrite(path, found)
    assert _problem([trail_dir]) == ("audit.jsonl", 4, "out_of_order")
    assert "seq 4 is at line 5" in str(verify([trail_dir]).problem)


def test_a_duplicated_line(trail_dir: Path) -> None:
    path = trail_dir / "audit.jsonl"
    found = lines(path)
    found.insert(3, found[2])
    rewrite(path, found)
    assert _problem([trail_dir]) == ("audit.jsonl", 4, "out_of_order")


def test_a_file_cut_in_the_middle_of_a_line(trail_dir: Path) -> None:
    path = trail_dir / "audit.jsonl"
    found = lines(path)
    rewrite(path, [*found[:9], found[9][:40]])
    assert _problem([trail_dir]) == ("audit.jsonl", 10, "truncated")


def test_a_bad_line_in_the_middle(trail_dir: Path) -> None:
    path = trail_dir / "audit.jsonl"
    found = lines(path)
    found[2] = b"not json\n"
    rewrite(path, found)
    assert _problem([trail_dir]) == ("audit.jsonl", 3, "bad_json")


def test_an_edited_genesis(trail_dir: Path) -> None:
    path = trail_dir / "audit.jsonl"
    found = lines(path)
    data = orjson.loads(found[0])
    data["prev"] = "1" * 64
    rewrite(path, [orjson.dumps(data, option=orjson.OPT_SORT_KEYS) + b"\n", *found[1:]])
    assert _problem([trail_dir]) == ("audit.jsonl", 1, "missing_genesis")


@pytest.fixture
def rotated_dir(tmp_path: Path) -> Path:
    write_trail(tmp_path / "original", 60, max_size=2500)
    files = trail_files(tmp_path / "original")
    assert len(files) >= 4 and verify(files).ok
    return copy_dir(tmp_path / "original", tmp_path / "copy")


def test_a_removed_file_in_the_middle(rotated_dir: Path) -> None:
    files = sorted(trail_files(rotated_dir))  # rotated names sort by seq; active file last
    files[1].unlink()
    name, line, kind = _problem([rotated_dir])
    assert (name, line, kind) == (files[2].name, 1, "file_gap")
    assert "entries missing: a file removed?" in str(verify([rotated_dir]).problem)


def test_a_removed_first_file(rotated_dir: Path) -> None:
    first = sorted(trail_files(rotated_dir))[0]
    second = sorted(trail_files(rotated_dir))[1]
    first.unlink()
    assert _problem([rotated_dir]) == (second.name, 1, "missing_genesis")
    partial = verify([rotated_dir], partial=True)
    assert partial.ok and "--partial" in partial.notes[0]


def test_files_are_ordered_by_the_chain_not_by_name(rotated_dir: Path) -> None:
    files = sorted(trail_files(rotated_dir))
    for n, path in enumerate(reversed(files)):
        path.rename(rotated_dir / f"{n}.jsonl")  # newest gets the smallest name
    result = verify([rotated_dir])
    assert result.ok and [p.name for p in result.files] == [
        f"{n}.jsonl" for n in reversed(range(len(files)))
    ]


def test_a_copied_file(rotated_dir: Path) -> None:
    first = sorted(trail_files(rotated_dir))[0]
    (rotated_dir / "copy.jsonl").write_bytes(first.read_bytes())
    assert _problem([rotated_dir])[2] == "file_gap"


def test_a_truncated_rotated_file(rotated_dir: Path) -> None:
    second = sorted(trail_files(rotated_dir))[1]
    found = lines(second)
    rewrite(second, found[:-1])  # its last entry removed: the next file no longer links
    third = sorted(trail_files(rotated_dir))[2]
    assert _problem([rotated_dir]) == (third.name, 1, "file_gap")


def test_a_removed_tail_needs_the_head_anchor(trail_dir: Path) -> None:
    head = verify([trail_dir]).head
    path = trail_dir / "audit.jsonl"
    rewrite(path, lines(path)[:-2])
    assert verify([trail_dir]).ok  # nothing follows the removed entries: the chain cannot tell
    assert _problem([trail_dir], head=head) == ("audit.jsonl", 12, "head_missing")


def test_a_trail_that_grew_still_holds_its_anchor(tmp_path: Path) -> None:
    write_trail(tmp_path, 3)
    head = verify([tmp_path]).head
    write_trail(tmp_path, 3)
    result = verify([tmp_path], head=head)
    assert result.ok and any("anchor" in n and ":5" in n for n in result.notes)


@pytest.fixture
def keyed_dir(tmp_path: Path) -> Path:
    write_trail(tmp_path / "original", 10, key=KEY)
    return copy_dir(tmp_path / "original", tmp_path / "copy")


def test_an_hmac_trail_needs_its_key(keyed_dir: Path) -> None:
    assert verify([keyed_dir], key=KEY).ok
    without = verify([keyed_dir])
    assert not without.ok and without.problem is None and without.needs_key is not None
    assert (without.needs_key.line, without.needs_key.kind) == (2, "needs_key")
    assert _problem([keyed_dir], key=b"w" * 32) == ("audit.jsonl", 2, "bad_link")


def _forge(path: Path, edit_line: int, alg: str) -> None:
    """What someone without the key can do: edit an entry and recompute every later link
    with SHA-256 (the only link they can compute)."""
    found = [parse_entry(line.rstrip(b"\n")) for line in lines(path)]
    details = {**found[edit_line].details, "i": 999}
    found[edit_line] = type(found[edit_line])(**{**found[edit_line].as_dict(), "details": details})
    out = [encode_entry(found[0])]
    for entry in found[1:]:
        if len(out) > edit_line:
            prev = hashlib.sha256(out[-1]).hexdigest()
            entry = type(entry)(**{**entry.as_dict(), "prev": prev, "alg": alg})
        out.append(encode_entry(entry))
    rewrite(path, [line + b"\n" for line in out])


@pytest.mark.parametrize("alg", [HMAC_SHA256, SHA256])
def test_an_hmac_chain_cannot_be_recomputed_without_the_key(keyed_dir: Path, alg: str) -> None:
    path = keyed_dir / "audit.jsonl"
    _forge(path, 4, alg)
    kind = "bad_link" if alg == HMAC_SHA256 else "downgrade"
    assert _problem([keyed_dir], key=KEY) == ("audit.jsonl", 6, kind)


def test_an_hmac_trail_rewritten_as_plain_sha256(keyed_dir: Path) -> None:
    path = keyed_dir / "audit.jsonl"
    _forge(path, 0, SHA256)
    found = [parse_entry(line.rstrip(b"\n")) for line in lines(path)]
    first = type(found[0])(**{**found[0].as_dict(), "alg": SHA256})
    out = [encode_entry(first)]
    for entry in found[1:]:
        out.append(encode_entry(type(entry)(**{**entry.as_dict(), "prev": Linker().link(out[-1])})))
    rewrite(path, [line + b"\n" for line in out])
    assert verify([keyed_dir]).ok  # without the key it is just a SHA-256 chain
    assert _problem([keyed_dir], key=KEY) == ("audit.jsonl", 1, "not_hmac")


def test_nothing_to_verify(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    result = verify([tmp_path])
    assert not result.ok and result.problem is not None and result.problem.kind == "empty"
    with pytest.raises(FileNotFoundError):
        verify([tmp_path / "missing.jsonl"])
    (tmp_path / "empty.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match=r"no audit files \(\*.jsonl\) in"):
        verify([tmp_path])


@lru_cache(maxsize=1)
def _valid_trail() -> tuple[tuple[str, bytes], ...]:
    with tempfile.TemporaryDirectory() as directory:
        write_trail(Path(directory), 14, max_size=1500)
        return tuple((p.name, p.read_bytes()) for p in trail_files(Path(directory)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_single_byte_change_is_detected(data: st.DataObject) -> None:
    files = _valid_trail()
    assert len(files) >= 2
    index = data.draw(st.integers(0, len(files) - 1), label="file")
    content = files[index][1]
    position = data.draw(st.integers(0, len(content) - 1), label="position")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != content[position]), label="byte")
    changed = content[:position] + bytes([byte]) + content[position + 1 :]
    with tempfile.TemporaryDirectory() as directory:
        for n, (name, body) in enumerate(files):
            (Path(directory) / name).write_bytes(changed if n == index else body)
        original_head = _head_of(files)
        result = verify([Path(directory)], head=original_head)
    assert not result.ok, (files[index][0], position, byte)


def _head_of(files: tuple[tuple[str, bytes], ...]) -> str:
    with tempfile.TemporaryDirectory() as directory:
        for name, body in files:
            (Path(directory) / name).write_bytes(body)
        result = verify([Path(directory)])
    assert result.ok and result.head is not None
    return result.head
