"""Builders of realistic OTLP export requests (traces, logs, metrics) from a seeded RNG.

Each request holds exactly ``items`` spans, log records or metric data points, spread over
one to three resources (a gateway sees batches from SDKs and from other collectors). The
content follows the semantic conventions: SERVER/CLIENT/PRODUCER/INTERNAL spans of traces
through the services of :mod:`benchmarks.world`, about 2% of spans in error with an
``exception`` event and a stack trace, logs with trace context, severities and some secrets
in them, and metrics of every kind.
"""

from __future__ import annotations

import random

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1 import metrics_pb2 as mpb
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Span, Status

from benchmarks import world
from benchmarks.world import Service, attr

BASE_NS = 1_717_200_000_000_000_000  # 2024-06-01T00:00:00Z; content is fixed by the seed
_SEVERITY = {"DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17}
_CUMULATIVE = mpb.AGGREGATION_TEMPORALITY_CUMULATIVE
_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def _split(rng: random.Random, items: int) -> list[int]:
    """``items`` split over one to three resources."""
    parts = rng.choice((1, 1, 2, 3))
    if parts == 1 or items < parts:
        return [items]
    cuts = sorted(rng.sample(range(1, items), parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, items], strict=True)]


def _stacktrace(service: Service, etype: str, message: str, rng: random.Random) -> str:
    """A stack trace in the style of the service's language."""
    if service.language == "python":
        frames = [
            ("app/views.py", "checkout"), ("app/payment_client.py", "charge"),
            ("urllib3/connectionpool.py", "urlopen"), ("http/client.py", "getresponse"),
        ]  # fmt: skip
        lines = ["Traceback (most recent call last):"]
        for path, func in frames:
            lines.append(f'  File "/srv/{path}", line {rng.randint(20, 900)}, in {func}')
            lines.append(f"    result = {func}(request, timeout=5.0)")
        return "\n".join([*lines, f"{etype}: {message}"])
    head = f"{etype}: {message}"
    methods = ["com.shop.payment.ChargeService.charge", "com.shop.payment.ChargeController.create",
              "org.springframework.web.servlet.FrameworkServlet.service",
              "jakarta.servlet.http.HttpServlet.service", "java.lang.Thread.run"]  # fmt: skip
    body = [f"\tat {m}({m.split('.')[-2]}.java:{rng.randint(30, 700)})" for m in methods]
    return "\n".join([head, *body, "\t... 42 more"])


class _Ids:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def trace(self) -> bytes:
        return self.rng.randbytes(16)

    def span(self) -> bytes:
        return self.rng.randbytes(8)


def _call_span(
    call: str, service: Service, rng: random.Random
) -> tuple[str, Span.SpanKind.ValueType, list[KeyValue]]:
    """Name, kind and attributes of a CLIENT/PRODUCER span for one dependency call."""
    kind, _, target = call.partition(":")
    if kind == "http":
        method = rng.choice(("GET", "POST"))
        url = f"http://{target}.shop.svc.cluster.local:8080/api/{rng.randint(1, 99999)}"
        return method, Span.SPAN_KIND_CLIENT, [
            attr("http.request.method", method), attr("url.full", url),
            attr("server.address", f"{target}.shop.svc.cluster.local"), attr("server.port", 8080),
            attr("http.response.status_code", 200), attr("network.protocol.version", "1.1"),
        ]  # fmt: skip
    if kind == "db":
        query = world.QUERIES.get(target, f"SELECT * FROM {target} WHERE id = $1")
        operation = query.split()[0]
        return f"{operation} {target}", Span.SPAN_KIND_CLIENT, [
            attr("db.system.name", service.db), attr("db.namespace", "shop"),
            attr("db.collection.name", target), attr("db.operation.name", operation),
            attr("db.query.text", query), attr("server.address", f"{service.db}.shop.internal"),
            attr("server.port", 5432 if service.db == "postgresql" else 3306),
        ]  # fmt: skip
    if kind == "kafka":
        return f"send {target}", Span.SPAN_KIND_PRODUCER, [
            attr("messaging.system", "kafka"), attr("messaging.destination.name", target),
            attr("messaging.operation.type", "send"),
            attr("messaging.destination.partition.id", str(rng.randint(0, 11))),
            attr("messaging.kafka.message.key", f"order-{rng.randint(1, 10**6)}"),
            attr("messaging.message.body.size", rng.randint(200, 4000)),
        ]  # fmt: skip
    key = f"product:{rng.randint(1, 5000)}"
    return "GET", Span.SPAN_KIND_CLIENT, [
        attr("db.system.name", "redis"), attr("db.operation.name", "GET"),
        attr("db.query.text", f"GET {key}"), attr("server.address", "redis-master.shop.internal"),
        attr("server.port", 6379), attr("db.namespace", "0"),
    ]  # fmt: skip


