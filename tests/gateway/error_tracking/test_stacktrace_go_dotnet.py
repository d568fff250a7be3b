"""Go and .NET stack traces parse into frames, innermost first."""

from __future__ import annotations

from gateway.error_tracking.stacktrace import Frame, parse_stacktrace
from tests.gateway.error_tracking.corpus import at_lines

GO_PANIC = """panic: runtime error: invalid memory address or nil pointer dereference [recovered]
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]

goroutine 34 [running]:
panic({0x8c1e40?, 0xd0a6b0?})
\t/usr/local/go/src/runtime/panic.go:914 +0x21f
github.com/acme/shop/orders.(*Service).Create(0x0, {0x9a1b40, 0xc0002c01c0})
\t/home/ci/shop/orders/service.go:88 +0x1d
main.main.func1(...)
\t/home/ci/shop/main.go:12
gopkg.in/yaml.v3.(*decoder).unmarshal(0xc0001, {0x1, 0x2})
\t/root/go/pkg/mod/gopkg.in/yaml.v3@v3.0.1/decode.go:500 +0x29
github.com/lib/pq.(*conn).query(0xc0002)
\t/app/vendor/github.com/lib/pq/conn.go:1020 +0x44
github.com/go-chi/chi/v5.(*Mux).ServeHTTP(0xc0000d6060)
\tgithub.com/go-chi/chi/v5@v5.0.10/mux.go:90 +0x310
net/http.serverHandler.ServeHTTP({0xc00020e000?}, {0x9a1b40, 0xc0002c01c0}, 0xc000312000)
\t/usr/local/go/src/net/http/server.go:2938 +0x8e
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3086 +0x5cb

goroutine 1 [IO wait]:
main.main()
\t/home/ci/shop/main.go:40 +0x25
"""


def test_go_panic_frames_of_the_first_goroutine() -> None:
    stack = parse_stacktrace(GO_PANIC, "go")
    assert stack.language == "go"
    assert stack.frames == (
        Frame("/usr/local/go/src/runtime/panic.go", "panic", 914, None, False),
        Frame(
            "/home/ci/shop/orders/service.go",
            "(*Service).Create",
            88,
            "github.com/acme/shop/orders",
            True,
        ),
        Frame("/home/ci/shop/main.go", "main.func1", 12, "main", True),
        Frame(
            "/root/go/pkg/mod/gopkg.in/yaml.v3@v3.0.1/decode.go",
            "(*decoder).unmarshal",
            500,
            "gopkg.in/yaml.v3",
            False,
        ),
        Frame(
            "/app/vendor/github.com/lib/pq/conn.go",
            "(*conn).query",
            1020,
            "github.com/lib/pq",
            False,
        ),
        Frame(
            "github.com/go-chi/chi/v5@v5.0.10/mux.go",
            "(*Mux).ServeHTTP",
            90,
            "github.com/go-chi/chi/v5",
            False,
        ),
        Frame(
            "/usr/local/go/src/net/http/server.go",
            "serverHandler.ServeHTTP",
            2938,
            "net/http",
            False,
        ),
        Frame("/usr/local/go/src/net/http/server.go", "(*Server).Serve", 3086, "net/http", False),
    )


def test_go_debug_stack_is_detected_without_a_hint() -> None:
    trace = (
        "goroutine 7 [running]:\n"
        "runtime/debug.Stack()\n\t/usr/local/go/src/runtime/debug/stack.go:24 +0x5e\n"
        "shop/internal/jobs.Run(0x1)\n\t/src/internal/jobs/run.go:30 +0x65\n"
        "command-line-arguments.TestRun(0xc000007860)\n\t/src/jobs_test.go:9 +0x1b\n"
        "created by testing.(*T).Run\n\t/usr/local/go/src/testing/testing.go:1648 +0x3ad\n"
    )
    stack = parse_stacktrace(trace)
    assert stack.language == "go"
    # "shop/internal/jobs" reads as standard library: its first path element has no dot.
    assert [(f.module, f.function, f.in_app) for f in stack.frames] == [
        ("runtime/debug", "Stack", False),
        ("shop/internal/jobs", "Run", False),
        ("command-line-arguments", "TestRun", True),
        ("testing", "(*T).Run", False),
    ]


