"""The Elasticsearch look-alike's HTTP layer: what happens to a request before and after the bulk
rules of :mod:`tests.support.elasticsearch_bulk`.

In order: a body over ``http.max_content_length`` (after gzip/deflate decoding) is answered 413
with an empty body and the connection closed, as Netty does; an injected failure
(``fail_next``) is answered; credentials are checked when the server has any (401
``security_exception`` with the three ``WWW-Authenticate`` challenges); the ``Accept`` /
``Content-Type`` media types and their ``compatible-with`` versions are checked (400
``media_type_header_exception``); then ``GET /`` (the info body the official clients read) or
``_bulk`` (406 for a content type that is not JSON / NDJSON, 400 for an unknown parameter or
``refresh`` value, then the bulk itself). Every answer but the 413 carries
``X-elastic-product: Elasticsearch``, which the official clients require. Responses are JSON
(``filter_path`` and ``pretty`` applied), gzip-compressed when the client accepts it.
"""

from __future__ import annotations

import gzip
import json
import time
import zlib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.support.elasticsearch_bulk import EsError, es_error, parse_bulk
from tests.support.elasticsearch_headers import (
    CHALLENGES,
    authenticate,
    compat_version,
    content_type_refusal,
)
from tests.support.http_server import QuietHandler, TrackingHTTPServer

if TYPE_CHECKING:
    from tests.support.elasticsearch_server import ElasticsearchServer


PRODUCT_HEADER = ("X-elastic-product", "Elasticsearch")
BULK_PARAMS = frozenset(
    {
        "pipeline",
        "refresh",
        "routing",
        "_source",
        "_source_excludes",
        "_source_includes",
        "timeout",
        "wait_for_active_shards",
        "require_alias",
        "require_data_stream",
        "list_executed_pipelines",
        "include_source_on_error",
        "filter_path",
        "pretty",
        "human",
        "error_trace",
    }
)
DRAIN_LIMIT = 8 * 1024 * 1024  # an oversized body up to this size is read before the 413


@dataclass
class Reply:
    status: int
    payload: Any = None  # a JSON value, or bytes sent as they are
    headers: list[tuple[str, str]] = field(default_factory=list)
    product: bool = True


def error_reply(error: EsError, extra: list[tuple[str, str]] | None = None) -> Reply:
    """Elasticsearch's error body: the error with its ``root_cause`` and the status."""
    root = {k: v for k, v in error.error.items() if k != "caused_by"}
    body = {"error": {"root_cause": [root], **error.error}, "status": error.status}
    return Reply(error.status, body, extra or [])


def filter_path(value: Any, expressions: str) -> Any:
    """Keep what ``filter_path`` names (``*`` one key, ``**`` any depth); drop what empties."""
    paths = [e.strip().split(".") for e in expressions.split(",") if e.strip()]

    def keep(node: Any, patterns: list[list[str]]) -> Any:
        if any(not p or p == ["**"] for p in patterns):
            return node
        if isinstance(node, list):
            kept = [k for k in (keep(item, patterns) for item in node) if k is not _DROP]
            return kept or _DROP
        if not isinstance(node, dict):
            return _DROP
        out = {}
        for key, item in node.items():
            below = [p[1:] for p in patterns if p[0] != "**" and fnmatchcase(key, p[0])]
            below += [p for p in patterns if p[0] == "**"] + [
                p[2:] for p in patterns if p[0] == "**" and len(p) > 1 and fnmatchcase(key, p[1])
            ]
            if below and (kept := keep(item, below)) is not _DROP:
                out[key] = kept
        return out or _DROP

    kept = keep(value, paths)
    return {} if kept is _DROP else kept


_DROP = object()


def info_body(version: str) -> dict[str, Any]:
    major = int(version.split(".")[0])
    lucene, wire, index = {8: ("9.12.2", "7.17.0", "7.0.0")}.get(
        major, ("10.2.2", "8.19.0", "8.0.0")
    )
    return {
        "name": "lookalike-node-1",
        "cluster_name": "otelgate-lookalike",
        "cluster_uuid": "bG9va2FsaWtlLWNsdXN0ZXI",
        "version": {
            "number": version,
            "build_flavor": "default",
            "build_type": "docker",
            "build_hash": "0" * 40,
            "build_date": "2025-09-01T00:00:00.000000000Z",
            "build_snapshot": False,
            "lucene_version": lucene,
            "minimum_wire_compatibility_version": wire,
            "minimum_index_compatibility_version": index,
        },
        "tagline": "You Know, for Search",
    }


class EsHTTPServer(TrackingHTTPServer):
    """The HTTP server of an :class:`~tests.support.elasticsearch_server.ElasticsearchServer`."""

    def __init__(self, address: tuple[str, int], es: ElasticsearchServer) -> None:
        self.es = es
        super().__init__(address, _Handler)


