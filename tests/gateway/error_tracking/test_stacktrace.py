"""Python, Java and Node stack traces parse into frames, innermost first."""

from __future__ import annotations

from gateway.error_tracking.stacktrace import Frame, parse_stacktrace
from tests.gateway.error_tracking.corpus import at_lines

PY_SITE = "/app/.venv/lib/python3.11/site-packages"

PYTHON_TRACE = f"""Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "{PY_SITE}/flask/app.py", line 1484, in full_dispatch_request
    rv = self.dispatch_request()
  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads
    return _default_decoder.decode(s)
  File "/srv/shop/orders.py", line 42, in create_order
    sku = payload["sku"]
          ~~~~~~~^^^^^^^
  File "<string>", line 1, in <module>
KeyError: 'sku'
"""


def test_python_frames_innermost_first_with_modules_and_ownership() -> None:
    stack = parse_stacktrace(PYTHON_TRACE, "python")
    assert stack.language == "python"
    assert stack.frames == (
        Frame("<string>", "<module>", 1, None, True),
        Frame("/srv/shop/orders.py", "create_order", 42, None, True),
        Frame("/usr/lib/python3.11/json/__init__.py", "loads", 346, "json", False),
        Frame(f"{PY_SITE}/flask/app.py", "full_dispatch_request", 1484, "flask.app", False),
        Frame("<frozen runpy>", "_run_module_as_main", 198, "runpy", False),
    )


def test_python_chained_exceptions_use_the_last_block() -> None:
    first = 'Traceback (most recent call last):\n  File "/app/cache.py", line 9, in get\n'
    last = 'Traceback (most recent call last):\n  File "/app/views.py", line 3, in show\n'
    for joint in (
        "\nDuring handling of the above exception, another exception occurred:\n\n",
        "\nThe above exception was the direct cause of the following exception:\n\n",
    ):
        stack = parse_stacktrace(f"{first}OSError: down\n{joint}{last}KeyError: 'x'\n")
        assert [frame.function for frame in stack.frames] == ["show"]


def test_python_windows_paths_and_frames_without_source() -> None:
    trace = (
        "Traceback (most recent call last):\n"
        '  File "C:\\app\\main.py", line 12, in <module>\n'
        '  File "C:\\app\\venv\\Lib\\site-packages\\requests\\api.py", line 73, in get\n'
        '  File "C:\\Python311\\Lib\\json\\decoder.py", line 337, in decode\n'
        '  File "/app/setup.py", line 3\n'
        "    def f(:\n          ^\nSyntaxError: invalid syntax\n"
    )
    frames = parse_stacktrace(trace).frames
    assert frames == (
        Frame("/app/setup.py", "", 3, None, True),
        Frame("C:\\Python311\\Lib\\json\\decoder.py", "decode", 337, "json.decoder", False),
        Frame(
            "C:\\app\\venv\\Lib\\site-packages\\requests\\api.py", "get", 73, "requests.api", False
        ),
        Frame("C:\\app\\main.py", "<module>", 12, None, True),
    )


def test_python_exception_group_prefixes_degrade_gracefully() -> None:
    trace = """  + Exception Group Traceback (most recent call last):
  |   File "/app/jobs.py", line 20, in run_all
  |     async with asyncio.TaskGroup() as group:
  | ExceptionGroup: unhandled errors in a TaskGroup (1 sub-exception)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    |   File "/app/jobs.py", line 9, in fetch
    |     raise ValueError("bad feed")
    | ValueError: bad feed
    +------------------------------------
"""
    assert [frame.function for frame in parse_stacktrace(trace).frames] == ["fetch"]


def test_python_recursion_notes_and_huge_line_numbers() -> None:
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/app/tree.py", line 4, in walk\n'
        "  [Previous line repeated 996 more times]\n"
        '  File "/app/tree.py", line 99999999999999999999, in walk\n'
        "RecursionError: maximum recursion depth exceeded\n"
    )
    assert [frame.line for frame in parse_stacktrace(trace).frames] == [None, 4]


def test_python_traceback_without_frames_is_unknown() -> None:
    stack = parse_stacktrace("Traceback (most recent call last):\nKeyError: 'x'\n", "python")
    assert (stack.language, stack.frames) == ("unknown", ())


JAVA_TRACE = "java.lang.IllegalStateException: Order 42 not found\n" + at_lines(
    "com.shop.orders.OrderService.create(OrderService.java:42)",
    "com.shop.orders.OrderService$$EnhancerBySpringCGLIB$$a1b2c3.create(<generated>)",
    "java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)",
    "app//com.shop.web.OrderController.post(OrderController.kt:31)",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:883)",
    "com.shop.cart.Cart$$Lambda$412/0x0000000800c0b000.apply(Unknown Source)",
    "java.base@17.0.2/java.lang.Thread.run(Thread.java)",
)


