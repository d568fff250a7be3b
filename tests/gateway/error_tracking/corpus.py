"""Stack traces of known Python and Java bugs, in the variants one bug shows in production.

Every entry of :data:`BUGS` is one bug; its samples differ only in what must not split a group
(messages, ids, line and column numbers, deploy roots, generated-class suffixes, addresses).
Bugs named ``*-same-type`` and ``*-other-type`` share the type or the raising function of
another bug and must still group apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """One exception as its attributes arrive: type, message, stack trace, SDK language."""

    exc_type: str
    message: str
    stacktrace: str
    language: str | None = None


def at_lines(*frames: str, indent: str = "\t") -> str:
    """``frames`` as the ``at ...`` lines of a Java, Node or .NET trace."""
    return "".join(f"{indent}at {frame}\n" for frame in frames)


PY_SITE_VENV = "/app/.venv/lib/python3.11/site-packages"
PY_SITE_SYSTEM = "/usr/local/lib/python3.12/site-packages"


def _py_flask(site: str) -> str:
    return f"""Traceback (most recent call last):
  File "{site}/flask/app.py", line 1484, in full_dispatch_request
    rv = self.dispatch_request()
         ^^^^^^^^^^^^^^^^^^^^^^^
  File "{site}/flask/app.py", line 1469, in dispatch_request
    return self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)
"""


def _py_order(root: str, site: str, line: int, exc: str, inner: str = "") -> str:
    return f"""{_py_flask(site)}  File "{root}/shop/api.py", line {line - 11}, in post_order
    order = create_order(request.get_json())
  File "{root}/shop/orders.py", line {line}, in create_order
    {inner or 'sku = payload["items"][0]["sku"]'}
{exc}
"""


def _py_chained_cache(root: str) -> str:
    return f"""Traceback (most recent call last):
  File "{root}/shop/cache.py", line 19, in get
    return self._client.get(key)
  File "{PY_SITE_SYSTEM}/redis/client.py", line 1266, in get
    raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")
redis.exceptions.ConnectionError: Error 111 connecting to redis:6379. Connection refused.

During handling of the above exception, another exception occurred:

"""


def _py_price(root: str, line: int, raw: str, order: int) -> str:
    return f"""Traceback (most recent call last):
  File "{root}/shop/pricing.py", line {line}, in parse_price
    cents = int(raw.replace(".", ""))
ValueError: invalid literal for int() with base 10: {raw!r}

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "{root}/shop/orders.py", line 61, in create_order
    total = parse_price(item["price"], order_id)
  File "{root}/shop/pricing.py", line {line + 2}, in parse_price
    raise PriceError(f"bad price {{raw!r}} for order {{order_id}}") from exc
shop.pricing.PriceError: bad price {raw!r} for order {order}
"""


def _py_reserve(root: str, line: int, sku: str) -> str:
    return f"""{_py_flask(PY_SITE_VENV)}  File "{root}/shop/api.py", line 31, in post_order
    order = create_order(request.get_json())
  File "{root}/shop/orders.py", line 48, in create_order
    inventory.reserve(sku, qty)
  File "{root}/shop/inventory.py", line {line}, in reserve
    stock = self._levels[sku]
KeyError: {sku!r}
"""


def _py_payment(root: str, site: str, host: str, port: int) -> str:
    return f"""Traceback (most recent call last):
  File "{root}/shop/orders.py", line 90, in checkout
    receipt = payments.charge(order)
  File "{root}/shop/payments.py", line 33, in charge
    response = self._session.post(self._url, json=body, timeout=5)
  File "{site}/requests/sessions.py", line 637, in post
    return self.request("POST", url, data=data, json=json, **kwargs)
  File "{site}/requests/adapters.py", line 519, in send
    raise ConnectionError(e, request=request)