def _trace(service: Service, ids: _Ids, rng: random.Random, limit: int) -> list[Span]:
    """The spans one service records for one request it serves (at most ``limit``)."""
    route = rng.choice(service.routes)
    trace_id, root_id = ids.trace(), ids.span()
    start = BASE_NS + rng.randint(0, 3_600_000_000_000)
    duration = int(rng.lognormvariate(17.5, 0.8))  # median ~40 ms
    failing = rng.random() < 0.05  # the failing call and the root are errors: ~2% of spans
    status = 500 if failing else rng.choice((200, 200, 200, 200, 201, 204, 304, 404))
    path = route.template.replace("{id}", str(rng.randint(1, 5000)))
    path = path.replace("{order_id}", str(rng.randint(10**5, 10**6))).replace(
        "{user_id}", f"u{rng.randint(1, 10**5)}"
    )
    root = Span(
        trace_id=trace_id, span_id=root_id, name=f"{route.method} {route.template}",
        kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=start,
        end_time_unix_nano=start + duration, flags=0x301,
        attributes=[
            attr("http.request.method", route.method), attr("url.path", path),
            attr("url.scheme", "http"), attr("http.route", route.template),
            attr("http.response.status_code", status), attr("network.protocol.version", "1.1"),
            attr("server.address", f"{service.name}.shop.svc.cluster.local"),
            attr("server.port", 8080), attr("client.address", f"10.2.{rng.randint(0, 255)}.7"),
            attr("user_agent.original", rng.choice(world.USER_AGENTS)),
        ],
    )  # fmt: skip
    if rng.random() < 0.3:
        root.parent_span_id = ids.span()  # called by another service
    spans = [root]
    calls = list(route.calls)
    fail_at = rng.randrange(len(calls)) if failing and calls else -1
    offset = start + duration // 20
    for i, call in enumerate(calls):
        if len(spans) >= limit:
            break
        name, kind, attributes = _call_span(call, service, rng)
        length = max(100_000, int(duration * rng.uniform(0.05, 0.6)))
        child = Span(
            trace_id=trace_id, span_id=ids.span(), parent_span_id=root_id, name=name,
            kind=kind, start_time_unix_nano=offset, end_time_unix_nano=offset + length,
            attributes=attributes, flags=0x301,
        )  # fmt: skip
        if i == fail_at:
            etype, message = rng.choice(world.ERRORS)
            child.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=message))
            child.events.add(
                time_unix_nano=offset + length, name="exception",
                attributes=[attr("exception.type", etype), attr("exception.message", message),
                            attr("exception.stacktrace",
                                 _stacktrace(service, etype, message, rng))],
            )  # fmt: skip
            root.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR))
        elif rng.random() < 0.04:
            child.events.add(time_unix_nano=offset, name="retry", attributes=[attr("attempt", 2)])
        spans.append(child)
        offset += length // 2
    if len(spans) < limit and rng.random() < 0.6:
        func = rng.choice(("validate_request", "render", "compute_totals", "serialize"))
        spans.append(Span(
            trace_id=trace_id, span_id=ids.span(), parent_span_id=root_id, name=func,
            kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=start + 50_000,
            end_time_unix_nano=start + 50_000 + duration // 10,
            attributes=[attr("code.function.name", func),
                        attr("code.file.path", f"/srv/{service.name}/handlers.py"),
                        attr("code.line.number", rng.randint(10, 400))],
        ))  # fmt: skip
    return spans


