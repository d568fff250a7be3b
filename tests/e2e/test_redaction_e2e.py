"""A real OpenTelemetry SDK client sends a span and a log record carrying a card number, an
e-mail address and a bearer token to the real gateway with a ``redaction`` processor in its
traces and logs pipelines; what reaches the downstream OTLP sink is masked."""

from __future__ import annotations

import logging

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from gateway.otlp.batch import Batch, resources_of
from tests.e2e.conftest import forward_config

CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"
TOKEN = (
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
SECRETS = (CARD, "4111-1111-1111-1111", EMAIL, TOKEN, "hunter2")


def send(gateway) -> None:
    resource = Resource.create({"service.name": "shop", "owner.email": EMAIL})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{gateway.http_endpoint}/v1/traces"))
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{gateway.http_endpoint}/v1/logs"))
    )
    logger = logging.getLogger("e2e.redaction")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=logger_provider)
    logger.addHandler(handler)
    try:
        with tracer_provider.get_tracer("e2e").start_as_current_span(
            "charge",
            attributes={
                "payment.card": CARD,
                "user.email": EMAIL,
                "http.request.header.authorization": [f"Bearer {TOKEN}"],
                "db.password": "hunter2",
                "order.id": "4111111111111112",  # not a card: Luhn fails
            },
        ) as span:
            span.add_event("retry", {"note": f"card {CARD} for {EMAIL}"})
            logger.info(
                "charging %s for %s with Authorization: Bearer %s",
                "4111-1111-1111-1111",
                EMAIL,
                TOKEN,
                extra={"customer": EMAIL},
            )
    finally:
        logger.removeHandler(handler)
        tracer_provider.shutdown()
        logger_provider.shutdown()


def test_what_reaches_the_exporter_is_masked(sink, start_gateway):
    config = forward_config(sink)
    config["processors"] = {"redaction": {}}
    for signal in ("traces", "logs"):
        config["service"]["pipelines"][signal]["processors"] = ["redaction"]
    gateway = start_gateway(config)
    send(gateway)

    assert sink.wait_for(lambda s: len(s.spans()) >= 1 and len(s.log_records()) >= 1, 15)
    bodies = [r.request.SerializeToString() for r in sink.received]
    for secret in SECRETS:
        assert not any(secret.encode() in body for body in bodies), secret

    span = sink.spans()[0]
    attributes = {kv.key: kv.value for kv in span.attributes}
    assert attributes["payment.card"].string_value == "***"
    assert attributes["user.email"].string_value == "***"
    header = attributes["http.request.header.authorization"].array_value.values
    assert [v.string_value for v in header] == ["***"]  # named like a secret: masked whole
    assert attributes["db.password"].string_value == "***"
    assert attributes["order.id"].string_value == "4111111111111112"
    assert span.events[0].attributes[0].value.string_value == "card *** for ***"

    record = sink.log_records()[0]
    assert record.body.string_value == "charging *** for *** with Authorization: Bearer ***"
    customer = next(kv.value.string_value for kv in record.attributes if kv.key == "customer")
    assert customer == "***"

    resources = [
        kv.value.string_value
        for r in sink.received
        for resource in resources_of(Batch.from_request(r.signal, r.request))
        for kv in resource.attributes
        if kv.key == "owner.email"
    ]
    assert resources and set(resources) == {"***"}

    assert gateway.metric("otelgate_redaction_masked_total", rule="card") >= 3
    assert gateway.metric("otelgate_redaction_masked_total", rule="email") >= 5
    assert gateway.metric("otelgate_redaction_masked_total", rule="bearer") >= 1
    assert gateway.metric("otelgate_redaction_masked_total", rule="password") >= 2
