"""Syslog parsing of what real senders put on the wire: glibc, Python, VMware, relays' bare TAGs
(rsyslog's reading of RFC 3164 4.1.3), Cisco IOS and ASA."""

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

SENDER_LINES: list[tuple[str, bytes, tzinfo, SyslogMessage]] = [
    # --- what other real senders put on the wire ----------------------------------------------
    (
        "glibc-syslog-no-hostname",
        b"<30>Dec  6 05:01:02 systemd[1]: Started foo.service.",
        UTC,
        expect(
            "rfc3164",
            facility=3,
            severity=6,
            timestamp_ns=utc_ns(2026, 12, 6, 5, 1, 2),
            app_name="systemd",
            proc_id="1",
            message="Started foo.service.",
        ),
    ),
    (
        "rfc3164-tag-pid-no-colon",
        b"<78>Dec  6 05:01:02 web01 CRON[4242] (root) CMD (run-parts /etc/cron.hourly)",
        UTC,
        expect(
            "rfc3164",
            facility=9,
            severity=6,
            timestamp_ns=utc_ns(2026, 12, 6, 5, 1, 2),
            hostname="web01",
            app_name="CRON",
            proc_id="4242",
            message="(root) CMD (run-parts /etc/cron.hourly)",
        ),
    ),
    (
        "rfc3164-zero-padded-day-and-fraction",
        b"<30>Dec 06 05:01:02.250 web01 app: x",
        UTC,
        expect(
            "rfc3164",
            facility=3,
            severity=6,
            timestamp_ns=utc_ns(2026, 12, 6, 5, 1, 2, 250_000_000),
            hostname="web01",
            app_name="app",
            message="x",
        ),
    ),
    (
        "cisco-with-year",
        b"<189>Nov 14 2022 09:13:13 router1 %LINK-3-UPDOWN: Interface GigabitEthernet0/1, "
        b"changed state to up",
        UTC,
        expect(
            "rfc3164",
            facility=23,
            severity=5,
            timestamp_ns=utc_ns(2022, 11, 14, 9, 13, 13),
            hostname="router1",
            app_name="%LINK-3-UPDOWN",
            message="Interface GigabitEthernet0/1, changed state to up",
        ),
    ),
    (
        "vmware-space-after-pri",
        b"<165> 2014-05-16T21:33:39.531Z smith01.matrix Hostd: [FFC38B70 info 'Hostsvc' "
        b"opID=hostd-facb] VsanSystemVmkProvider : GetRuntimeInfo: Complete",
        UTC,
        expect(
            "rfc3164",
            facility=20,
            severity=5,
            timestamp_ns=utc_ns(2014, 5, 16, 21, 33, 39, 531_000_000),
            hostname="smith01.matrix",
            app_name="Hostd",
            message="[FFC38B70 info 'Hostsvc' opID=hostd-facb] VsanSystemVmkProvider : "
            "GetRuntimeInfo: Complete",
        ),
    ),
    (
        "rfc3339-without-zone-is-tz",
        b"<13>2026-12-06T08:01:02 web01 app: x",
        ATHENS,  # UTC+2 in December
        expect(
            "rfc3164",
            facility=1,
            severity=5,
            timestamp_ns=utc_ns(2026, 12, 6, 6, 1, 2),
            hostname="web01",
            app_name="app",
            message="x",
        ),
    ),
    (
        "bsd-timestamp-in-tz",
        b"<13>Dec  6 00:30:00 web01 app: x",
        NEW_YORK,  # UTC-5 in December
        expect(
            "rfc3164",
            facility=1,
            severity=5,
            timestamp_ns=utc_ns(2026, 12, 6, 5, 30, 0),
            hostname="web01",
            app_name="app",
            message="x",
        ),
    ),
    (
        "ipv6-hostname",
        b"<13>Dec  6 05:01:02 2001:db8::1 app[7]: x",
        UTC,
        expect(
            "rfc3164",
            facility=1,
            severity=5,
            timestamp_ns=utc_ns(2026, 12, 6, 5, 1, 2),
            hostname="2001:db8::1",
            app_name="app",
            proc_id="7",
            message="x",
        ),
    ),
    (
        "hostname-only",
        b"<13>Dec  6 05:01:02 web01",
        UTC,
        expect(
            "rfc3164",
            facility=1,
            severity=5,
            timestamp_ns=utc_ns(2026, 12, 6, 5, 1, 2),
            hostname="web01",
        ),
    ),
    (
        "python-SysLogHandler",
        b"<14>Disk almost full\x00",
        UTC,
        expect("rfc3164", facility=1, severity=6, message="Disk almost full"),
    ),
    (
        "python-SysLogHandler-ident",
        b"<14>myapp: Disk almost full\x00",
        UTC,
        expect("rfc3164", facility=1, severity=6, app_name="myapp", message="Disk almost full"),
    ),
    # --- a bare TAG after the HOSTNAME (RFC 3164 4.1.3, rsyslog's reading) ---------------------
    (
        # rsyslog 8.2302 relaying `logger --rfc5424 -t sshd` (no PROCID) in RSYSLOG_ForwardFormat:
        # syslogtag "sshd" has no colon; rsyslog reads programname "sshd", msg " five no pid".
        "rsyslog-ForwardFormat-5424-without-procid",
        b"<30>2026-12-06T06:39:52.350032+00:00 vm sshd five no pid",
        UTC,
        expect(
            "rfc3164",
            facility=3,
            severity=6,
            timestamp_ns=utc_ns(2026, 12, 6, 6, 39, 52, 350_032_000),
            hostname="vm",
            app_name="sshd",
            message="five no pid",
        ),
    ),
    (
        # The same in RSYSLOG_TraditionalForwardFormat, omfwd's default template.
        "rsyslog-TraditionalForwardFormat-5424-without-procid",
        b"<30>Dec  6 06:39:52 vm systemd-logind.service/x_1 five no pid",
        UTC,
        expect(
            "rfc3164",
            facility=3,
            severity=6,
            timestamp_ns=utc_ns(2026, 12, 6, 6, 39, 52),
            hostname="vm",
            app_name="systemd-logind.service/x_1",
            message="five no pid",
        ),
    ),
    (
        # No letter among the first characters: a number, an address or a date is content.
        "bare-tag-needs-a-letter",
        b"<13>Dec  6 05:01:02 relay 10.1.2.3 2024-01-01 up",
        UTC,
        expect(
            "rfc3164",
            facility=1,
            severity=5,
            timestamp_ns=utc_ns(2026, 12, 6, 5, 1, 2),
            hostname="relay",
            message="10.1.2.3 2024-01-01 up",
        ),
    ),
    (
        "all-digit-word-is-never-a-tag",
        b"<13>Dec  6 05:01:02 web01 42: the answer",
        UTC,
        expect(
            "rfc3164",
            facility=1,
            severity=5,
            timestamp_ns=utc_ns(2026, 12, 6, 5, 1, 2),
            hostname="web01",
            message="42: the answer",
        ),
    ),
    (
        # A bare word at the end, longer than APP-NAME's 48, or glued to a colon is no TAG.
        "bare-tag-needs-a-space-and-48-at-most",
        b"<13>Dec  6 05:01:02 web01 " + b"a" * 49 + b" x",
        UTC,
        expect(
            "rfc3164",
            facility=1,
            severity=5,
            timestamp_ns=utc_ns(2026, 12, 6, 5, 1, 2),
            hostname="web01",
            message="a" * 49 + " x",
        ),
    ),
    # --- Cisco IOS and ASA ---------------------------------------------------------------------
    (
        # service sequence-numbers + service timestamps log datetime msec; '*': clock not synced.
        "cisco-ios-sequence-star-msec",
        b"<189>29: *Apr 29 13:58:40.411: %SYS-5-CONFIG_I: Configured from console by vty2 "
        b"(10.34.195.36)",
        UTC,
        expect(
            "rfc3164",
            facility=23,
            severity=5,
            timestamp_ns=utc_ns(2026, 4, 29, 13, 58, 40, 411_000_000),
            app_name="%SYS-5-CONFIG_I",
            message="Configured from console by vty2 (10.34.195.36)",
        ),
    ),
    (
        # '.': the clock was synced but lost its NTP peer.
        "cisco-ios-sequence-dot",
        b"<187>142: .Nov 14 09:13:13.002: %LINEPROTO-5-UPDOWN: Line protocol on Interface "
        b"GigabitEthernet0/1, changed state to down",
        UTC,
        expect(
            "rfc3164",
            facility=23,
            severity=3,
            timestamp_ns=utc_ns(2026, 11, 14, 9, 13, 13, 2_000_000),
            app_name="%LINEPROTO-5-UPDOWN",
            message="Line protocol on Interface GigabitEthernet0/1, changed state to down",
        ),
    ),
    (
        "cisco-ios-sequence-year",
        b"<189>1345: Mar  1 2025 00:13:19.143: %SYS-5-RESTART: System restarted --",
        UTC,
        expect(
            "rfc3164",
            facility=23,
            severity=5,
            timestamp_ns=utc_ns(2025, 3, 1, 0, 13, 19, 143_000_000),
            app_name="%SYS-5-RESTART",
            message="System restarted --",
        ),
    ),
    (
        # no service timestamps: the sequence number, then the message.
        "cisco-ios-sequence-no-timestamp",
        b"<189>30: %SYS-5-CONFIG_I: Configured from console by console",
        UTC,
        expect(
            "rfc3164",
            facility=23,
            severity=5,
            app_name="%SYS-5-CONFIG_I",
            message="Configured from console by console",
        ),
    ),
    (
        "cisco-asa",
        b"<166>Mar 11 2024 13:58:40: %ASA-6-302013: Built outbound TCP connection 3681 for "
        b"outside:203.0.113.10/443 (203.0.113.10/443) to inside:192.168.1.10/52418 "
        b"(198.51.100.2/52418)",
        UTC,
        expect(
            "rfc3164",
            facility=20,
            severity=6,
            timestamp_ns=utc_ns(2024, 3, 11, 13, 58, 40),
            app_name="%ASA-6-302013",
            message="Built outbound TCP connection 3681 for outside:203.0.113.10/443 "
            "(203.0.113.10/443) to inside:192.168.1.10/52418 (198.51.100.2/52418)",
        ),
    ),
    (
        # logging device-id hostname
        "cisco-asa-device-id",
        b"<164>Mar 11 2024 13:58:41 asa01 : %ASA-4-106023: Deny tcp src outside:198.51.100.7/"
        b'4431 dst inside:192.168.1.10/22 by access-group "outside_in" [0x0, 0x0]',
        UTC,
        expect(
            "rfc3164",
            facility=20,
            severity=4,
            timestamp_ns=utc_ns(2024, 3, 11, 13, 58, 41),
            hostname="asa01",
            app_name="%ASA-4-106023",
            message="Deny tcp src outside:198.51.100.7/4431 dst inside:192.168.1.10/22 by "
            'access-group "outside_in" [0x0, 0x0]',
        ),
    ),
    (
        # A number and a colon before anything else is content, not a sequence number.
        "number-colon-is-content",
        b"<13>42: the answer",
        UTC,
        expect("rfc3164", facility=1, severity=5, message="42: the answer"),
    ),
]


@pytest.mark.parametrize(
    ("raw", "tz", "expected"),
    [pytest.param(raw, tz, expected, id=name) for name, raw, tz, expected in SENDER_LINES],
)
def test_well_formed_lines(raw: bytes, tz: tzinfo, expected: SyslogMessage) -> None:
    assert parse(raw, RECEIVED, tz=tz) == expected
