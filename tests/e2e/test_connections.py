"""Connection limits and timeouts of the real gateway: floods of idle sockets, slowloris, stalled
bodies, gRPC stream and idle limits. Every listener must keep answering what it can, and the
liveness probe always."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from gateway.otlp.batch import Signal
from tests.e2e.conftest import forward_config
from tests.support.otlp_samples import sample_request

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
CAP = 40  # max_connections of each OTLP listener in these tests


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    sock.setblocking(False)
    return sock


def closed_within(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
    """The sockets the peer closed (EOF or reset) within ``timeout`` s; what it sent is read."""
    open_ = {s.fileno(): s for s in socks}
    closed: list[socket.socket] = []
    poller = select.poll()
    for fd in open_:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while open_ and (left := deadline - time.monotonic()) > 0:
        for fd, _ in poller.poll(left * 1000):
            try:
                data = open_[fd].recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                poller.unregister(fd)
                closed.append(open_.pop(fd))
    return closed


def answer(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """What the gateway sends until it closes ``sock``, and after how long."""
    sock.setblocking(True)
    sock.settimeout(timeout)
    started, data = time.monotonic(), b""
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic() - started


def http_export(client: httpx.Client, gateway) -> int:
    body = sample_request(Signal.TRACES, 1).SerializeToString()
    headers = {"Content-Type": "application/x-protobuf"}
    url = f"{gateway.http_endpoint}/v1/traces"
    return client.post(url, content=body, headers=headers).status_code


def grpc_export(channel: grpc.Channel, timeout: float = 5.0) -> ExportTraceServiceResponse:
    call = channel.unary_unary(
        EXPORT,
        request_serializer=ExportTraceServiceRequest.SerializeToString,
        response_deserializer=ExportTraceServiceResponse.FromString,
    )
    request = sample_request(Signal.TRACES, 1)
    assert isinstance(request, ExportTraceServiceRequest)
    return call(request, timeout=timeout)


def own_channel(gateway) -> grpc.Channel:
    """A channel with a connection of its own (channels share connections by default)."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    return grpc.insecure_channel(gateway.grpc_endpoint, options=options)


def live(gateway) -> float:
    """Seconds /health/live took to answer 200."""
    started = time.monotonic()
    assert httpx.get(f"{gateway.admin_url}/health/live", timeout=1).status_code == 200
    return time.monotonic() - started


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def test_a_flood_of_idle_connections_is_capped_and_timed_out(sink, start_gateway, sockets) -> None:
    options = {
        "http": {"max_connections": CAP, "read_header_timeout": "2s"},
        "grpc": {"max_connections": CAP, "handshake_timeout": "2s"},
    }
    gateway = start_gateway(forward_config(sink), protocol_options=options)
    with httpx.Client(timeout=5) as client, own_channel(gateway) as channel:
        # Clients connected before the flood keep their connections and are served during it.
        assert http_export(client, gateway) == 200
        grpc_export(channel)
        http_flood = [connect(gateway.http_port) for _ in range(3 * CAP)]
        grpc_flood = [connect(gateway.grpc_port) for _ in range(3 * CAP)]
        sockets.extend(http_flood + grpc_flood)
        # Over the cap: closed at once, well before the 2 s timeouts (the clients connected
        # before count against the cap).
        refused = closed_within(http_flood + grpc_flood, 1.0)
        refused_http = [s for s in refused if s in http_flood]
        assert len(refused_http) == 3 * CAP - (CAP - 1)
        assert len(refused) - len(refused_http) >= 2 * CAP
        assert live(gateway) < 1.0  # the admin listener has a cap of its own
        assert http_export(client, gateway) == 200
        grpc_export(channel)
        assert gateway.metric(
            "otelgate_listener_connections_refused_total", listener="otlp/http"
        ) == len(refused_http)
        assert gateway.metric("otelgate_listener_connections", listener="otlp/http") == CAP
        # Within the cap: closed by the header (HTTP) or handshake (gRPC) timeout.
        held = [s for s in http_flood + grpc_flood if s not in refused]
        assert len(closed_within(held, 4.0)) == len(held)
        assert gateway.metric(
            "otelgate_listener_connections_closed_total",
            listener="otlp/http",
            reason="header_timeout",
        ) == len([s for s in held if s in http_flood])
    # New clients get in again.
    with httpx.Client(timeout=5) as client, own_channel(gateway) as channel:
        assert http_export(client, gateway) == 200
        grpc_export(channel)
    assert live(gateway) < 1.0