def test_java_frames_split_class_and_method_and_drop_module_layers() -> None:
    stack = parse_stacktrace(JAVA_TRACE, "java")
    cglib = "com.shop.orders.OrderService$$EnhancerBySpringCGLIB$$a1b2c3"
    lambda_class = "com.shop.cart.Cart$$Lambda$412/0x0000000800c0b000"
    assert stack.language == "java"
    assert stack.frames == (
        Frame("OrderService.java", "create", 42, "com.shop.orders.OrderService", True),
        Frame("<generated>", "create", None, cglib, True),
        Frame("", "invoke0", None, "jdk.internal.reflect.NativeMethodAccessorImpl", False),
        Frame("OrderController.kt", "post", 31, "com.shop.web.OrderController", True),
        Frame(
            "FrameworkServlet.java",
            "service",
            883,
            "org.springframework.web.servlet.FrameworkServlet",
            False,
        ),
        Frame("", "apply", None, lambda_class, True),
        Frame("Thread.java", "run", None, "java.lang.Thread", False),
    )


def test_java_uses_the_outermost_block_only() -> None:
    trace = (
        "java.lang.RuntimeException: wrapped\n"
        + at_lines("com.shop.Api.handle(Api.java:10)", "com.shop.Main.main(Main.java:5)")
        + "\tSuppressed: java.io.IOException: close failed\n"
        + at_lines("com.shop.Res.close(Res.java:3)", indent="\t\t")
        + "\t\t... 2 more\nCaused by: java.sql.SQLException: boom\n"
        + at_lines("com.shop.Db.query(Db.java:77)")
        + "\t... 2 more\n"
    )
    stack = parse_stacktrace(trace)
    assert stack.language == "java"
    assert [frame.function for frame in stack.frames] == ["handle", "main"]


def test_java_logback_suffixes_and_library_prefixes() -> None:
    trace = "java.lang.NullPointerException\n" + at_lines(
        "com.shop.A.run(A.java:1) ~[app.jar:1.0]",
        "io.netty.channel.Ch.read(Ch.java:2) [netty-all.jar:4.1.100]",
        "kotlin.collections.C.f(C.kt:3) ~[na:na]",
        "com.sun.proxy.$Proxy12.save(Unknown Source)",
        "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:4)",
    )
    frames = parse_stacktrace(trace, "kotlin").frames
    assert [(frame.function, frame.in_app) for frame in frames] == [
        ("run", True),
        ("read", False),
        ("f", False),
        ("save", False),
        ("service", False),
    ]


def test_java_lines_that_are_not_frames_are_skipped() -> None:
    trace = "java.lang.Error\n\tat com.shop.A.run(\n\tat Run (x y)\n\tat com.shop.B.go()junk\n"
    assert parse_stacktrace(trace, "java").language == "unknown"
    # Empty parentheses are never Java's (it writes a source or "Unknown Source"), but .NET's.
    assert parse_stacktrace("\tat com.shop.A.run()\n", "java").language == "dotnet"


NODE_TRACE = """TypeError: Cannot read properties of undefined (reading 'price')
    at addItem (/app/src/cart.js:42:17)
    at /app/src/cart.js:10:5
    at Array.forEach (<anonymous>)
    at async CartController.add (/app/src/controllers/cart.js:18:22)
    at new Checkout (file:///app/src/checkout.mjs:9:3)
    at Object.<anonymous> (/app/src/index.js:5:1)
    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)
    at async Promise.all (index 0)
    at Module._compile (node:internal/modules/cjs/loader:1105:14)
    at processTicksAndRejections (internal/process/task_queues.js:95:5)
    at emitTwo (events.js:126:13)
    at C:\\shop\\src\\win.js:7:2
"""


def test_node_frames() -> None:
    stack = parse_stacktrace(NODE_TRACE, "nodejs")
    assert stack.language == "node"
    assert stack.frames == (
        Frame("/app/src/cart.js", "addItem", 42, None, True),
        Frame("/app/src/cart.js", "", 10, None, True),
        Frame("<anonymous>", "Array.forEach", None, None, False),
        Frame("/app/src/controllers/cart.js", "CartController.add", 18, None, True),
        Frame("file:///app/src/checkout.mjs", "new Checkout", 9, None, True),
        Frame("/app/src/index.js", "Object.<anonymous>", 5, None, True),
        Frame(
            "/app/node_modules/express/lib/router/layer.js",
            "Layer.handle [as handle_request]",
            95,
            None,
            False,
        ),
        Frame("index 0", "Promise.all", None, None, False),
        Frame("node:internal/modules/cjs/loader", "Module._compile", 1105, None, False),
        Frame("internal/process/task_queues.js", "processTicksAndRejections", 95, None, False),
        Frame("events.js", "emitTwo", 126, None, False),
        Frame("C:\\shop\\src\\win.js", "", 7, None, True),
    )


def test_node_eval_frames_and_line_without_column() -> None:
    trace = (
        "Error: x\n"
        "    at eval (eval at compile (/app/src/tpl.js:3:10), <anonymous>:1:1)\n"
        "    at render (/app/src/view.js:8)\n"
        "    at https://cdn.shop.io/static/js/main.8f3a2c1b.js:2:14532\n"
    )
    assert [(f.file, f.function, f.line) for f in parse_stacktrace(trace).frames] == [
        ("/app/src/tpl.js", "eval", 3),
        ("/app/src/view.js", "render", 8),
        ("https://cdn.shop.io/static/js/main.8f3a2c1b.js", "", 2),
    ]


def test_node_lines_without_a_location_are_skipped() -> None:
    trace = "Error: x\n    at something odd\n    at \n    at (/app/x.js)\n"
    assert parse_stacktrace(trace, "nodejs").frames == ()
