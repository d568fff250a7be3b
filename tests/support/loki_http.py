"""The Loki look-alike's HTTP API: its two paths, the bodies each takes and how errors look.

``POST /loki/api/v1/push`` checks every request against the published wire format:

* protobuf: ``Content-Type: application/x-protobuf``, a snappy **block** (raw) body (the framed
  format is refused), a ``logproto.PushRequest`` decoded with message classes built from
  ``pkg/push/push.proto`` (independently of the exporter's) and free of unknown fields, so a
  wrong field number or wire type is caught (:mod:`tests.support.loki_wire`);
* JSON: ``Content-Type: application/json``, optionally gzip, ``{"streams":[{"stream":{..},
  "values":[["<ns as string>","line",{metadata}]]}]}`` and nothing else.

It answers 204, or the error as text. ``POST /otlp/v1/logs`` takes OTLP protobuf (optionally
gzip) and answers 204 like Loki; its errors are ``google.rpc.Status`` protobuf bodies sent as
``application/octet-stream``, as Loki's are. What is stored of a request that decodes is
judged in :mod:`tests.support.loki_store`.
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING

from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from tests.support.http_server import QuietHandler, TrackingHTTPServer
from tests.support.loki_wire import Rejected, bad_request, decode_json, decode_protobuf

if TYPE_CHECKING:
    from tests.support.loki_server import LokiServer


class LokiHTTPServer(TrackingHTTPServer):
    """The HTTP server of a :class:`~tests.support.loki_server.LokiServer`."""

    def __init__(self, address: tuple[str, int], loki: LokiServer) -> None:
        self.loki = loki
        super().__init__(address, _Handler)


class _Handler(QuietHandler):
    server: LokiHTTPServer

    def _answer(self, status: int, body: bytes = b"", extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if body and "Content-Type" not in (extra or {}):
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        loki = self.server.loki
        path = self.path.split("?", 1)[0]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path not in ("/loki/api/v1/push", "/otlp/v1/logs"):
            self._answer(404, b"404 page not found\n")
            return
        failure = loki.take_failure(path)
        if failure is not None:
            extra = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            self._answer(failure.status, failure.body.encode(), extra)
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            self._handle(path, body, headers)
        except Rejected as error:
            loki.refuse(path, error)
            if path == "/otlp/v1/logs":  # a google.rpc.Status, typed as Loki types it
                status = status_pb2.Status(
                    code=3 if error.status == 400 else 13, message=str(error)
                )
                body = status.SerializeToString()
                self._answer(error.status, body, {"Content-Type": "application/octet-stream"})
                return
            self._answer(error.status, f"{error}\n".encode())
            return
        self._answer(204)

    def _handle(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        store = self.server.loki.store
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "gzip", "snappy"):
            raise bad_request(f'Content-Encoding "{encoding}" not supported')
        if encoding == "snappy" and media != "application/x-protobuf":
            raise bad_request("Content-Encoding snappy is only for protobuf bodies")
        if encoding == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError) as exc:
                raise bad_request(f"gzip: {exc}") from None
        if path == "/otlp/v1/logs":
            if media != "application/x-protobuf":
                raise Rejected(415, f"unsupported content type {media!r}")
            try:
                store.accept_otlp(ExportLogsServiceRequest.FromString(body), headers)
            except DecodeError as exc:
                raise bad_request(f"undecodable OTLP request: {exc}") from None
            return
        if media == "application/x-protobuf":
            streams, selectors = decode_protobuf(body)
            store.accept_push("protobuf", streams, headers, selectors)
        elif media == "application/json":
            store.accept_push("json", decode_json(body), headers, [])
        else:
            raise Rejected(415, f"unsupported Content-Type {media!r}")
