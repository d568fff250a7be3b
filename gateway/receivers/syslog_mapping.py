"""A parsed syslog message (:mod:`gateway.receivers.syslog_parse`) as an OTLP log record.

Where each mapping comes from:

- [A] OpenTelemetry specification, ``specification/logs/data-model-appendix.md``, Appendix A
  "RFC5424 Syslog" (the spec's own mapping of this format) and Appendix B (severity numbers).
- [C] OpenTelemetry Collector contrib, ``pkg/stanza/operator/parser/syslog/parser.go`` (the
  ``syslog`` receiver's parser: ``severityMapping`` and ``severityText``), with
  ``pkg/stanza/adapter/converter.go`` turning its severities into OTLP ``SeverityNumber``.
- [N] Semantic conventions, network and client attributes: ``network.transport``,
  ``network.peer.address``, ``network.peer.port``, ``client.address``.

================================  ===============================================================
syslog                            OTLP
================================  ===============================================================
TIMESTAMP                         ``time_unix_nano`` (0 when unknown) [A]
receive time                      ``observed_time_unix_nano``
SEVERITY (PRI % 8)                ``severity_number`` and ``severity_text`` (table below) [A][C]
FACILITY (PRI // 8)               attribute ``syslog.facility`` (int) [A]
VERSION                           attribute ``syslog.version`` (int) [A]
HOSTNAME                          resource ``host.name`` [A]
APP-NAME / 3164 TAG               resource ``service.name`` [A]; absent when the line has none
PROCID / 3164 [PID]               attribute ``syslog.procid`` [A]
MSGID                             attribute ``syslog.msgid`` [A]
STRUCTURED-DATA                   attribute ``syslog.structured_data``: {SD-ID: {PARAM: value}}
SD ``origin`` ``swVersion``       resource ``service.version`` [A]
SD ``origin`` ``ip`` (first)      attribute ``client.address`` [A][N]
MSG (BOM removed)                 body (string) [A]
the whole line, on a parse error  body, plus attribute ``syslog.parse_error``
bytes that are not UTF-8          attribute ``syslog.invalid_utf8`` = true (body: see parser)
socket peer                       ``network.peer.address`` (+ ``network.peer.port``) [N]
transport (``udp``/``tcp``)       ``network.transport`` [N]
================================  ===============================================================

Severity, the same in [A] Appendix B and [C] (``severity_text`` is the syslog keyword, as
in [C]): 0 emerg FATAL (21), 1 alert ERROR3 (19), 2 crit ERROR2 (18), 3 err ERROR (17),
4 warning WARN (13), 5 notice INFO2 (10), 6 info INFO (9), 7 debug DEBUG (5). Without a valid
PRI: UNSPECIFIED (0) and no text.

Decisions:

- Attribute names are [A]'s ``syslog.*`` rather than the Collector's bare ``appname``,
  ``hostname``, ``proc_id``, ``msg_id``, ``facility``, ``priority``, ``version``, ``message``
  (no semantic-convention registry entry exists for syslog fields). The Collector keeps the
  raw line as the body and leaves those names for later operators to move; here the body is
  MSG and host/app are resource attributes, as [A] has it, so the bare names (which collide
  with application attributes: ``version``, ``message``) have no reason to exist. A Collector
  user renames with the ``resource``/``attributes`` processors. ``priority`` is not kept: it
  is ``facility * 8 + severity`` and both are there.
- Structured data is one map attribute, as in [C], not [A]'s one ``syslog.<SD-ID>``
  attribute per element: SD-IDs are chosen by senders, and attribute keys from the wire would
  make the key set unbounded downstream (Loki structured metadata, Prometheus labels).
- No ``service.name`` is invented when the line has no APP-NAME/TAG: the gateway reads a
  missing name as ``unknown_service`` (:func:`gateway.otlp.builders.service_name`), as the SDKs
  do, rather than merging every nameless sender into a fake "syslog" service. Likewise no
  ``host.name`` from the peer address: the peer may be a relay (it is ``network.peer.address``).
- The socket peer is ``network.peer.address``, not ``client.address``: through a relay the
  peer is the relay. ``client.address`` is the originator's IP when the sender states it in
  the ``origin`` SD element (RFC 5424 7.2), per [A].
- ``log.record.original`` (semantic conventions, opt-in) is not added: when parsing succeeds
  every field is kept, and when it fails the body already is the original line.
"""

from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, SeverityNumber

from gateway.receivers.syslog_parse import SyslogMessage

