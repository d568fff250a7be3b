"""Syslog parsing, RFC 5424: the RFC's own examples, util-linux logger's and rsyslog's bytes,
timestamps (sources: tests/gateway/receivers/syslog_samples.py)."""

from __future__ import annotations

from datetime import UTC, tzinfo

import pytest

from gateway.receivers.syslog_parse import SyslogMessage, parse
from tests.gateway.receivers.syslog_samples import (
    ATHENS,
    BOM,
    EXAMPLE_SD,
    RECEIVED,
    expect,
    utc_ns,
)

RFC5424_LINES: list[tuple[str, bytes, tzinfo, SyslogMessage]] = [
    # --- RFC 5424 section 6.5 -------------------------------------------------------------
    (
        "rfc5424-6.5-example1-bom",
        b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
        + BOM
        + b"'su root' failed for lonvick on /dev/pts/8",
        UTC,
        expect(
            "rfc5424",
            facility=4,
            severity=2,
            timestamp_ns=utc_ns(2003, 10, 11, 22, 14, 15, 3_000_000),
            hostname="mymachine.example.com",
            app_name="su",
            msg_id="ID47",
            message="'su root' failed for lonvick on /dev/pts/8",
            version=1,
        ),
    ),
    (
        "rfc5424-6.5-example2",
        b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - "
        b"%% It's time to make the do-nuts.",
        UTC,
        expect(
            "rfc5424",
            facility=20,
            severity=5,
            timestamp_ns=utc_ns(2003, 8, 24, 12, 14, 15, 3_000),
            hostname="192.0.2.1",
            app_name="myproc",
            proc_id="8710",
            message="%% It's time to make the do-nuts.",
            version=1,
        ),
    ),
    (
        "rfc5424-6.5-example3-sd-and-bom",
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] '
        + BOM
        + b"An application event log entry...",
        UTC,
        expect(
            "rfc5424",
            facility=20,
            severity=5,
            timestamp_ns=utc_ns(2003, 10, 11, 22, 14, 15, 3_000_000),
            hostname="mymachine.example.com",
            app_name="evntslog",
            msg_id="ID47",
            structured_data=EXAMPLE_SD,
            message="An application event log entry...",
            version=1,
        ),
    ),
    (
        "rfc5424-6.5-example4-two-sd-elements-no-msg",
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
        b'[examplePriority@32473 class="high"]',
        UTC,
        expect(
            "rfc5424",
            facility=20,
            severity=5,
            timestamp_ns=utc_ns(2003, 10, 11, 22, 14, 15, 3_000_000),
            hostname="mymachine.example.com",
            app_name="evntslog",
            msg_id="ID47",
            structured_data={**EXAMPLE_SD, "examplePriority@32473": {"class": "high"}},
            version=1,
        ),
    ),
    (
        # RFC 5424 6.3.5 calls this invalid (a space between the elements), but it reads as one
        # SD-ELEMENT and a MSG: nothing is lost, so it is not flagged.
        "rfc5424-6.3.5-example3-space-between-elements",
        b'<165>1 - - - - - [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
        b' [examplePriority@32473 class="high"]',
        UTC,
        expect(
            "rfc5424",
            facility=20,
            severity=5,
            structured_data=EXAMPLE_SD,
            message='[examplePriority@32473 class="high"]',
            version=1,
        ),
    ),
    (
        "rfc5424-escaped-sd-values",
        b'<14>1 - h a - - [a@1 q="say \\"hi\\"" b="back\\\\slash" c="\\]" d="C:\\temp" e=""]'
        b'[a@1 q="second" f="merged"] m',
        UTC,
        expect(
            "rfc5424",
            facility=1,
            severity=6,
            hostname="h",
            app_name="a",
            # RFC 5424 6.3.3: \" \\ \] are escapes; a backslash before anything else stays.
            # The repeated SD-ID merges; the repeated PARAM-NAME keeps its first value.
            structured_data={
                "a@1": {
                    "q": 'say "hi"',
                    "b": "back\\slash",
                    "c": "]",
                    "d": "C:\\temp",
                    "e": "",
                    "f": "merged",
                }
            },
            message="m",
            version=1,
        ),
    ),
    (
        "rfc5424-all-nil",
        b"<34>1 - - - - - -",
        UTC,
        expect("rfc5424", facility=4, severity=2, version=1),
    ),
    # --- util-linux logger 2.38.1, bytes as captured from UDP --------------------------------
    (
        "logger-rfc5424",
        b'<155>1 2026-12-06T06:22:52.640923+00:00 vm app - - [timeQuality tzKnown="1" '
        b'isSynced="0"] hello world',
        UTC,
        expect(
            "rfc5424",
            facility=19,
            severity=3,
            timestamp_ns=utc_ns(2026, 12, 6, 6, 22, 52, 640_923_000),
            hostname="vm",
            app_name="app",
            structured_data={"timeQuality": {"tzKnown": "1", "isSynced": "0"}},
            message="hello world",
            version=1,
        ),
    ),
    (
        "logger-rfc5424-notq-notime",
        b"<155>1 - vm app - - - hello world",
        UTC,
        expect(
            "rfc5424",
            facility=19,
            severity=3,
            hostname="vm",
            app_name="app",
            message="hello world",
            version=1,
        ),
    ),
    (
        "logger-rfc5424-pid-msgid-sd",
        b'<155>1 2026-12-06T06:22:57.107565+00:00 vm app 16740 MID [timeQuality tzKnown="1" '
        b'isSynced="0"][zoo@123 tiger="hungry \\"cat\\" \\] \\\\ end"][x@1 a="1"] hello world',
        UTC,
        expect(
            "rfc5424",
            facility=19,
            severity=3,
            timestamp_ns=utc_ns(2026, 12, 6, 6, 22, 57, 107_565_000),
            hostname="vm",
            app_name="app",
            proc_id="16740",
            msg_id="MID",
            structured_data={
                "timeQuality": {"tzKnown": "1", "isSynced": "0"},
                "zoo@123": {"tiger": 'hungry "cat" ] \\ end'},
                "x@1": {"a": "1"},
            },
            message="hello world",
            version=1,
        ),
    ),
    (
        "logger-rfc3164",
        b"<155>Dec  6 06:22:52 vm app: hello world",
        UTC,
        expect(
            "rfc3164",
            facility=19,
            severity=3,
            timestamp_ns=utc_ns(2026, 12, 6, 6, 22, 52),
            hostname="vm",
            app_name="app",
            message="hello world",
        ),
    ),
    (
        "logger-rfc3164-pid",
        b"<155>Dec  6 06:22:57 vm app[16739]: hello world",
        UTC,
        expect(
            "rfc3164",
            facility=19,
            severity=3,
            timestamp_ns=utc_ns(2026, 12, 6, 6, 22, 57),
            hostname="vm",
            app_name="app",
            proc_id="16739",
            message="hello world",
        ),
    ),
    # --- rsyslog's forwarding templates --------------------------------------------------------
    (
        # %msg% of a message rsyslog read as RFC 3164 starts with the space after the tag
        # (rsyslog docs on sp-if-no-1st-sp), so MSG keeps a leading space: RFC 5424 MSG is
        # everything after the SP, and it is kept exactly.
        "rsyslog-SyslogProtocol23Format",
        b"<38>1 2026-12-06T05:01:02.123456+01:00 web01 sshd 1234 - -  Accepted publickey for "
        b"alice from 192.0.2.7 port 50522 ssh2\n",
        UTC,
        expect(
            "rfc5424",
            facility=4,
            severity=6,
            timestamp_ns=utc_ns(2026, 12, 6, 4, 1, 2, 123_456_000),
            hostname="web01",
            app_name="sshd",
            proc_id="1234",
            message=" Accepted publickey for alice from 192.0.2.7 port 50522 ssh2",
            version=1,
        ),
    ),
    (
        "rsyslog-ForwardFormat",
        b"<86>2026-12-06T05:01:02.123456+00:00 web01 sudo:    alice : TTY=pts/0 ; "
        b"PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
        UTC,
        expect(
            "rfc3164",
            facility=10,
            severity=6,
            timestamp_ns=utc_ns(2026, 12, 6, 5, 1, 2, 123_456_000),
            hostname="web01",
            app_name="sudo",
            message="   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
        ),
    ),
    (
        "rsyslog-ForwardFormat-kernel",
        b"<4>2026-12-06T05:01:02.123456-05:00 web01 kernel: [12345.678901] eth0: link up",
        UTC,
        expect(
            "rfc3164",
            facility=0,
            severity=4,
            timestamp_ns=utc_ns(2026, 12, 6, 10, 1, 2, 123_456_000),
            hostname="web01",
            app_name="kernel",
            message="[12345.678901] eth0: link up",
        ),
    ),
    (
        "rsyslog-TraditionalForwardFormat",
        b"<30>Dec  6 05:01:02 web01 systemd[1]: Started Daily apt download activities.",
        UTC,
        expect(
            "rfc3164",
            facility=3,
            severity=6,
            timestamp_ns=utc_ns(2026, 12, 6, 5, 1, 2),
            hostname="web01",
            app_name="systemd",
            proc_id="1",
            message="Started Daily apt download activities.",
        ),
    ),
]


