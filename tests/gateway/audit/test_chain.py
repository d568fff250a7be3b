"""The entry format and links: canonical lines, SHA-256 vs HMAC, what a malformed line is."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.audit.chain import (
    GENESIS,
    HMAC_SHA256,
    MAX_DETAILS_BYTES,
    SHA256,
    Entry,
    EntryError,
    Linker,
    bounded_details,
    check_action,
    encode_entry,
    parse_entry,
    rfc3339,
)

ENTRY = Entry(
    seq=3, time="2023-11-14T22:13:20.000Z", action="config.reload", actor="ops",
    details={"z": 1, "a": {"y": 2, "b": 3}}, alg=SHA256, prev=GENESIS,
)  # fmt: skip


def test_an_entry_is_one_line_of_sorted_compact_json() -> None:
    line = encode_entry(ENTRY)
    assert b"\n" not in line and b" " not in line
    assert line.startswith(b'{"action":"config.reload","actor":"ops","alg":"sha256",')
    assert b'"details":{"a":{"b":3,"y":2},"z":1}' in line  # nested keys sorted too
    assert parse_entry(line) == ENTRY
    assert encode_entry(parse_entry(line)) == line


def test_links_are_sha256_or_hmac_of_the_line_bytes() -> None:
    line = encode_entry(ENTRY)
    assert Linker().link(line) == hashlib.sha256(line).hexdigest()
    keyed = Linker(b"secret-key-of-16+")
    assert keyed.alg == HMAC_SHA256 and Linker().alg == SHA256
    assert keyed.link(line) == hmac.new(b"secret-key-of-16+", line, hashlib.sha256).hexdigest()
    assert keyed.link(line, SHA256) == Linker().link(line)
    assert Linker(b"another-key-16+++").link(line) != keyed.link(line)
    with pytest.raises(ValueError, match="needs the key"):
        Linker().link(line, HMAC_SHA256)
    with pytest.raises(ValueError):
        Linker(b"")


def _line(**changes: object) -> bytes:
    data = {**ENTRY.as_dict(), **changes}
    return orjson.dumps({k: v for k, v in data.items() if v != "DROP"})


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b"{not json", "not JSON"),
        (b"[1,2]", "not a JSON object"),
        (_line(seq="DROP"), "missing field(s) seq"),
        (_line(extra=1), "unexpected field(s) extra"),
        (_line(seq=0), "seq 0 is not a positive integer"),
        (_line(seq=True), "seq True"),
        (_line(prev="ab"), "prev is not 64 lowercase hex"),
        (_line(prev=GENESIS.upper().replace("0", "A")), "prev is not 64 lowercase hex"),
        (_line(alg="md5"), "alg 'md5'"),
        (_line(action="Config Reload"), "action 'Config Reload'"),
        (_line(action="reload"), "is not a dotted name"),
        (_line(time=5), "time is not a string"),
        (_line(actor=5), "actor is neither"),
        (_line(details=[1]), "details is not an object"),
    ],
)
def test_malformed_lines_say_what_is_wrong(line: bytes, says: str) -> None:
    with pytest.raises(EntryError, match=None) as caught:
        parse_entry(line)
    assert says in str(caught.value)


def test_details_are_json_ready_and_bounded() -> None:
    assert bounded_details(None) == {}
    odd: dict[Any, Any] = {"path": Path("/x"), 1: "one"}  # not JSON types: made JSON
    assert bounded_details(odd) == {
        "path": "/x", "1": "one",
    }  # fmt: skip
    huge = bounded_details({"big": "x" * MAX_DETAILS_BYTES, "other": 1})
    assert huge["truncated"] is True and huge["keys"] == ["big", "other"]
    assert huge["bytes"] > MAX_DETAILS_BYTES


def test_times_and_actions() -> None:
    assert rfc3339(1_700_000_000.1234) == "2023-11-14T22:13:20.123Z"
    assert check_action("error_group.status") == "error_group.status"
    for bad in ("auth", "Auth.failure", "auth..x", "auth.failure ", ""):
        with pytest.raises(ValueError, match="dotted lower case"):
            check_action(bad)