def traces_request(rng: random.Random, seed: str, items: int) -> ExportTraceServiceRequest:
    """A request of exactly ``items`` spans."""
    ids = _Ids(rng)
    request = ExportTraceServiceRequest()
    for count in _split(rng, items):
        service = rng.choice(world.SERVICES)
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(
            world.resource_attributes(service, rng.randrange(6), seed)
        )
        resource_spans.schema_url = "https://opentelemetry.io/schemas/1.26.0"
        scope_spans: ScopeSpans = resource_spans.scope_spans.add()
        scope_spans.scope.CopyFrom(InstrumentationScope(name=service.scope, version="0.47b0"))
        while len(scope_spans.spans) < count:
            limit = count - len(scope_spans.spans)
            scope_spans.spans.extend(_trace(service, ids, rng, limit))
    return request


def _log_text(rng: random.Random) -> tuple[str, str, list[KeyValue]]:
    """Severity, message and attributes of one log line; about 5% carry secrets."""
    user = f"u{rng.randint(1, 10**5)}"
    if rng.random() < 0.05:
        name = rng.choice(world.FIRST_NAMES)
        values = {
            "email": f"{name}.{rng.randint(1, 999)}@example.com",
            "password": f"{name.capitalize()}!{rng.randint(1000, 9999)}",
            "card": "4111 1111 1111 1111", "card_last4": "1111", "cvv": f"{rng.randint(100, 999)}",
            "token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ"
            f"{rng.randbytes(12).hex()}.{rng.randbytes(16).hex()}",
            "phone": f"+44 7700 9{rng.randint(10000, 99999)}",
        }  # fmt: skip
        text = rng.choice(world.SENSITIVE_TEMPLATES).format(**values)
        return "WARN", text, [attr("user.email", values["email"]), attr("user.id", user)]
    severity, template = rng.choice(world.LOG_TEMPLATES)
    etype, error = rng.choice(world.ERRORS)
    text = template.format(
        method="GET", route="/api/orders/{order_id}", status=rng.choice((200, 201, 404)),
        duration_ms=rng.randint(1, 900), order_id=rng.randint(10**5, 10**6), user_id=user,
        items=rng.randint(1, 6), total=f"{rng.randint(100, 90000) / 100:.2f}",
        product_id=rng.randint(1, 5000), db="postgresql", active=rng.randint(1, 20),
        flag=rng.random() < 0.5, table="orders", peer="payment", error=error,
        attempt=rng.randint(1, 3), offset=rng.randint(10**6, 10**8),
        partition=rng.randint(0, 11), client_ip=f"203.0.113.{rng.randint(1, 254)}",
    )  # fmt: skip
    attributes = [attr("user.id", user), attr("thread.name", f"worker-{rng.randint(1, 16)}")]
    if severity == "ERROR":
        attributes += [attr("exception.type", etype), attr("exception.message", error)]
    return severity, text, attributes


def logs_request(rng: random.Random, seed: str, items: int) -> ExportLogsServiceRequest:
    """A request of exactly ``items`` log records."""
    ids = _Ids(rng)
    request = ExportLogsServiceRequest()
    for count in _split(rng, items):
        service = rng.choice(world.SERVICES)
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.extend(
            world.resource_attributes(service, rng.randrange(6), seed)
        )
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = rng.choice(service.loggers)
        for _ in range(count):
            severity, text, attributes = _log_text(rng)
            at = BASE_NS + rng.randint(0, 3_600_000_000_000)
            record = LogRecord(
                time_unix_nano=at, observed_time_unix_nano=at + rng.randint(10**5, 10**8),
                severity_number=_SEVERITY[severity], severity_text=severity,  # type: ignore[arg-type]
                attributes=attributes,
            )  # fmt: skip
            if rng.random() < 0.1:  # a structured body
                record.body.kvlist_value.values.extend(
                    [attr("message", text), attr("component", service.name)]
                )
            else:
                record.body.CopyFrom(AnyValue(string_value=text))
            if severity == "ERROR" and rng.random() < 0.5:
                stack = _stacktrace(service, "RuntimeError", text, rng)
                record.attributes.append(attr("exception.stacktrace", stack))
            if rng.random() < 0.75:  # written inside a span
                record.trace_id, record.span_id, record.flags = ids.trace(), ids.span(), 1
            if rng.random() < 0.05:
                record.event_name = "checkout.completed"
            scope_logs.log_records.append(record)
    return request


def _point_attrs(rng: random.Random, service: Service) -> list[KeyValue]:
    route = rng.choice(service.routes)
    status = rng.choice((200, 200, 201, 404, 500))
    return [attr("http.request.method", route.method), attr("http.route", route.template),
            attr("http.response.status_code", status), attr("url.scheme", "http")]  # fmt: skip


