"""The simulated system the benchmark payloads describe: services, their resources, routes,
dependencies and the vocabulary of their logs (OpenTelemetry semantic conventions)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue


def attr(key: str, value: str | int | float | bool | list[str]) -> KeyValue:
    """One OTLP attribute from a Python value."""
    if isinstance(value, bool):  # before int: bool is an int
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        values = [AnyValue(string_value=v) for v in value]
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=values)))
    return KeyValue(key=key, value=AnyValue(string_value=value))


@dataclass(frozen=True)
class Route:
    """An HTTP route a service serves and what it calls while serving it."""

    method: str
    template: str  # http.route
    calls: tuple[str, ...]  # "db:<table>", "http:<service>", "kafka:<topic>", "cache"


@dataclass(frozen=True)
class Service:
    """One instrumented service (one OTel SDK)."""

    name: str
    language: str
    version: str
    runtime: tuple[str, str]  # process.runtime.name, version
    scope: str  # the HTTP server instrumentation library
    routes: tuple[Route, ...]
    db: str = "postgresql"
    loggers: tuple[str, ...] = field(default=("app",))


# fmt: off
SERVICES: tuple[Service, ...] = (
    Service(
        "frontend", "nodejs", "2.14.1", ("nodejs", "20.11.1"),
        "@opentelemetry/instrumentation-http",
        (
            Route("GET", "/", ("http:catalog", "http:recommendation", "cache")),
            Route("GET", "/product/{id}", ("http:catalog", "http:recommendation")),
            Route("POST", "/cart/checkout", ("http:checkout",)),
            Route("GET", "/cart", ("http:cart",)),
        ),
        loggers=("frontend.server", "frontend.session"),
    ),
    Service(
        "checkout", "python", "1.8.0", ("cpython", "3.12.2"),
        "opentelemetry.instrumentation.flask",
        (
            Route("POST", "/api/checkout", ("http:cart", "http:payment", "db:orders",
                                            "kafka:orders", "http:email")),
            Route("GET", "/api/orders/{order_id}", ("db:orders", "cache")),
        ),
        loggers=("checkout.views", "checkout.payment_client", "sqlalchemy.engine"),
    ),
    Service(
        "payment", "java", "3.2.7", ("OpenJDK Runtime Environment", "21.0.2+13"),
        "io.opentelemetry.spring-webmvc-6.0",
        (Route("POST", "/v1/charges", ("db:charges", "http:fraud")),
         Route("POST", "/v1/refunds", ("db:charges",))),
        loggers=("com.shop.payment.ChargeService", "org.hibernate.SQL"),
    ),
    Service(
        "catalog", "go", "0.31.4", ("go", "go1.22.1"),
        "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
        (Route("GET", "/products", ("db:products", "cache")),
         Route("GET", "/products/{id}", ("db:products",))),
        db="mysql",
        loggers=("catalog/handlers", "catalog/store"),
    ),
    Service(
        "cart", "dotnet", "5.0.3", ("dotnet", "8.0.2"),
        "OpenTelemetry.Instrumentation.AspNetCore",
        (Route("GET", "/cart/{user_id}", ("cache",)),
         Route("POST", "/cart/{user_id}/items", ("cache", "db:cart_items"))),
        loggers=("Cart.Api.CartController",),
    ),
    Service(
        "recommendation", "python", "0.9.12", ("cpython", "3.11.8"),
        "opentelemetry.instrumentation.fastapi",
        (Route("GET", "/recommendations", ("http:catalog", "cache")),),
        loggers=("recommendation.model", "uvicorn.error"),
    ),
    Service(
        "email", "ruby", "1.1.0", ("ruby", "3.3.0"),
        "OpenTelemetry::Instrumentation::Sinatra",
        (Route("POST", "/send_order_confirmation", ("kafka:emails",)),),
        loggers=("email.mailer",),
    ),
    Service(
        "fraud", "rust", "0.4.2", ("rustc", "1.76.0"),
        "tracing-opentelemetry",
        (Route("POST", "/score", ("db:fraud_signals",)),),
        db="redis",
        loggers=("fraud::scoring",),
    ),
)
# fmt: on
BY_NAME = {s.name: s for s in SERVICES}
REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-2")


def resource_attributes(service: Service, instance: int, seed: str) -> list[KeyValue]:
    """Semantic-convention resource attributes for one replica of ``service``."""
    rng = random.Random(f"{seed}:resource:{service.name}:{instance}")
    pod = f"{service.name}-{rng.getrandbits(32):08x}-{rng.getrandbits(20):05x}"
    region = REGIONS[instance % len(REGIONS)]
    return [
        attr("service.name", service.name),
        attr("service.namespace", "shop"),
        attr("service.version", service.version),
        attr("service.instance.id", str(random.Random(pod).getrandbits(128))),
        attr("deployment.environment.name", "production"),
        attr("telemetry.sdk.name", "opentelemetry"),
        attr("telemetry.sdk.language", service.language),
        attr("telemetry.sdk.version", "1.24.0"),
        attr("process.runtime.name", service.runtime[0]),
        attr("process.runtime.version", service.runtime[1]),
        attr("process.pid", rng.randint(1, 32768)),
        attr("host.name", f"ip-10-{instance % 4}-{rng.randint(0, 255)}-{rng.randint(1, 254)}"),
        attr("host.arch", "amd64"),
        attr("os.type", "linux"),
        attr("cloud.provider", "aws"),
        attr("cloud.platform", "aws_eks"),
        attr("cloud.region", region),
        attr("k8s.cluster.name", f"shop-{region}"),
        attr("k8s.namespace.name", "shop"),
        attr("k8s.deployment.name", service.name),
        attr("k8s.pod.name", pod),
        attr("container.id", f"{rng.getrandbits(256):064x}"),
    ]


USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
)
QUERIES = {
    "orders": "SELECT id, user_id, total_cents, status FROM orders WHERE id = $1",
    "charges": "INSERT INTO charges (order_id, amount_cents, currency, card_token) "
    "VALUES ($1, $2, $3, $4)",
    "products": "SELECT p.id, p.name, p.price_cents, s.quantity FROM products p JOIN stock s "
    "ON s.product_id = p.id WHERE p.category = ? ORDER BY p.rank LIMIT ?",
    "cart_items": "INSERT INTO cart_items (user_id, product_id, quantity) VALUES ($1, $2, $3)",
    "fraud_signals": "HGETALL",
}

# Log messages: (severity, template). Placeholders are filled from the request's context.
LOG_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("INFO", "request completed method={method} route={route} status={status} "
             "duration_ms={duration_ms}"),
    ("INFO", "order {order_id} placed by user {user_id}: {items} item(s), total {total}"),
    ("INFO", "cache hit for key product:{product_id}"),
    ("DEBUG", "executing query on {db} pool=main active_connections={active}"),
    ("DEBUG", "feature flag checkout.new_flow evaluated to {flag} for user {user_id}"),
    ("INFO", "payment authorised for order {order_id} amount={total} currency=EUR"),
    ("WARN", "slow query took {duration_ms} ms (threshold 250 ms) on table {table}"),
    ("WARN", "retrying call to {peer} after {error} (attempt {attempt}/3)"),
    ("INFO", "consumer group email-sender committed offset {offset} on partition {partition}"),
    ("ERROR", "failed to charge card for order {order_id}: {error}"),
    ("INFO", "user {user_id} signed in from {client_ip}"),
)  # fmt: skip
SENSITIVE_TEMPLATES: tuple[str, ...] = (
    "login failed for {email}: password={password}",
    "sending receipt to {email} (card ending {card_last4}, full card {card})",
    "outgoing request headers: Authorization: Bearer {token}",
    "customer {email} updated phone to {phone}",
    'webhook payload {{"card_number": "{card}", "cvv": "{cvv}", "email": "{email}"}}',
)
ERRORS = (
    ("ConnectionResetError", "[Errno 104] Connection reset by peer"),
    ("TimeoutError", "upstream request timed out after 5.0s"),
    ("psycopg.errors.SerializationFailure", "could not serialize access due to concurrent update"),
    ("CardDeclinedError", "card declined: insufficient_funds"),
    ("KeyError", "'shipping_address'"),
)
FIRST_NAMES = ("alice", "bob", "chandra", "dmitri", "eve", "fatima", "gustavo", "hana")
