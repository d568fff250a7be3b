"""Syslog parsing of hostile and broken input: kept with a reason, never raised on, invalid
UTF-8 read leniently, linear time on pathological lines."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from gateway.receivers.syslog_mapping import to_log_record
from gateway.receivers.syslog_parse import decode_lenient, parse
from tests.gateway.receivers.syslog_samples import (
    RECEIVED,
    attrs,
    utc_ns,
)

MALFORMED: list[tuple[str, bytes, str, str, dict[str, Any]]] = [
    ("empty", b"", "unparsed", "empty message", {}),
    ("only-newline", b"\r\n", "unparsed", "empty message", {}),
    ("garbage", b"\x00\x01\x02 not syslog at all", "unparsed", "no <PRI>", {}),
    ("rfc3164-5.4-example2-as-received", b"Use the BFG!", "unparsed", "no <PRI>", {}),
    ("pri-999-garbage", b"<999>garbage", "unparsed", "PRI 999 out of range 0..191", {}),
    ("pri-empty", b"<>x", "unparsed", "invalid PRI <>", {}),
    ("pri-four-digits", b"<1234>x", "unparsed", "invalid PRI <1234>", {}),
    (
        "pri-999-rfc5424",
        b"<999>1 2003-10-11T22:14:15.003Z host app - - - msg",
        "rfc5424",
        "PRI 999 out of range 0..191",
        {"facility": None, "severity": None, "hostname": "host", "app_name": "app"},
    ),
    (
        "pri-192-rfc3164",
        b"<192>Oct 11 22:14:15 host app: x",
        "rfc3164",
        "PRI 192 out of range 0..191",
        {"facility": None, "hostname": "host", "app_name": "app"},
    ),
    (
        "pri-not-numeric",
        b"<abc>Oct 11 22:14:15 host app: x",
        "rfc3164",
        "invalid PRI <abc>",
        {"facility": None, "hostname": "host", "app_name": "app"},
    ),
    (
        "no-pri-bsd-line",
        b"Oct 11 22:14:15 host app[9]: x",
        "rfc3164",
        "no <PRI>",
        {"timestamp_ns": utc_ns(2026, 10, 11, 22, 14, 15), "hostname": "host", "proc_id": "9"},
    ),
    (
        "no-pri-rfc5424",
        b"1 2003-10-11T22:14:15.003Z host app - - - msg",
        "rfc5424",
        "no <PRI>",
        {"hostname": "host", "version": 1},
    ),
    (
        "truncated-sd",
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="Appli',
        "rfc5424",
        "unterminated SD-ELEMENT at offset 96",
        {"structured_data": {"exampleSDID@32473": {"iut": "3"}}, "msg_id": "ID47"},
    ),
    (
        "rfc5424-6.3.5-example4-space-after-bracket",
        b'<165>1 - - - - - [ exampleSDID@32473 iut="3"][examplePriority@32473 class="high"]',
        "rfc5424",
        "invalid SD-ELEMENT at offset 17",
        {"structured_data": {}},
    ),
    (
        "junk-after-sd",
        b'<165>1 - - - - - [a@1 b="c"]x msg',
        "rfc5424",
        "invalid STRUCTURED-DATA at offset 28",
        {"structured_data": {"a@1": {"b": "c"}}},
    ),
    (
        "nil-sd-glued-to-msg",
        b"<165>1 - - - - - -msg",
        "rfc5424",
        "invalid STRUCTURED-DATA at offset 17",
        {},
    ),
    (
        "missing-sd",
        b"<34>1 2003-10-11T22:14:15.003Z host su - ID47 'su root' failed",
        "rfc5424",
        "no STRUCTURED-DATA at offset 46",
        {"app_name": "su", "msg_id": "ID47"},
    ),
    (
        "invalid-utf8-in-sd-value",
        b'<14>1 - h a - - [a@1 v="\xff"] m',
        "rfc5424",
        "invalid UTF-8 in the header (replaced by U+FFFD)",
        {"structured_data": {"a@1": {"v": "\ufffd"}}, "invalid_utf8": True},
    ),
    (
        "invalid-utf8-in-hostname",
        b"<34>Oct 11 22:14:15 caf\xe9 su: x",
        "rfc3164",
        "invalid UTF-8 in the header (replaced by U+FFFD)",
        {"hostname": "caf\ufffd", "app_name": "su", "invalid_utf8": True},
    ),
    (
        "invalid-bsd-date",
        b"<13>Feb 30 10:00:00 host app: x",
        "rfc3164",
        "invalid TIMESTAMP 'Feb 30 10:00:00'",
        {"hostname": "host", "app_name": "app", "timestamp_ns": None},
    ),
    (
        "truncated-rfc5424-header",
        b"<34>1 2003-10-11T22:14:15.003Z host",
        "rfc3164",
        "malformed RFC 5424 header",
        {"facility": 4, "severity": 2},
    ),
    (
        "errors-add-up",
        b"<999>1 2003-13-45T99:00:00Z h a - - [x",
        "rfc5424",
        "PRI 999 out of range 0..191; invalid TIMESTAMP '2003-13-45T99:00:00Z'; "
        "unterminated SD-ELEMENT at offset 38",
        {"structured_data": {"x": {}}, "hostname": "h"},
    ),
]


@pytest.mark.parametrize(
    ("raw", "format", "error", "fields"),
    [pytest.param(raw, f, e, fields, id=name) for name, raw, f, e, fields in MALFORMED],
)
def test_malformed_lines_are_kept_with_a_reason(
    raw: bytes, format: str, error: str, fields: dict[str, Any]
) -> None:
    msg = parse(raw, RECEIVED)
    assert (msg.format, msg.parse_error) == (format, error)
    # The whole line is kept, whatever could be read besides.
    assert msg.message == raw.rstrip(b"\r\n\x00").decode("utf-8", "replace")
    for name, value in fields.items():
        assert getattr(msg, name) == value, name


# --- never raises ------------------------------------------------------------------------------

PREFIXES = [
    "",
    "<34>",
    "<34>1 ",
    "<34>1 2003-10-11T22:14:15.003Z host app - ID47 ",
    "<34>1 - - - - - [a@1 ",
    "<13>Dec  6 05:01:02 ",
    "<13>Feb 29 05:01:02 host ",
    "<13>2026-12-06T05:01:02 ",
]
SYSLOGISH = st.builds(
    lambda prefix, rest: (prefix + rest).encode("utf-8", "surrogatepass"),
    st.sampled_from(PREFIXES),
    st.text(alphabet='<>0123456789 -[]="\\:TZ.+:abcDecJan\ufeff\n\x00\udc80', max_size=80),
)


def check_never_raises(raw: bytes, received: int) -> None:
    msg = parse(raw, received)
    line = raw.rstrip(b"\r\n\x00")
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        assert msg.invalid_utf8
    else:
        assert not msg.invalid_utf8
    if msg.parse_error is not None:  # the whole line, decoded leniently unless a header is bad
        if "invalid UTF-8" in msg.parse_error:
            assert msg.message == line.decode("utf-8", "replace")
        else:
            assert msg.message == decode_lenient(line)
    resource, record = to_log_record(msg, received, "192.0.2.1:514", "udp")
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(resource)
    resource_logs.scope_logs.add().log_records.append(record)
    assert ExportLogsServiceRequest.FromString(request.SerializeToString()) == request


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 2**63 - 1))
def test_any_bytes_never_raise(raw: bytes, received: int) -> None:
    check_never_raises(raw, received)


@settings(max_examples=500, deadline=None)
@given(SYSLOGISH)
def test_syslog_shaped_bytes_never_raise(raw: bytes) -> None:
    check_never_raises(raw, RECEIVED)


# --- invalid UTF-8: a strict header, a lenient MSG -------------------------------------------


@pytest.mark.parametrize(
    ("raw", "format", "message", "parse_error"),
    [
        # An old RFC 3164 device sending Latin-1.
        (b"<34>Oct 11 22:14:15 mymachine su: caf\xe9 cr\xe8me", "rfc3164", "café crème", None),
        # RFC 5424 6.4: MSG without a BOM may be any octets (MSG-ANY); valid UTF-8 stays as is.
        (b"<165>1 - host app - - - \xa9 2026 \xe2\x82\xac 5 \xff", "rfc5424", "© 2026 € 5 ÿ", None),
        # A UTF-8 character cut at the end (a truncated datagram): only its bytes are Latin-1.
        (b"<14>1 - host app - - - price \xe2\x82", "rfc5424", "price â\x82", None),
        # A parse error keeps the whole line, decoded the same lenient way.
        (
            b"<999>1 - host app - - - caf\xe9",
            "rfc5424",
            "<999>1 - host app - - - café",
            "PRI 999 out of range 0..191",
        ),
        (b"no pri caf\xe9", "unparsed", "no pri café", "no <PRI>"),
    ],
)
def test_invalid_utf8_in_msg_is_decoded_as_latin1_and_flagged_not_a_parse_error(
    raw: bytes, format: str, message: str, parse_error: str | None
) -> None:
    msg = parse(raw, RECEIVED)
    assert (msg.format, msg.message, msg.parse_error, msg.invalid_utf8) == (
        format,
        message,
        parse_error,
        True,
    )
    if parse_error is None:  # the header was read in full
        assert msg.hostname in ("mymachine", "host")
        assert msg.app_name in ("su", "app")


def test_invalid_utf8_maps_to_its_own_attribute() -> None:
    raw = b"<34>Oct 11 22:14:15 mymachine su: caf\xe9"
    resource, record = to_log_record(parse(raw, RECEIVED), RECEIVED, None, "udp")
    assert {kv.key: kv.value.string_value for kv in resource}["service.name"] == "su"
    assert record.body.string_value == "café"
    assert attrs(record) == {
        "syslog.facility": 4,
        "syslog.invalid_utf8": True,
        "network.transport": "udp",
    }
    _, record = to_log_record(parse(raw.replace(b"\xe9", b"e"), RECEIVED), RECEIVED, None, "udp")
    assert "syslog.invalid_utf8" not in attrs(record)


# --- linear time -------------------------------------------------------------------------------

K64 = 64 * 1024
PATHOLOGICAL = {
    "digits": b"<13>Dec  6 05:01:02 host " + b"1" * K64,
    "tag-class-no-space": b"<13>Dec  6 05:01:02 host " + b"a." * (K64 // 2),
    "digits-then-letter": b"<13>Dec  6 05:01:02 host " + b"1" * K64 + b"a x",
    "colons": b"<13>" + b"1: " * (K64 // 3),
    "sequence-digits": b"<13>" + b"9" * K64 + b": %X: y",
    "brackets": b"<13>Dec  6 05:01:02 " + b"a[" * (K64 // 2),
    "stars": b"<13>" + b"*" * K64,
    "months": b"<13>" + b"Dec  " * (K64 // 5),
    "sd-backslashes": b'<14>1 - h a - - [a@1 b="' + b"\\" * K64,
    "sd-params": b"<14>1 - h a - - [a@1" + b' b=""' * (K64 // 5),
    "invalid-utf8": b"<13>Dec  6 05:01:02 host app: " + b"\xff" * K64,
    "invalid-utf8-header": b"<13>Dec  6 05:01:02 " + b"\xe9" * K64,
    "spaces": b"<13>" + b" " * K64,
    "rfc3339": b"<13>2026-12-06T05:01:02." + b"1" * K64,
}


@pytest.mark.parametrize("raw", list(PATHOLOGICAL.values()), ids=list(PATHOLOGICAL))
def test_pathological_64k_lines_parse_in_linear_time(raw: bytes) -> None:
    parse(raw, RECEIVED)  # warm up
    best = min(_timed(raw) for _ in range(3))
    assert best < 0.05, f"{best * 1000:.1f} ms"


def _timed(raw: bytes) -> float:
    start = time.perf_counter()
    parse(raw, RECEIVED)
    return time.perf_counter() - start