# syslog severity (index) -> (OTLP severity number, syslog keyword) [A][C]
SEVERITIES: tuple[tuple[SeverityNumber.ValueType, str], ...] = (
    (SeverityNumber.SEVERITY_NUMBER_FATAL, "emerg"),
    (SeverityNumber.SEVERITY_NUMBER_ERROR3, "alert"),
    (SeverityNumber.SEVERITY_NUMBER_ERROR2, "crit"),
    (SeverityNumber.SEVERITY_NUMBER_ERROR, "err"),
    (SeverityNumber.SEVERITY_NUMBER_WARN, "warning"),
    (SeverityNumber.SEVERITY_NUMBER_INFO2, "notice"),
    (SeverityNumber.SEVERITY_NUMBER_INFO, "info"),
    (SeverityNumber.SEVERITY_NUMBER_DEBUG, "debug"),
)


def to_log_record(
    msg: SyslogMessage, received_ns: int, peer: str | None, transport: str
) -> tuple[list[KeyValue], LogRecord]:
    """(resource attributes, log record) following the OpenTelemetry semantic conventions /
    the Collector's syslog receiver (table in the module docstring).

    ``peer`` is the sender's address as ``host``, ``host:port`` or ``[v6]:port``; the port,
    when there is one, becomes ``network.peer.port``. ``transport`` is ``udp`` or ``tcp``."""
    resource: list[KeyValue] = []
    if msg.hostname:
        resource.append(_text("host.name", msg.hostname))
    if msg.app_name:
        resource.append(_text("service.name", msg.app_name))
    origin = msg.structured_data.get("origin")
    if origin and (sw_version := origin.get("swVersion")):
        resource.append(_text("service.version", sw_version))

    attributes: list[KeyValue] = []
    if msg.facility is not None:
        attributes.append(_int("syslog.facility", msg.facility))
    if msg.version is not None:
        attributes.append(_int("syslog.version", msg.version))
    if msg.proc_id:
        attributes.append(_text("syslog.procid", msg.proc_id))
    if msg.msg_id:
        attributes.append(_text("syslog.msgid", msg.msg_id))
    if msg.structured_data:
        attributes.append(
            KeyValue(key="syslog.structured_data", value=_sd_value(msg.structured_data))
        )
    if origin and (origin_ip := origin.get("ip")):
        attributes.append(_text("client.address", origin_ip))
    if msg.parse_error:
        attributes.append(_text("syslog.parse_error", msg.parse_error))
    if msg.invalid_utf8:
        attributes.append(KeyValue(key="syslog.invalid_utf8", value=AnyValue(bool_value=True)))
    attributes.append(_text("network.transport", transport))
    if peer:
        address, port = _split_peer(peer)
        attributes.append(_text("network.peer.address", address))
        if port is not None:
            attributes.append(_int("network.peer.port", port))

    if msg.severity is not None and 0 <= msg.severity < len(SEVERITIES):
        severity_number, severity_text = SEVERITIES[msg.severity]
    else:
        severity_number, severity_text = SeverityNumber.SEVERITY_NUMBER_UNSPECIFIED, ""
    timestamp = msg.timestamp_ns
    record = LogRecord(
        time_unix_nano=timestamp if timestamp is not None and 0 <= timestamp < 2**64 else 0,
        observed_time_unix_nano=received_ns,
        severity_number=severity_number,
        severity_text=severity_text,
        body=AnyValue(string_value=msg.message),
        attributes=attributes,
    )
    return resource, record


def _text(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _int(key: str, value: int) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(int_value=value))


def _sd_value(structured_data: dict[str, dict[str, str]]) -> AnyValue:
    return AnyValue(
        kvlist_value=KeyValueList(
            values=[
                KeyValue(
                    key=sd_id,
                    value=AnyValue(
                        kvlist_value=KeyValueList(
                            values=[_text(name, value) for name, value in params.items()]
                        )
                    ),
                )
                for sd_id, params in structured_data.items()
            ]
        )
    )


def _split_peer(peer: str) -> tuple[str, int | None]:
    """``host``, ``host:port`` or ``[v6]:port`` as (address, port or None); a bare IPv6
    address (several colons) is all address."""
    if peer.startswith("["):
        address, _, rest = peer[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif peer.count(":") == 1:
        address, _, port = peer.partition(":")
    else:
        address, port = peer, ""
    if len(port) <= 5 and port.isascii() and port.isdigit() and int(port) < 65536:
        return address, int(port)
    return address, None
