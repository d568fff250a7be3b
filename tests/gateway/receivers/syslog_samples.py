"""Shared by the syslog parser tests: expected messages, times, zones.

Sources of the samples in the test modules: RFC 5424 sections 6.2.3.1 and 6.5; RFC 3164 section
5.4; util-linux ``logger`` 2.38.1 (captured from a UDP socket, and run live); rsyslog's predefined
templates ``RSYSLOG_SyslogProtocol23Format``, ``RSYSLOG_ForwardFormat`` and
``RSYSLOG_TraditionalForwardFormat`` (rsyslog docs, "Reserved template names"); Python's
``logging.handlers.SysLogHandler`` (``<PRI>`` + message + NUL); glibc ``syslog()`` (no HOSTNAME).
"""

from __future__ import annotations

import calendar
from typing import Any
from zoneinfo import ZoneInfo

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from gateway.otlp.values import to_python
from gateway.receivers.syslog_parse import SyslogMessage

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


def attrs(record: LogRecord) -> dict[str, Any]:
    """A log record's attributes as plain values."""
    return {kv.key: to_python(kv.value) for kv in record.attributes}
