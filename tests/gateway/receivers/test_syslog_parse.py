"""Syslog parsing and mapping: the RFCs' own examples, the bytes real senders put on the wire,
the RFC 3164 year rule around New Year, and hostile input that must be kept, never raised on.

Sources of the samples: RFC 5424 sections 6.2.3.1 and 6.5; RFC 3164 section 5.4; util-linux
``logger`` 2.38.1 (captured from a UDP socket, and run live below); rsyslog's predefined templates
``RSYSLOG_SyslogProtocol23Format``, ``RSYSLOG_ForwardFormat`` and
``RSYSLOG_TraditionalForwardFormat`` (rsyslog docs, "Reserved template names"); Python's
``logging.handlers.SysLogHandler`` (``<PRI>`` + message + NUL); glibc ``syslog()`` (no HOSTNAME).
"""

from __future__ import annotations

import calendar
import os
import shutil
import socket
import subprocess
import time
from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, SeverityNumber

from gateway.otlp.values import to_python
from gateway.receivers.syslog_mapping import to_log_record
from gateway.receivers.syslog_parse import SyslogMessage, decode_lenient, parse

NEW_YORK = ZoneInfo("America/New_York")
ATHENS = ZoneInfo("Europe/Athens")
BOM = b"\xef\xbb\xbf"


def utc_ns(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, frac: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s)) * 10**9 + frac


RECEIVED = utc_ns(2026, 12, 6, 6, 0, 0)


def expect(format: str, **fields: Any) -> SyslogMessage:
    values: dict[str, Any] = {
        "format": format,
        "facility": None,
        "severity": None,
        "timestamp_ns": None,
        "hostname": None,
        "app_name": None,
        "proc_id": None,
        "msg_id": None,
        "structured_data": {},
        "message": "",
        "parse_error": None,
        "version": None,
    }
    values.update(fields)
    return SyslogMessage(**values)


