"""Real senders through a real relay: util-linux ``logger`` sends RFC 5424 and RFC 3164 messages
to Debian's rsyslogd, which forwards each of them three ways to the real gateway's ``syslog``
receivers (UDP, TCP with octet counting, and TLS with x509/name and a client certificate),
in RFC 5424 (``RSYSLOG_SyslogProtocol23Format``) and in rsyslog's 3164-style
``RSYSLOG_ForwardFormat``. The gateway sends the log records to a downstream OTLP sink, where
every message must arrive once per path with its fields.

rsyslog's config is in :mod:`tests.support.rsyslog`; what rsyslog does to the fields on the way
(observed with rsyslog 8.2302 and util-linux 2.38, Debian 12) is noted where it is checked.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from gateway.otlp.batch import Signal
from tests.e2e.conftest import forward_config
from tests.support.certs import TestCa
from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_sink import OtlpSink
from tests.support.ports import free_port
from tests.support.rsyslog import GTLS_DRIVER, RSYSLOGD, Forward, Rsyslog

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(90),
    pytest.mark.skipif(RSYSLOGD is None, reason="rsyslogd is not installed (package rsyslog)"),
    pytest.mark.skipif(GTLS_DRIVER is None, reason="rsyslog's TLS driver (rsyslog-gnutls) missing"),
    pytest.mark.skipif(shutil.which("logger") is None, reason="util-linux logger is not installed"),
]

PATH_KEY = "test.relay_path"  # resource attribute the gateway adds to what came in over TLS
RFC5424 = "RSYSLOG_SyslogProtocol23Format"
FORWARD = "RSYSLOG_ForwardFormat"  # <PRI>RFC3339-TIMESTAMP HOSTNAME TAG MSG (3164-style)
# path -> (the template rsyslog forwards it with, network.transport)
PATHS = {"udp": (RFC5424, "udp"), "tcp": (FORWARD, "tcp"), "tls": (RFC5424, "tcp")}


@dataclass(frozen=True)
class Sent:
    """One message handed to logger, and what its log record must carry."""

    rfc: str  # logger's --rfc5424 / --rfc3164
    priority: str  # logger's -p
    facility: int
    severity_number: int
    severity_text: str
    app: str
    text: str
    procid: str | None = None  # logger --id=...
    msgid: str | None = None  # logger --msgid (RFC 5424 only)
    sd: tuple[str, str, str] | None = None  # (SD-ID, PARAM, value): logger --sd-id/--sd-param

    def command(self, port: int) -> list[str]:
        args = ["logger", "--server", "127.0.0.1", "--port", str(port), "--tcp",
                f"--{self.rfc}", "-t", self.app, "-p", self.priority]  # fmt: skip
        if self.procid:
            args.append(f"--id={self.procid}")
        if self.msgid:
            args += ["--msgid", self.msgid]
        if self.sd:
            sd_id, param, value = self.sd
            args += ["--sd-id", sd_id, "--sd-param", f'{param}="{value}"']
        return [*args, self.text]


def messages(token: str) -> list[Sent]:
    """Both RFC formats, seven severities and facilities, a PROCID, a MSGID and structured
    data; each text unique to this run."""
    return [
        Sent("rfc5424", "local3.err", 19, 17, "err", "checkout", f"{token} payment failed",
             procid="4242", msgid="PAY1", sd=("order@32473", "id", "A-17")),
        Sent("rfc3164", "user.warning", 1, 13, "warning", "cron", f"{token} job slow"),
        Sent("rfc5424", "daemon.info", 3, 9, "info", "sshd", f"{token} session opened"),
        Sent("rfc3164", "local7.debug", 23, 5, "debug", "worker", f"{token} tick 7",
             procid="99"),
        Sent("rfc5424", "auth.crit", 4, 18, "crit", "login", f"{token} lockout: 5 tries"),
        Sent("rfc3164", "mail.notice", 2, 10, "notice", "postfix", f"{token} queue flushed"),
        Sent("rfc5424", "local0.alert", 16, 19, "alert", "raid", f"{token} disk 2 lost"),
    ]  # fmt: skip


class Record(NamedTuple):
    """A log record as it arrived, with its resource attributes and attributes as dicts."""

    resource: dict[str, Any]
    attributes: dict[str, Any]
    record: LogRecord


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def arrived(sink: OtlpSink, sent: list[Sent]) -> dict[tuple[str, str], list[Record]]:
    """The log records in the sink by (path, the text of the message they carry)."""
    found: dict[tuple[str, str], list[Record]] = {}
    for item in sink.received:
        if item.signal is not Signal.LOGS:
            continue
        for rl in item.request.resource_logs:  # type: ignore[union-attr]
            resource = {kv.key: _value(kv.value) for kv in rl.resource.attributes}
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    body = record.body.string_value
                    text = next((m.text for m in sent if m.text in body), body)
                    attributes = {kv.key: _value(kv.value) for kv in record.attributes}
                    path = resource.get(PATH_KEY) or attributes.get("network.transport", "?")
                    found.setdefault((path, text), []).append(Record(resource, attributes, record))
    return found


def relay(sink: OtlpSink, rsyslog: Rsyslog, sent: list[Sent]) -> dict[tuple[str, str], Record]:
    """Send with logger through rsyslog; each message as it arrived over each path, once."""
    for message in sent:
        subprocess.run(message.command(rsyslog.input_port), check=True, timeout=10)
    wanted = {(path, m.text) for path in PATHS for m in sent}
    done = sink.wait_for(lambda s: wanted <= set(arrived(s, sent)), timeout=30)
    found = arrived(sink, sent)
    assert done, f"missing {sorted(wanted - set(found))}\n{rsyslog.output()}"
    assert set(found) == wanted, sorted(set(found) - wanted)  # nothing else (rsyslog's own)
    duplicated = {key: len(copies) for key, copies in found.items() if len(copies) > 1}
    assert not duplicated, duplicated
    return {key: copies[0] for key, copies in found.items()}


@pytest.fixture
def relay_setup(
    tmp_path: Path, sink: OtlpSink, start_gateway: Callable[..., GatewayProcess]
) -> Iterator[tuple[GatewayProcess, Rsyslog]]:
    """The gateway (``syslog`` on UDP+TCP, ``syslog/tls`` with mTLS) and rsyslogd forwarding
    to it three ways; rsyslogd's output is printed when the test fails (captured otherwise)."""
    ca = TestCa(tmp_path, "ca")
    server = ca.server()
    client = ca.client("rsyslog-relay")
    plain, tls = free_port(), free_port()  # plain: UDP and TCP on one number, as syslog's 514
    config = forward_config(sink)
    config["receivers"] = {
        "syslog": {"udp": {"endpoint": f"127.0.0.1:{plain}"},
                   "tcp": {"endpoint": f"127.0.0.1:{plain}"}},
        "syslog/tls": {"tcp": {"endpoint": f"127.0.0.1:{tls}", "framing": "octet_counting",
                               "tls": {"cert_file": str(server.cert_file),
                                       "key_file": str(server.key_file),
                                       "client_ca_file": str(ca.ca_file)}}},
    }  # fmt: skip
    config["processors"] = {
        "resource/tls": {"attributes": [{"key": PATH_KEY, "value": "tls", "action": "insert"}]}
    }
    config["service"]["pipelines"] = {
        "logs": {"receivers": ["syslog"], "exporters": ["otlp/sink"]},
        "logs/tls": {"receivers": ["syslog/tls"], "processors": ["resource/tls"],
                     "exporters": ["otlp/sink"]},
    }  # fmt: skip
    gateway = start_gateway(config)
    forwards = [
        Forward(plain, "udp", PATHS["udp"][0]),
        Forward(plain, "tcp", PATHS["tcp"][0], framing="octet-counted"),
        Forward(tls, "tcp", PATHS["tls"][0], framing="octet-counted", tls=True),
    ]
    relay = Rsyslog(tmp_path / "rsyslog", forwards, ca.ca_file, client.cert_file, client.key_file)
    try:
        relay.check()
        relay.start()
        yield gateway, relay
    finally:
        relay.stop()
        print(relay.output())


