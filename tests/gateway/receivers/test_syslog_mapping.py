"""Syslog messages as OTLP log records (the log data model's syslog appendix)."""

from __future__ import annotations

import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber

from gateway.otlp.values import to_python
from gateway.receivers.syslog_mapping import to_log_record
from gateway.receivers.syslog_parse import parse
from tests.gateway.receivers.syslog_samples import (
    EXAMPLE_SD,
    RECEIVED,
    attrs,
    utc_ns,
)

# --- mapping to OTLP ---------------------------------------------------------------------------


def test_rfc5424_maps_per_the_data_model_appendix() -> None:
    raw = (  # RFC 5424 6.5 example 3
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] '
        b"\xef\xbb\xbfAn application event log entry..."
    )
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