def test_slow_clients_are_cut_off_on_the_otlp_and_admin_listeners(
    sink, start_gateway, sockets
) -> None:
    slow = {"read_header_timeout": "1s", "read_body_timeout": "1s"}
    gateway = start_gateway(forward_config(sink), protocol_options={"http": slow, "admin": slow})
    loris = connect(gateway.http_port)
    stalled = connect(gateway.http_port)
    admin_idle = connect(gateway.admin_port)
    sockets.extend([loris, stalled, admin_idle])
    stalled.send(
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        b"Content-Length: 1000\r\n\r\n" + b"\x0a" * 10
    )

    def trickle() -> None:  # a header byte every 100 ms, as long as the gateway lets it
        try:
            for byte in b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                loris.send(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    for sock, status in ((loris, b"408"), (stalled, b"408"), (admin_idle, b"")):
        data, took = answer(sock, 5)
        assert data.split(b" ")[1:2] == ([status] if status else []), data
        assert took < 2.0
    sender.join(15)
    assert live(gateway) < 1.0
    closed = "otelgate_listener_connections_closed_total"
    assert gateway.metric(closed, listener="otlp/http", reason="header_timeout") == 1
    assert gateway.metric(closed, listener="otlp/http", reason="body_timeout") == 1
    assert gateway.metric(closed, listener="admin", reason="header_timeout") >= 1


def test_grpc_streams_over_the_limit_wait_and_idle_connections_are_closed(
    sink, start_gateway, sockets
) -> None:
    options = {
        "grpc": {
            "max_concurrent_streams": 2,
            "handshake_timeout": "1s",
            "keepalive": {"server_parameters": {"max_connection_idle": "1s"}},
        }
    }
    gateway = start_gateway(forward_config(sink), protocol_options=options)
    with own_channel(gateway) as channel, own_channel(gateway) as other:
        grpc_export(channel)
        release = [threading.Event(), threading.Event()]

        def held_request(event: threading.Event) -> Iterator[bytes]:
            event.wait(20)  # the stream stays open, without a message, until released
            yield sample_request(Signal.TRACES, 1).SerializeToString()

        held = [channel.stream_unary(EXPORT).future(held_request(e)) for e in release]
        time.sleep(0.5)
        with pytest.raises(grpc.RpcError) as waited:  # a third stream waits, not refused
            grpc_export(channel, timeout=1.0)
        assert waited.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        grpc_export(other)  # the limit is per connection
        queued = channel.unary_unary(EXPORT).future(
            sample_request(Signal.TRACES, 1).SerializeToString(), timeout=10
        )
        time.sleep(0.3)
        assert not queued.done()
        release[0].set()
        empty = ExportTraceServiceResponse().SerializeToString()  # all accepted
        assert held[0].result(5) == empty
        assert queued.result(5) == empty  # the waiting call went through
        release[1].set()
        assert held[1].result(5) == empty
        # Idle connections (no calls) are closed after max_connection_idle; their channels
        # reconnect on the next call.
        deadline = time.monotonic() + 15
        while gateway.metric("otelgate_listener_connections", listener="otlp/grpc") > 0:
            assert time.monotonic() < deadline, "idle gRPC connections were not closed"
            time.sleep(0.2)
        grpc_export(channel)
    raw = connect(gateway.grpc_port)  # never sends the HTTP/2 preface
    sockets.append(raw)
    assert closed_within([raw], 3.0) == [raw]