def expected_body(message: Sent, template: str) -> str:
    """The body the record must have. rsyslog keeps the space after an RFC 3164 ``TAG:`` in its
    ``msg`` property (its own ``%msg%`` shows ``[ text]``), and ``RSYSLOG_SyslogProtocol23Format``
    writes ``%STRUCTURED-DATA% %msg%``: RFC 5424's MSG then starts with that space and keeps it.
    ``RSYSLOG_ForwardFormat`` writes ``%msg:::sp-if-no-1st-sp%%msg%``: one space, the separator,
    after the TAG -- ``APP[PROCID]:``, ``APP:``, or for an RFC 5424 message without PROCID a bare
    ``APP`` -- so the body is the text in every case, and so is ``service.name`` the APP."""
    return f" {message.text}" if template == RFC5424 and message.rfc == "rfc3164" else message.text


def test_rsyslog_relays_logger_messages_over_udp_tcp_and_tls_with_their_fields(
    sink: OtlpSink, relay_setup: tuple[GatewayProcess, Rsyslog]
) -> None:
    gateway, rsyslog = relay_setup
    sent = messages(uuid.uuid4().hex[:12])
    found = relay(sink, rsyslog, sent)

    hostnames = {socket.gethostname(), socket.gethostname().split(".")[0]}
    for (path, text), (resource, attributes, record) in sorted(found.items()):
        template, transport = PATHS[path]
        message = next(m for m in sent if m.text == text)
        where = f"{path} ({template}) {message.rfc} {message.priority} {text!r}"
        assert "syslog.parse_error" not in attributes, (where, attributes)
        assert "syslog.invalid_utf8" not in attributes, (where, attributes)
        assert record.body.string_value == expected_body(message, template), where
        assert resource.get("service.name") == message.app, (where, resource)
        assert record.severity_number == message.severity_number, where
        assert record.severity_text == message.severity_text, where
        assert attributes["syslog.facility"] == message.facility, where
        assert resource["host.name"] in hostnames, (where, resource)
        assert attributes["network.transport"] == transport, where
        assert attributes["network.peer.address"] == "127.0.0.1", where
        assert abs(record.time_unix_nano - record.observed_time_unix_nano) < 120 * 10**9, where
        assert attributes.get("syslog.procid") == message.procid, (where, attributes)
        if template == RFC5424:  # the fields only RFC 5424 carries cross the relay
            assert attributes["syslog.version"] == 1, where
            assert attributes.get("syslog.msgid") == message.msgid, (where, attributes)
            sd = attributes.get("syslog.structured_data", {})
            if message.sd is not None:
                sd_id, param, value = message.sd
                assert sd[sd_id] == {param: value}, (where, sd)
            if message.rfc == "rfc5424":  # logger adds timeQuality unless told not to
                assert "timeQuality" in sd, (where, sd)
            else:  # a 3164 message has none; rsyslog writes "-"
                assert "syslog.structured_data" not in attributes, where
        else:  # RSYSLOG_ForwardFormat has no VERSION, MSGID or STRUCTURED-DATA
            assert "syslog.version" not in attributes, where
            assert "syslog.msgid" not in attributes, where
            assert "syslog.structured_data" not in attributes, where

    for receiver, transport in (("syslog", "udp"), ("syslog", "tcp"), ("syslog/tls", "tcp")):
        labels = {"receiver": receiver, "transport": f"syslog/{transport}"}
        assert gateway.metric("otelgate_syslog_messages_total", **labels) == len(sent), labels
        assert gateway.metric("otelgate_syslog_parse_errors_total", **labels) == 0, labels
        assert gateway.metric("otelgate_syslog_framing_errors_total", **labels) == 0, labels


def test_a_3164_relay_of_a_5424_message_without_procid_keeps_its_app_name(
    sink: OtlpSink, relay_setup: tuple[GatewayProcess, Rsyslog]
) -> None:
    """rsyslog relays an RFC 5424 message without PROCID as ``<PRI>TIMESTAMP HOST APP MSG`` in
    its 3164-style templates (syslogtag ``APP``, no colon). RFC 3164 4.1.3: any
    non-alphanumeric character (here the space) ends the TAG; rsyslog's own 3164 parser reads
    such a line back with ``programname`` APP and ``msg`` " MSG", and so does the gateway."""
    _, rsyslog = relay_setup
    token = uuid.uuid4().hex[:12]
    sent = [Sent("rfc5424", "daemon.info", 3, 9, "info", "sshd", f"{token} session opened")]
    resource, attributes, record = relay(sink, rsyslog, sent)[("tcp", sent[0].text)]
    assert resource.get("service.name") == "sshd", resource
    assert record.body.string_value == sent[0].text
    assert "syslog.procid" not in attributes, attributes
    assert "syslog.parse_error" not in attributes, attributes