def _metric(kind: int, name: str, service: Service, rng: random.Random, points: int) -> mpb.Metric:
    """One metric of ``kind`` (0 gauge ... 5 summary) with ``points`` data points."""
    start, now = BASE_NS, BASE_NS + rng.randint(60, 3600) * 10**9
    metric = mpb.Metric(name=name)
    for _ in range(points):
        labels = _point_attrs(rng, service)
        if kind in (0, 1, 2):
            point = mpb.NumberDataPoint(
                attributes=labels, start_time_unix_nano=start, time_unix_nano=now
            )
            if kind == 0:
                point.as_double = rng.uniform(0, 1)
            else:
                point.as_int = rng.randint(0, 10**6)
            data = metric.gauge if kind == 0 else metric.sum
            data.data_points.append(point)
        elif kind == 3:
            counts = [rng.randint(0, 50) for _ in range(len(_BOUNDS) + 1)]
            h = metric.histogram.data_points.add(
                attributes=labels, start_time_unix_nano=start, time_unix_nano=now,
                count=sum(counts), sum=sum(counts) * rng.uniform(0.01, 0.3),
                bucket_counts=counts, explicit_bounds=_BOUNDS, min=0.001, max=4.2,
            )  # fmt: skip
            h.exemplars.add(
                time_unix_nano=now, as_double=rng.uniform(0.01, 2),
                trace_id=rng.randbytes(16), span_id=rng.randbytes(8),
            )  # fmt: skip
        elif kind == 4:
            e = metric.exponential_histogram.data_points.add(
                attributes=labels, start_time_unix_nano=start, time_unix_nano=now, scale=3,
                zero_count=rng.randint(0, 3), count=0, sum=rng.uniform(1, 900),
            )  # fmt: skip
            e.positive.offset = rng.randint(-20, 0)
            e.positive.bucket_counts.extend(rng.randint(0, 40) for _ in range(24))
            e.count = e.zero_count + sum(e.positive.bucket_counts)
        else:
            s = metric.summary.data_points.add(
                attributes=labels, start_time_unix_nano=start, time_unix_nano=now,
                count=rng.randint(100, 10**5), sum=rng.uniform(10, 9000),
            )  # fmt: skip
            for q in (0.0, 0.5, 0.9, 0.99, 1.0):
                s.quantile_values.add(quantile=q, value=rng.uniform(0.001, 2) * (1 + q))
    if kind in (1, 2):
        metric.sum.aggregation_temporality = _CUMULATIVE
        metric.sum.is_monotonic = kind == 1
    elif kind == 3:
        metric.histogram.aggregation_temporality = _CUMULATIVE
    elif kind == 4:
        metric.exponential_histogram.aggregation_temporality = _CUMULATIVE
    return metric


_METRICS = (  # kind, name, unit
    (3, "http.server.request.duration", "s"), (1, "http.server.request.count", "{request}"),
    (2, "http.server.active_requests", "{request}"), (0, "process.cpu.utilization", "1"),
    (4, "rpc.server.duration", "ms"), (5, "go_gc_duration_seconds", "s"),
    (1, "app.orders.placed", "{order}"), (2, "db.client.connection.count", "{connection}"),
)  # fmt: skip


def metrics_request(rng: random.Random, seed: str, items: int) -> ExportMetricsServiceRequest:
    """A request of exactly ``items`` data points, with every kind of metric."""
    request = ExportMetricsServiceRequest()
    for count in _split(rng, items):
        service = rng.choice(world.SERVICES)
        resource_metrics = request.resource_metrics.add()
        resource_metrics.resource.attributes.extend(
            world.resource_attributes(service, rng.randrange(6), seed)
        )
        scope = resource_metrics.scope_metrics.add()
        scope.scope.name = "io.opentelemetry.sdk.metrics"
        left, i = count, rng.randrange(len(_METRICS))
        while left:
            kind, name, unit = _METRICS[i % len(_METRICS)]
            points = min(left, rng.randint(2, 12))
            metric = _metric(kind, name, service, rng, points)
            metric.unit = unit
            scope.metrics.append(metric)
            left -= points
            i += 1
    return request