EXAMPLE_SD = {"exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}}

WELL_FORMED: list[tuple[str, bytes, tzinfo, SyslogMessage]] = [
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
    [pytest.param(raw, tz, expected, id=name) for name, raw, tz, expected in WELL_FORMED],
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


# --- util-linux logger, live -----------------------------------------------------------------

LOGGER = shutil.which("logger") or "/usr/bin/logger"
SEND_TO = ("--server", "127.0.0.1", "--port")
LOCAL3_ERR = ("-t", "app", "-p", "local3.err")


@pytest.mark.skipif(not os.access(LOGGER, os.X_OK), reason="util-linux logger not installed")
@pytest.mark.parametrize(
    ("options", "format"),
    [
        (["--rfc5424"], "rfc5424"),
        (["--rfc3164"], "rfc3164"),
        (["--rfc3164", "-i"], "rfc3164"),
        (
            [
                "--rfc5424",
                "-i",
                "--msgid",
                "MID",
                "--sd-id",
                "zoo@123",
                "--sd-param",
                r'tiger="a \"b\" \] \\ c"',
            ],
            "rfc5424",
        ),
    ],
)
def test_util_linux_logger(options: list[str], format: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        port = str(sock.getsockname()[1])
        before = time.time_ns()
        subprocess.run(
            [LOGGER, *options, *SEND_TO, port, "--udp", *LOCAL3_ERR, "hello world"],
            check=True,
            timeout=10,
            env={**os.environ, "TZ": "UTC"},  # RFC 3164 stamps are the sender's local time
        )
        raw = sock.recv(65535)
    received = time.time_ns()

    msg = parse(raw, received)
    assert (msg.format, msg.parse_error) == (format, None), raw
    assert (msg.facility, msg.severity) == (19, 3)  # local3.err
    assert (msg.app_name, msg.message) == ("app", "hello world")
    assert msg.hostname
    assert msg.hostname.split(".")[0] == socket.gethostname().split(".")[0]
    assert msg.timestamp_ns is not None
    assert before - 10**9 <= msg.timestamp_ns <= received  # RFC 3164: whole seconds
    if "-i" in options:
        assert msg.proc_id is not None and msg.proc_id.isdigit()
    if "--sd-id" in options:
        assert msg.msg_id == "MID"
        assert msg.structured_data["zoo@123"] == {"tiger": 'a "b" ] \\ c'}


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


# --- mapping to OTLP ---------------------------------------------------------------------------


def attrs(record: LogRecord) -> dict[str, Any]:
    return {kv.key: to_python(kv.value) for kv in record.attributes}


def test_rfc5424_maps_per_the_data_model_appendix() -> None:
    raw = WELL_FORMED[2][1]  # RFC 5424 6.5 example 3
    resource, record = to_log_record(parse(raw, RECEIVED), RECEIVED, "192.0.2.1:51234", "udp")
    assert {kv.key: to_python(kv.value) for kv in resource} == {
        "host.name": "mymachine.example.com",
        "service.name": "evntslog",
    }
    assert attrs(record) == {
        "syslog.facility": 20,
        "syslog.version": 1,
        "syslog.msgid": "ID47",
        "syslog.structured_data": EXAMPLE_SD,
        "network.transport": "udp",
        "network.peer.address": "192.0.2.1",
        "network.peer.port": 51234,
    }
    assert record.severity_number == SeverityNumber.SEVERITY_NUMBER_INFO2
    assert record.severity_text == "notice"
    assert record.body.string_value == "An application event log entry..."
    assert record.time_unix_nano == utc_ns(2003, 10, 11, 22, 14, 15, 3_000_000)
    assert record.observed_time_unix_nano == RECEIVED


@pytest.mark.parametrize(
    ("severity", "number", "text"),
    [
        # OTel logs data model Appendix B = the Collector's stanza syslog parser.
        (0, SeverityNumber.SEVERITY_NUMBER_FATAL, "emerg"),
        (1, SeverityNumber.SEVERITY_NUMBER_ERROR3, "alert"),
        (2, SeverityNumber.SEVERITY_NUMBER_ERROR2, "crit"),
        (3, SeverityNumber.SEVERITY_NUMBER_ERROR, "err"),
        (4, SeverityNumber.SEVERITY_NUMBER_WARN, "warning"),
        (5, SeverityNumber.SEVERITY_NUMBER_INFO2, "notice"),
        (6, SeverityNumber.SEVERITY_NUMBER_INFO, "info"),
        (7, SeverityNumber.SEVERITY_NUMBER_DEBUG, "debug"),
    ],
)
def test_severity(severity: int, number: int, text: str) -> None:
    msg = parse(f"<{16 * 8 + severity}>1 - - - - - - x".encode(), RECEIVED)
    _, record = to_log_record(msg, RECEIVED, None, "tcp")
    assert (record.severity_number, record.severity_text) == (number, text)
    assert attrs(record)["syslog.facility"] == 16


def test_a_parse_error_keeps_the_whole_line_as_the_body() -> None:
    raw = b'<999>1 - host app - - [a@1 b="c'
    resource, record = to_log_record(parse(raw, RECEIVED), RECEIVED, None, "tcp")
    assert record.body.string_value == raw.decode()
    assert attrs(record) == {
        "syslog.version": 1,
        "syslog.structured_data": {"a@1": {}},
        "syslog.parse_error": "PRI 999 out of range 0..191; unterminated SD-ELEMENT at offset 26",
        "network.transport": "tcp",
    }
    assert (record.severity_number, record.severity_text) == (0, "")
    assert record.time_unix_nano == 0
    assert {kv.key for kv in resource} == {"host.name", "service.name"}


def test_unparsed_line_has_no_resource_and_no_invented_service() -> None:
    resource, record = to_log_record(parse(b"hello", RECEIVED), RECEIVED, "10.0.0.1", "udp")
    assert resource == []
    assert record.body.string_value == "hello"
    assert attrs(record) == {
        "syslog.parse_error": "no <PRI>",
        "network.transport": "udp",
        "network.peer.address": "10.0.0.1",
    }


def test_rfc3164_maps_tag_and_pid() -> None:
    raw = b"<30>Dec  6 05:01:02 web01 systemd[1]: Started foo."
    resource, record = to_log_record(parse(raw, RECEIVED), RECEIVED, None, "udp")
    assert [(kv.key, kv.value.string_value) for kv in resource] == [
        ("host.name", "web01"),
        ("service.name", "systemd"),
    ]
    assert attrs(record) == {
        "syslog.facility": 3,
        "syslog.procid": "1",
        "network.transport": "udp",
    }
    assert record.body.string_value == "Started foo."


def test_origin_structured_data_names_the_client_and_the_version() -> None:
    # RFC 5424 7.2 "origin"; the data model appendix maps ip and swVersion.
    raw = (
        b'<14>1 - relay app - - [origin ip="192.0.2.9" ip="192.0.2.10" software="app" '
        b'swVersion="1.2.3"] m'
    )
    resource, record = to_log_record(parse(raw, RECEIVED), RECEIVED, "198.51.100.1:514", "udp")
    assert {kv.key: kv.value.string_value for kv in resource}["service.version"] == "1.2.3"
    values = attrs(record)
    assert values["client.address"] == "192.0.2.9"
    assert values["network.peer.address"] == "198.51.100.1"


@pytest.mark.parametrize(
    ("peer", "address", "port"),
    [
        ("192.0.2.7:514", "192.0.2.7", 514),
        ("192.0.2.7", "192.0.2.7", None),
        ("[2001:db8::1]:6514", "2001:db8::1", 6514),
        ("2001:db8::1", "2001:db8::1", None),
        ("host:notaport", "host", None),
        ("host:99999", "host", None),
    ],
)
def test_peer(peer: str, address: str, port: int | None) -> None:
    _, record = to_log_record(parse(b"<14>x", RECEIVED), RECEIVED, peer, "tcp")
    values = attrs(record)
    assert values["network.peer.address"] == address
    assert values.get("network.peer.port") == port


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