class _Handler(QuietHandler):
    server: EsHTTPServer

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        es = self.server.es
        self._compat: int | None = None
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        headers = {key.lower(): value for key, value in self.headers.items()}
        body = self._read_body(headers, es.max_content_length)
        if body is None:  # over http.max_content_length: Netty's 413, then the connection closes
            es.record(method, url.path, query, headers, b"", 413)
            self._send(Reply(413, b"", [("Connection", "close")], product=False), headers, method)
            self.close_connection = True
            return
        if isinstance(body, Reply):
            reply = body
        else:
            try:
                reply = self._answer(method, unquote(url.path), query, headers, body)
            except EsError as error:
                reply = error_reply(error)
        es.record(
            method, url.path, query, headers, body if isinstance(body, bytes) else b"", reply.status
        )
        self._send(reply, headers, method)

    def _read_body(self, headers: dict[str, str], limit: int) -> bytes | Reply | None:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raw = b""
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                raw += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass  # trailers
        else:
            length = int(headers.get("content-length") or 0)
            encoded = headers.get("content-encoding", "").strip().lower() not in ("", "identity")
            if length > limit and not encoded:
                if length <= DRAIN_LIMIT:
                    self.rfile.read(length)
                return None
            raw = self.rfile.read(length)
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding not in ("gzip", "x-gzip", "deflate", "x-deflate"):
            return None if len(raw) > limit else raw
        try:
            inflater = zlib.decompressobj(zlib.MAX_WBITS | (16 if "gzip" in encoding else 32))
            body = inflater.decompress(raw, limit + 1)
        except zlib.error as exc:
            return error_reply(es_error(400, "decompression_exception", str(exc)))
        return None if len(body) > limit else body

    def _answer(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        es = self.server.es
        failure = es.take_failure(path)
        if failure is not None:
            return failure
        uri = self.path
        denied = authenticate(headers.get("authorization"), es.api_keys, es.users, uri)
        if denied is not None:
            return error_reply(denied, [("WWW-Authenticate", c) for c in CHALLENGES])
        version = compat_version(headers, bool(body), int(es.version.split(".")[0]))
        self._compat = version
        parts = [p for p in path.split("/") if p]
        if not parts:
            if method not in ("GET", "HEAD"):
                return self._not_allowed(uri, method, "HEAD, GET")
            return Reply(200, info_body(es.version))
        if parts[-1] != "_bulk" or len(parts) > 2:
            return Reply(400, {"error": f"no handler found for uri [{uri}] and method [{method}]"})
        if method not in ("POST", "PUT"):
            return self._not_allowed(uri, method, "POST, PUT")
        if body:
            refusal = content_type_refusal(headers.get("content-type"))
            if refusal is not None:
                return Reply(406, {"error": refusal, "status": 406})
        unknown = sorted(set(query) - BULK_PARAMS)
        if unknown:
            listed = ", ".join(f"[{p}]" for p in unknown)
            noun = "parameter" if len(unknown) == 1 else "parameters"
            raise es_error(
                400,
                "illegal_argument_exception",
                f"request [{path}] contains unrecognized {noun}: {listed}",
            )
        refresh = query.get("refresh")
        if refresh not in (None, "", "true", "false", "wait_for"):
            raise es_error(
                400, "illegal_argument_exception", f"Unknown value for refresh: [{refresh}]."
            )
        started = time.monotonic()
        actions = parse_bulk(body, parts[0] if len(parts) == 2 else None, query.get("pipeline"))
        items = es.run_bulk(actions, refresh in ("", "true"))
        took = int((time.monotonic() - started) * 1000)
        answer = {
            "errors": any("error" in next(iter(i.values())) for i in items),
            "took": took,
            "items": items,
        }
        return Reply(200, answer)

    def _not_allowed(self, uri: str, method: str, allowed: str) -> Reply:
        message = (
            f"Incorrect HTTP method for uri [{uri}] and method [{method}], allowed: [{allowed}]"
        )
        return Reply(405, {"error": message, "status": 405}, [("Allow", allowed.replace(" ", ""))])

    def _send(self, reply: Reply, headers: dict[str, str], method: str) -> None:
        query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        payload = reply.payload
        content_type = None
        if not isinstance(payload, bytes):
            if reply.status < 300 and "filter_path" in query:
                payload = filter_path(payload, query["filter_path"])
            pretty = "pretty" in query and query["pretty"] != "false"
            text = json.dumps(
                payload,
                indent=2 if pretty else None,
                separators=(",", " : ") if pretty else (",", ":"),
            )
            payload = text.encode() + (b"\n" if pretty else b"")
            content_type = (
                f"application/vnd.elasticsearch+json;compatible-with={self._compat}"
                if self._compat
                else "application/json"
            )
        extra = list(reply.headers)
        if payload and "gzip" in headers.get("accept-encoding", "").lower():
            payload = gzip.compress(payload)
            extra.append(("Content-Encoding", "gzip"))
        self.send_response_only(reply.status)
        if reply.product:
            self.send_header(*PRODUCT_HEADER)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for key, value in extra:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)