@pytest.mark.parametrize(
    ("raw", "tz", "expected"),
    [pytest.param(raw, tz, expected, id=name) for name, raw, tz, expected in RFC5424_LINES],
)
def test_well_formed_lines(raw: bytes, tz: tzinfo, expected: SyslogMessage) -> None:
    assert parse(raw, RECEIVED, tz=tz) == expected


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        # RFC 5424 6.2.3.1 examples 1-4
        ("1985-04-12T23:20:50.52Z", utc_ns(1985, 4, 12, 23, 20, 50, 520_000_000)),
        ("1985-04-12T19:20:50.52-04:00", utc_ns(1985, 4, 12, 23, 20, 50, 520_000_000)),
        ("2003-10-11T22:14:15.003Z", utc_ns(2003, 10, 11, 22, 14, 15, 3_000_000)),
        ("2003-08-24T05:14:15.000003-07:00", utc_ns(2003, 8, 24, 12, 14, 15, 3_000)),
        # Example 5 is invalid for RFC 5424 (9 digits); accepted: Go's RFC3339Nano sends them.
        ("2003-08-24T05:14:15.000000003-07:00", utc_ns(2003, 8, 24, 12, 14, 15, 3)),
        ("2026-12-06T07:00:00+0100", utc_ns(2026, 12, 6, 6)),  # lenient: no colon
        ("2026-12-06T08:00:00", utc_ns(2026, 12, 6, 6)),  # lenient: no zone, tz (Athens)
        ("2016-12-31T23:59:60Z", utc_ns(2017, 1, 1)),  # a leap second, as POSIX counts it
    ],
)
def test_rfc5424_timestamps(stamp: str, expected: int) -> None:
    msg = parse(f"<14>1 {stamp} h a - - - m".encode(), RECEIVED, tz=ATHENS)
    assert (msg.timestamp_ns, msg.parse_error) == (expected, None)


@pytest.mark.parametrize(
    "stamp",
    [
        "2003-02-29T00:00:00Z",
        "2003-10-11T24:00:00Z",
        "2003-10-11T22:61:00Z",
        "2003-10-11T22:14:15.003+25:00",
        "2003-10-11",
        "1969-12-31T23:59:59Z",  # before 1970: no OTLP time
    ],
)
def test_invalid_rfc5424_timestamps_keep_the_rest(stamp: str) -> None:
    raw = f"<14>1 {stamp} host app 42 ID - hello".encode()
    msg = parse(raw, RECEIVED)
    assert msg.timestamp_ns is None
    assert msg.parse_error == f"invalid TIMESTAMP {stamp!r}"
    assert (msg.format, msg.hostname, msg.app_name, msg.proc_id, msg.msg_id) == (
        "rfc5424",
        "host",
        "app",
        "42",
        "ID",
    )
    assert msg.message == raw.decode()
