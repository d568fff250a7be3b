"""The real gateway process with a ``syslog`` receiver feeding a logs pipeline to a downstream
OTLP sink; util-linux ``logger`` sends over UDP and TCP, in RFC 5424 and RFC 3164."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from gateway.otlp.batch import Signal
from tests.e2e.conftest import forward_config
from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_sink import OtlpSink
from tests.support.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

LOGGER = shutil.which("logger")
# (format, logger's -p, the OTLP severity number it maps to)
FORMATS = (("rfc5424", "local3.err", 17), ("rfc3164", "user.warning", 13))


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def records(sink: OtlpSink) -> dict[str, tuple[dict[str, Any], Any]]:
    """Each log record the sink received, by body, with its resource attributes."""
    found = {}
    for item in sink.received:
        if item.signal is not Signal.LOGS:
            continue
        for rl in item.request.resource_logs:  # type: ignore[union-attr]
            resource = {kv.key: _value(kv.value) for kv in rl.resource.attributes}
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    found[record.body.string_value] = (resource, record)
    return found


@pytest.mark.skipif(LOGGER is None, reason="util-linux logger is not installed")
def test_logger_over_udp_and_tcp_in_both_formats_reaches_the_sink(
    sink: OtlpSink, start_gateway: Callable[..., GatewayProcess]
) -> None:
    assert LOGGER is not None
    port = free_port()  # TCP and UDP on the same number, as syslog's 514
    endpoint = f"127.0.0.1:{port}"
    config = forward_config(sink)
    config["receivers"] = {"syslog": {"udp": {"endpoint": endpoint},
                                      "tcp": {"endpoint": endpoint}}}  # fmt: skip
    config["service"]["pipelines"] = {"logs": {"receivers": ["syslog"], "exporters": ["otlp/sink"]}}
    gateway = start_gateway(config)
    assert f"syslog/udp on {endpoint}" in gateway.logs()
    assert f"syslog/tcp on {endpoint}" in gateway.logs()

    sent = {}
    for transport in ("udp", "tcp"):
        for rfc, priority, severity in FORMATS:
            body = f"{transport} {rfc} hello"
            subprocess.run(
                [LOGGER, "--server", "127.0.0.1", "--port", str(port), f"--{transport}",
                 f"--{rfc}", "-t", f"app-{rfc}", "-p", priority, body],
                check=True, timeout=10,
            )  # fmt: skip
            sent[body] = (transport, rfc, severity)

    assert sink.wait_for(lambda s: set(sent) <= set(records(s)), timeout=20), records(sink)
    found = records(sink)
    hostname = socket.gethostname()
    for body, (transport, rfc, severity) in sent.items():
        resource, record = found[body]
        assert resource["service.name"] == f"app-{rfc}"
        assert hostname.startswith(resource["host.name"])
        assert record.severity_number == severity
        assert record.severity_text == ("err" if severity == 17 else "warning")
        attributes = {kv.key: _value(kv.value) for kv in record.attributes}
        assert attributes["syslog.facility"] == (19 if rfc == "rfc5424" else 1)
        assert attributes["network.transport"] == transport
        assert attributes["network.peer.address"] == "127.0.0.1"
        assert "syslog.parse_error" not in attributes
        assert record.time_unix_nano > 0 and record.observed_time_unix_nano > 0
    for transport in ("udp", "tcp"):
        accepted = gateway.metric(
            "otelgate_receiver_accepted_items_total", signal="logs",
            transport=f"syslog/{transport}",
        )  # fmt: skip
        assert accepted == 2
        messages = gateway.metric(
            "otelgate_syslog_messages_total", receiver="syslog", transport=f"syslog/{transport}"
        )
        assert messages == 2
    parse_errors = gateway.metric(
        "otelgate_syslog_parse_errors_total", receiver="syslog", transport="syslog/udp"
    )
    assert parse_errors == 0
