"""Syslog parsing, RFC 3164: the RFC's own examples and the year rule around New Year."""

from __future__ import annotations

from datetime import UTC, tzinfo

import pytest

from gateway.receivers.syslog_parse import SyslogMessage, parse
from tests.gateway.receivers.syslog_samples import (
    ATHENS,
    NEW_YORK,
    RECEIVED,
    expect,
    utc_ns,
)

RFC3164_LINES: list[tuple[str, bytes, tzinfo, SyslogMessage]] = [
    # --- RFC 3164 section 5.4 ------------------------------------------------------------------
    (
        "rfc3164-5.4-example1",
        b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        UTC,
        expect(
            "rfc3164",
            facility=4,
            severity=2,
            timestamp_ns=utc_ns(2026, 10, 11, 22, 14, 15),
            hostname="mymachine",
            app_name="su",
            message="'su root' failed for lonvick on /dev/pts/8",
        ),
    ),
    (
        # As a relay forwards example 2. The RFC calls "Use" content; rsyslog reads a bare TAG
        # after the HOSTNAME (programname "Use", msg " the BFG!"), and so does the gateway.
        "rfc3164-5.4-example2-relayed",
        b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
        UTC,
        expect(
            "rfc3164",
            facility=1,
            severity=5,
            timestamp_ns=utc_ns(2026, 2, 5, 17, 32, 18),
            hostname="10.0.0.99",
            app_name="Use",
            message="the BFG!",
        ),
    ),
    (
        # The RFC's reading: TIMESTAMP "Aug 24 05:34:00", HOSTNAME "CST", the rest is content
        # ("1987" is all digits: never a TAG).
        "rfc3164-5.4-example3",
        b"<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the do-nuts."
        b"  %%  Ingredients: Mix=OK, Jelly=OK # Devices: Mixer=OK, Jelly_Injector=OK, "
        b"Frier=OK # Transport: Conveyer1=OK, Conveyer2=OK # %%",
        UTC,
        expect(
            "rfc3164",
            facility=20,
            severity=5,
            timestamp_ns=utc_ns(2026, 8, 24, 5, 34, 0),
            hostname="CST",
            message="1987 mymachine myproc[10]: %% It's time to make the do-nuts.  %%  "
            "Ingredients: Mix=OK, Jelly=OK # Devices: Mixer=OK, Jelly_Injector=OK, Frier=OK # "
            "Transport: Conveyer1=OK, Conveyer2=OK # %%",
        ),
    ),
    (
        # Not a valid TIMESTAMP: the RFC's relay treats everything after the PRI as content.
        "rfc3164-5.4-example4",
        b"<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: "
        b"That's All Folks!",
        UTC,
        expect(
            "rfc3164",
            facility=0,
            severity=0,
            message="1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: "
            "That's All Folks!",
        ),
    ),
    (
        "rfc3164-5.4-example5-relayed",
        b"<0>Oct 22 10:52:12 scapegoat 1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org "
        b"10.1.2.3 sched[0]: That's All Folks!",
        UTC,
        expect(
            "rfc3164",
            facility=0,
            severity=0,
            timestamp_ns=utc_ns(2026, 10, 22, 10, 52, 12),
            hostname="scapegoat",
            message="1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: "
            "That's All Folks!",
        ),
    ),
]


@pytest.mark.parametrize(
    ("raw", "tz", "expected"),
    [pytest.param(raw, tz, expected, id=name) for name, raw, tz, expected in RFC3164_LINES],
)
def test_well_formed_lines(raw: bytes, tz: tzinfo, expected: SyslogMessage) -> None:
    assert parse(raw, RECEIVED, tz=tz) == expected


@pytest.mark.parametrize(
    ("line", "received", "tz", "expected"),
    [
        # December logs arriving in January are last year's...
        ("Dec 31 23:59:59", utc_ns(2027, 1, 1, 0, 0, 3), UTC, utc_ns(2026, 12, 31, 23, 59, 59)),
        # ...and a sender a few seconds fast at New Year is already in next year.
        ("Jan  1 00:00:05", utc_ns(2026, 12, 31, 23, 59, 58), UTC, utc_ns(2027, 1, 1, 0, 0, 5)),
        ("Jun 15 12:00:00", utc_ns(2026, 12, 6), UTC, utc_ns(2026, 6, 15, 12)),
        # Up to a day ahead is this year; more is last year.
        ("Dec  7 05:00:00", utc_ns(2026, 12, 6, 6), UTC, utc_ns(2026, 12, 7, 5)),
        ("Dec  8 05:00:00", utc_ns(2026, 12, 6, 6), UTC, utc_ns(2025, 12, 8, 5)),
        ("Feb 29 12:00:00", utc_ns(2028, 3, 1), UTC, utc_ns(2028, 2, 29, 12)),
        # New Year in the receiver's zone, not in UTC.
        ("Dec 31 22:00:00", utc_ns(2027, 1, 1, 3, 30), NEW_YORK, utc_ns(2027, 1, 1, 3)),
        ("Jan  1 00:30:00", utc_ns(2027, 1, 1, 5, 35), NEW_YORK, utc_ns(2027, 1, 1, 5, 30)),
        ("Dec 31 23:30:00", utc_ns(2026, 12, 31, 22, 0), ATHENS, utc_ns(2026, 12, 31, 21, 30)),
    ],
)
def test_rfc3164_year_rule(line: str, received: int, tz: tzinfo, expected: int) -> None:
    msg = parse(f"<13>{line} host app: x".encode(), received, tz=tz)
    assert (msg.timestamp_ns, msg.parse_error, msg.hostname) == (expected, None, "host")


def test_29_february_in_no_nearby_year_is_a_parse_error() -> None:
    msg = parse(b"<13>Feb 29 12:00:00 host app: x", utc_ns(2027, 3, 1))
    assert msg.timestamp_ns is None
    assert msg.parse_error == "invalid TIMESTAMP 'Feb 29 12:00:00'"
    assert (msg.format, msg.hostname, msg.app_name) == ("rfc3164", "host", "app")