requests.exceptions.ConnectionError: HTTPSConnectionPool(host='{host}', port={port})
"""


_KEY = "KeyError"
_TYPE_MSG = "unsupported operand type(s) for +: 'int' and 'NoneType'"
_TYPE_MSG_STR = _TYPE_MSG.replace("NoneType", "str")
_TYPE_LINE = 'total = total + item.get("price")'
_PY_BUGS: dict[str, list[Sample]] = {
    "py-missing-sku": [
        Sample(_KEY, "'sku'", _py_order("/app", PY_SITE_VENV, 42, "KeyError: 'sku'"), "python"),
        Sample(_KEY, "'sku'", _py_order("/srv/releases/42", PY_SITE_SYSTEM, 57, "KeyError: 'sku'")),
        Sample(
            _KEY,
            "'quantity'",
            _py_chained_cache("/app") + _py_order("/app", PY_SITE_VENV, 44, "KeyError: 'quantity'"),
            "python",
        ),
    ],
    "py-missing-sku-other-type": [
        Sample(
            "TypeError",
            _TYPE_MSG,
            _py_order("/app", PY_SITE_VENV, 70, f"TypeError: {_TYPE_MSG}", _TYPE_LINE),
            "python",
        ),
        Sample(
            "TypeError",
            _TYPE_MSG_STR,
            _py_order("/opt/shop", PY_SITE_SYSTEM, 73, f"TypeError: {_TYPE_MSG_STR}", _TYPE_LINE),
            "python",
        ),
    ],
    "py-bad-price": [
        Sample(
            "shop.pricing.PriceError",
            "bad price '12,50' for order 8812",
            _py_price("/app", 14, "12,50", 8812),
            "python",
        ),
        Sample(
            "shop.pricing.PriceError",
            "bad price 'abc' for order 19",
            _py_price("/srv/releases/43", 16, "abc", 19),
            None,
        ),
        Sample(
            "shop.pricing.PriceError",
            "bad price '' for order 7",
            _py_price("/home/deploy/current", 14, "", 7),
            "python",
        ),
    ],
    "py-reserve-same-type": [
        Sample(_KEY, "'sku-123'", _py_reserve("/app", 22, "sku-123"), "python"),
        Sample(_KEY, "'sku-987'", _py_reserve("/srv/releases/42", 25, "sku-987"), "python"),
    ],
    "py-payment-in-library": [
        Sample(
            "requests.exceptions.ConnectionError",
            "HTTPSConnectionPool(host='pay.example.com', port=443)",
            _py_payment("/app", PY_SITE_VENV, "pay.example.com", 443),
            "python",
        ),
        Sample(
            "requests.exceptions.ConnectionError",
            "HTTPSConnectionPool(host='10.2.0.7', port=8443)",
            _py_payment("/srv/app", PY_SITE_SYSTEM, "10.2.0.7", 8443),
        ),
    ],
}


def _java_tail(base: str = "java.base/") -> str:
    return at_lines(
        f"{base}jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)",
        f"{base}java.lang.reflect.Method.invoke(Method.java:568)",
        "org.springframework.web.method.support.InvocableHandlerMethod"
        ".doInvoke(InvocableHandlerMethod.java:205)",
        "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:883)",
        "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)",
        f"{base}java.lang.Thread.run(Thread.java:833)",
    )


def _java_order(exc: str, cglib: str, line: int, base: str = "java.base/") -> str:
    head = at_lines(
        f"com.shop.orders.OrderService.create(OrderService.java:{line})",
        f"com.shop.orders.OrderService$$EnhancerBySpringCGLIB$${cglib}.create(<generated>)",
        f"com.shop.web.OrderController.post(OrderController.java:{line - 10})",
    )
    return f"{exc}\n{head}{_java_tail(base)}"


def _java_capture(cglib: str, payment: str, line: int) -> str:
    head = at_lines(
        f"com.shop.payments.PaymentService.capture(PaymentService.java:{line})",
        f"com.shop.payments.PaymentService$$EnhancerBySpringCGLIB$${cglib}.capture(<generated>)",
        "com.shop.web.OrderController.post(OrderController.java:35)",
    )
    return f"java.lang.IllegalStateException: Payment {payment} already captured\n{head}"


def _java_cart(message: str, lambda_n: int, lambda_class: str, fastclass: str) -> str:
    frames = at_lines(
        f"com.shop.cart.CartService.lambda$total${lambda_n}(CartService.java:57)",
        f"com.shop.cart.CartService{lambda_class}.apply(Unknown Source)",
        "java.base/java.util.stream.ReferencePipeline$3$1.accept(ReferencePipeline.java:197)",
        "java.base/java.util.ArrayList$ArrayListSpliterator.forEachRemaining(ArrayList.java:1625)",
        "java.base/java.util.stream.ReferencePipeline.reduce(ReferencePipeline.java:662)",
        "com.shop.cart.CartService.total(CartService.java:58)",
        f"com.shop.cart.CartService$$FastClassBySpringCGLIB$${fastclass}.invoke(<generated>)",
        "org.springframework.cglib.proxy.MethodProxy.invoke(MethodProxy.java:218)",
        "com.shop.web.CartController.get(CartController.java:24)",
    )
    return f"java.lang.NullPointerException: {message}\n{frames}{_java_tail()}"


_DIVE = "org.springframework.dao.DataIntegrityViolationException"
_DIVE_MSG = "could not execute statement; SQL [n/a]; constraint [customers_email_key]"
_PSQL = "org.postgresql.util.PSQLException"


def _java_signup(
    proxy: int, line: int, email: str, suffix: str = "", suppressed: bool = False
) -> str:
    frames = [
        "org.springframework.orm.jpa.vendor.HibernateJpaDialect"
        ".convertHibernateAccessException(HibernateJpaDialect.java:276)",
        "org.springframework.dao.support.PersistenceExceptionTranslationInterceptor"
        ".invoke(PersistenceExceptionTranslationInterceptor.java:137)",
        f"jdk.proxy2/jdk.proxy2.$Proxy{proxy}.save(Unknown Source)",
        f"com.shop.customers.CustomerService.register(CustomerService.java:{line})",
        "com.shop.customers.CustomerService$$SpringCGLIB$$0.register(<generated>)",
        f"com.shop.web.SignupController.signup(SignupController.java:{line - 20})",
    ]
    rest = (
        "\tSuppressed: java.lang.IllegalStateException: rollback failed\n"
        + at_lines("com.shop.customers.TxHelper.rollback(TxHelper.java:12)", indent="\t\t")
        + "\t\t... 8 more\n"
        if suppressed
        else ""
    )
    rest += "Caused by: org.hibernate.exception.ConstraintViolationException: could not execute\n"
    rest += at_lines(
        "org.hibernate.exception.internal.SQLStateConversionDelegate"
        ".convert(SQLStateConversionDelegate.java:95)",
        "com.shop.customers.CustomerAudit.record(CustomerAudit.java:40)",
    )
    rest += f"\t... 42 more\nCaused by: {_PSQL}: ERROR: duplicate key value violates unique\n"
    rest += f"  Detail: Key (email)=({email}) already exists.\n"
    rest += at_lines("org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse(QEI.java:2713)")
    rest += "\t... 60 more\n"
    head = "".join(f"\tat {frame}{suffix}\n" for frame in frames)
    return f"{_DIVE}: {_DIVE_MSG}\n{head}{_java_tail()}{rest}"


_ISE = "java.lang.IllegalStateException"
_IAE = "java.lang.IllegalArgumentException"
_NPE = "java.lang.NullPointerException"
_NPE_MSG = 'Cannot invoke "java.math.BigDecimal.multiply(java.math.BigDecimal)" because "p" is null'
_QTY = "quantity must be positive:"
_JAVA_BUGS: dict[str, list[Sample]] = {
    "java-order-missing": [
        Sample(
            _ISE,
            "Order 123 not found",
            _java_order(f"{_ISE}: Order 123 not found", "a1b2c3", 42),
            "java",
        ),
        Sample(
            _ISE,
            "Order 98812 not found",
            _java_order(f"{_ISE}: Order 98812 not found", "5f0e9d1c", 47),
            "java",
        ),
        Sample(
            _ISE,
            "Order 7 not found",
            _java_order(f"{_ISE}: Order 7 not found", "e4d3", 42, base=""),
            None,
        ),
    ],
    "java-order-other-type": [
        Sample(_IAE, f"{_QTY} -1", _java_order(f"{_IAE}: {_QTY} -1", "a1b2c3", 40), "java"),
        Sample(_IAE, f"{_QTY} 0", _java_order(f"{_IAE}: {_QTY} 0", "77ff01", 39), "java"),
    ],
    "java-capture-same-type": [
        Sample(_ISE, "Payment 3f2a already captured", _java_capture("a1b2c3", "3f2a", 88), "java"),
        Sample(_ISE, "Payment 91bb already captured", _java_capture("0c0c0c", "91bb", 90), "java"),
    ],
    "java-cart-lambda": [
        Sample(
            _NPE,
            _NPE_MSG,
            _java_cart(_NPE_MSG, 0, "$$Lambda$412/0x0000000800c0b000", "9f8e7d"),
            "java",
        ),
        Sample(
            _NPE,
            _NPE_MSG.replace('"p"', '"price"'),
            _java_cart("...", 3, "$$Lambda/0x000001e0a1003a00", "11aa22"),
            "java",
        ),
        Sample(_NPE, "", _java_cart("", 1, "$$Lambda$87/1880587981", "c0ffee"), None),
    ],
    "java-signup-caused-by": [
        Sample(_DIVE, _DIVE_MSG, _java_signup(123, 64, "ann@example.com"), "java"),
        Sample(
            _DIVE, _DIVE_MSG, _java_signup(87, 66, "bob@example.org", " ~[app.jar:1.4.2]"), "java"
        ),
        Sample(_DIVE, _DIVE_MSG, _java_signup(9, 64, "c@x.io", suppressed=True), None),
    ],
}

BUGS: dict[str, list[Sample]] = {**_PY_BUGS, **_JAVA_BUGS}