def test_go_call_lines_need_their_location_line() -> None:
    trace = "goroutine 1 [running]:\nmain.a()\nmain.b()\n\t/src/main.go:x\nmain.c(0x1)\n\n"
    assert parse_stacktrace(trace, "go").language == "unknown"


DOTNET_TRACE = (
    "System.InvalidOperationException: Order 42 not found\n"
    " ---> System.Collections.Generic.KeyNotFoundException: The given key was not present.\n"
    + at_lines(
        "System.Collections.Generic.Dictionary`2.get_Item(TKey key)",
        "Shop.Orders.OrderCache.Lookup(Int32 id) in /src/Shop/OrderCache.cs:line 12",
        indent="   ",
    )
    + "   --- End of inner exception stack trace ---\n"
    + at_lines(
        "Shop.Orders.OrderService.Get(Int32 id) in /src/Shop/OrderService.cs:line 42",
        "Shop.Orders.OrderService..ctor(IOrderCache cache) in C:\\src\\Orders.cs:line 9",
        "Shop.Orders.OrderService.<CreateAsync>d__4.MoveNext() in /src/Orders.cs:line 20",
        indent="   ",
    )
    + "--- End of stack trace from previous location ---\n"
    + at_lines(
        "System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw()",
        "Shop.Cart.CartService.<>c__DisplayClass3_0.<Total>b__0(CartItem i)",
        "Shop.Cart.CartService.<>c.<Sum>b__3_1(CartItem i) + 0x1d",
        "Shop.Program.<Main>g__Serve|0_0(String[] args)",
        "Shop.Program.<Main>$(String[] args)",
        "Microsoft.AspNetCore.Mvc.Infrastructure.ActionMethodExecutor.Execute(ActionContext c)",
        "lambda_method12(Closure , Object , Object[] )",
        indent="   ",
    )
)


def test_dotnet_frames_after_the_inner_exception_with_generated_names_read_back() -> None:
    stack = parse_stacktrace(DOTNET_TRACE, "dotnet")
    assert stack.language == "dotnet"
    assert stack.frames == (
        Frame("/src/Shop/OrderService.cs", "Get", 42, "Shop.Orders.OrderService", True),
        Frame("C:\\src\\Orders.cs", ".ctor", 9, "Shop.Orders.OrderService", True),
        Frame("/src/Orders.cs", "CreateAsync", 20, "Shop.Orders.OrderService", True),
        Frame("", "Throw", None, "System.Runtime.ExceptionServices.ExceptionDispatchInfo", False),
        Frame("", "Total", None, "Shop.Cart.CartService", True),
        Frame("", "Sum", None, "Shop.Cart.CartService", True),
        Frame("", "Main.Serve", None, "Shop.Program", True),
        Frame("", "<Main>$", None, "Shop.Program", True),
        Frame(
            "",
            "Execute",
            None,
            "Microsoft.AspNetCore.Mvc.Infrastructure.ActionMethodExecutor",
            False,
        ),
        Frame("", "lambda_method12", None, None, False),
    )


def test_dotnet_aggregate_exception_stops_at_the_inner_exception_list() -> None:
    trace = (
        "System.AggregateException: One or more errors occurred. (boom)\n"
        + at_lines("Shop.Jobs.Runner.RunAll() in /src/Runner.cs:line 8", indent="   ")
        + " ---> (Inner Exception #0) System.Exception: boom\n"
        + at_lines("Shop.Jobs.Job.Run() in /src/Job.cs:line 3", indent="   ")
        + "<---\n"
    )
    stack = parse_stacktrace(trace)
    assert stack.language == "dotnet"
    assert [frame.function for frame in stack.frames] == ["RunAll"]


def test_dotnet_and_java_frames_are_told_apart_without_a_hint() -> None:
    dotnet = at_lines("Shop.A.Run(Int32 id)", "Shop.A.Main()", indent="   ")
    java = at_lines("com.shop.A.run(A.java:3)", "com.shop.A.main(Native Method)")
    assert parse_stacktrace(dotnet).language == "dotnet"
    assert parse_stacktrace(java).language == "java"
    assert parse_stacktrace(java, "dotnet").language == "java"
