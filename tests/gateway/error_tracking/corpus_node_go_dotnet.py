"""Stack traces of known Node, Go and .NET bugs, in the variants one bug shows in production.

Same conventions as :mod:`tests.gateway.error_tracking.corpus`, whose :class:`Sample` they use.
"""

from __future__ import annotations

from tests.gateway.error_tracking.corpus import Sample, at_lines


def _node_express(root: str) -> str:
    return at_lines(
        f"Layer.handle [as handle_request] ({root}/node_modules/express/lib/router/layer.js:95:5)",
        f"next ({root}/node_modules/express/lib/router/route.js:149:13)",
        "process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
        indent="    ",
    )


def _node_cart(exc: str, root: str, col: int) -> str:
    head = at_lines(
        f"addItem ({root}/src/cart.js:42:{col})",
        "Array.forEach (<anonymous>)",
        f"async CartController.add ({root}/src/controllers/cart.js:18:{col + 5})",
        indent="    ",
    )
    return f"{exc}\n{head}{_node_express(root)}"


def _node_user(exc: str, root: str, line: int, col: int) -> str:
    head = at_lines(
        f"UserService.findById ({root}/src/services/user.mjs:{line}:{col})",
        f"async getProfile ({root}/src/routes/profile.mjs:12:18)",
        f"async Object.<anonymous> ({root}/node_modules/fastify/lib/wrapHandler.js:20:3)",
        indent="    ",
    )
    return f"{exc}\n{head}"


def _node_payment(exc: str, root: str, col: int) -> str:
    head = at_lines(
        f"chargeCard ({root}/src/services/payment.js:51:{col})",
        f"new Checkout ({root}/src/checkout.js:9:{col})",
        f"{root}/src/routes/checkout.js:30:5",
        indent="    ",
    )
    return f"{exc}\n{head}{_node_express(root)}"


def _node_bundle(exc: str, host: str, main: str, vendor: str, col: int) -> str:
    head = at_lines(
        f"renderCart (https://{host}/static/js/main.{main}.js:2:{col})",
        f"Object.<anonymous> (https://{host}/static/js/main.{main}.js:2:{col + 881})",
        f"https://{host}/static/js/vendor.{vendor}.chunk.js:1:{col * 3}",
        indent="    ",
    )
    return f"{exc}\n{head}"


_READ = "TypeError: Cannot read properties of undefined (reading 'price')"
_READ_OLD = "TypeError: Cannot read property 'qty' of undefined"
_NULL_MAP = "TypeError: Cannot read properties of null (reading 'map')"
_NODE_BUGS: dict[str, list[Sample]] = {
    "node-cart-read": [
        Sample("TypeError", _READ[11:], _node_cart(_READ, "/app", 17), "nodejs"),
        Sample("TypeError", _READ_OLD[11:], _node_cart(_READ_OLD, "/srv/releases/v42", 9), None),
        Sample("TypeError", _READ[11:], _node_cart(_READ, "C:\\deploy\\shop", 23), "nodejs"),
    ],
    "node-cart-other-type": [
        Sample(
            "RangeError",
            "Invalid array length",
            _node_cart("RangeError: Invalid array length", "/app", 17),
            "nodejs",
        ),
        Sample(
            "RangeError",
            "Invalid array length",
            _node_cart("RangeError: Invalid array length", "/opt/shop", 5),
            "nodejs",
        ),
    ],
    "node-user-missing": [
        Sample(
            "Error",
            "User 4412 not found",
            _node_user("Error: User 4412 not found", "file:///app", 27, 11),
            "nodejs",
        ),
        Sample(
            "Error",
            "User 17 not found",
            _node_user("Error: User 17 not found", "file:///srv/app/current", 29, 13),
            None,
        ),
        Sample(
            "Error",
            "User ann@example.com not found",
            _node_user("Error: User ann@example.com not found", "file:///app", 27, 11),
            "nodejs",
        ),
    ],
    "node-payment-same-type": [
        Sample(
            "Error",
            "payment declined: card 4242",
            _node_payment("Error: payment declined: card 4242", "/app", 9),
            "nodejs",
        ),
        Sample(
            "Error",
            "payment declined: card 0005",
            _node_payment("Error: payment declined: card 0005", "/home/node/app", 11),
            None,
        ),
    ],
    "node-browser-bundle": [
        Sample(
            "TypeError",
            _NULL_MAP[11:],
            _node_bundle(_NULL_MAP, "shop.example.com", "8f3a2c1b", "77ab12ef", 14532),
            "webjs",
        ),
        Sample(
            "TypeError",
            _NULL_MAP[11:],
            _node_bundle(_NULL_MAP, "cdn.shop.io", "0d9e1f2a", "3c4d5e6f", 14611),
            "webjs",
        ),
    ],
}


def _go_order(gid: int, root: str, line: int, offset: str, created: str) -> str:
    return f"""panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x{offset}4a1b2c]

goroutine {gid} [running]:
github.com/acme/shop/orders.(*Service).Create(0x0, {{0x9a1b40, 0xc0002c01c0}})
\t{root}/orders/service.go:{line} +0x{offset}
github.com/acme/shop/api.(*Handler).PostOrder(0xc0001a2000, {{0x9a1b40, 0xc0002c01c0}}, 0xc0003120)
\t{root}/api/orders.go:{line - 30} +0x1a5
net/http.HandlerFunc.ServeHTTP(0xc000, {{0x9a1b40?, 0xc0002c01c0?}}, 0xc0001b0000?)
\t/usr/local/go/src/net/http/server.go:2136 +0x29
github.com/go-chi/chi/v5.(*Mux).routeHTTP(0xc0000d6060, {{0x9a1b40, 0xc0002c01c0}}, 0xc000312000)
\t/root/go/pkg/mod/github.com/go-chi/chi/v5@v5.0.{line % 7}/mux.go:444 +0x216
created by net/http.(*Server).Serve{created}
\t/usr/local/go/src/net/http/server.go:3086 +0x5cb

goroutine 1 [IO wait]:
main.main()
\t{root}/cmd/shop/main.go:40 +0x25
"""


def _go_args(index: int, length: int, root: str, line: int) -> str:
    return f"""panic: runtime error: index out of range [{index}] with length {length}

goroutine 1 [running]:
main.parseArgs({{0xc000012080?, 0x{length}?, 0x{length}?}})
\t{root}/cmd/shopctl/main.go:{line} +0x{line * 3:x}
main.main()
\t{root}/cmd/shopctl/main.go:{line - 20} +0x1d
exit status 2
"""


def _dotnet_order(root: str, line: int, modern: bool, inner: str = "") -> str:
    if modern:
        frames = at_lines(
            f"Shop.Orders.OrderService.Get(Int32 id) in {root}/OrderService.cs:line {line}",
            f"Shop.Orders.OrderService.CreateAsync(OrderRequest r) in {root}/Order.cs:line 20",
            f"Shop.Api.OrdersController.Post(OrderRequest r) in {root}/Orders.cs:line 33",
            "lambda_method5(Closure , Object , Object[] )",
            indent="   ",
        )
    else:
        frames = at_lines(
            f"Shop.Orders.OrderService.Get(Int32 id) in {root}\\OrderService.cs:line {line}",
            f"Shop.Orders.OrderService.<CreateAsync>d__4.MoveNext() in {root}\\Order.cs:line 20",
            indent="   ",
        )
        frames += "--- End of stack trace from previous location where exception was thrown ---\n"
        frames += at_lines(
            "System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw()",
            "System.Runtime.CompilerServices.TaskAwaiter.HandleNonSuccess(Task task)",
            f"Shop.Api.OrdersController.<Post>d__7.MoveNext() in {root}\\Orders.cs:line 33",
            indent="   ",
        )
    tail = at_lines(
        "Microsoft.AspNetCore.Mvc.Infrastructure.ActionMethodExecutor.Execute(ActionContext c)",
        indent="   ",
    )
    return f"System.InvalidOperationException: Order {line} not found{inner}\n{frames}{tail}"


_INNER = (
    "\n ---> System.Collections.Generic.KeyNotFoundException: The given key '42' was not present."
    "\n   at System.Collections.Generic.Dictionary`2.get_Item(TKey key)"
    "\n   at Shop.Orders.OrderCache.Lookup(Int32 id) in /src/Shop/OrderCache.cs:line 12"
    "\n   --- End of inner exception stack trace ---"
)


def _dotnet_cart(closure: str, lambda_n: str, line: int) -> str:
    frames = at_lines(
        f"Shop.Cart.CartService.{closure}.<Total>b__{lambda_n}(CartItem i) in /C.cs:line {line}",
        "System.Linq.Enumerable.Sum[TSource](IEnumerable`1 source, Func`2 selector)",
        f"Shop.Cart.CartService.Total(Cart cart) in /src/C.cs:line {line + 1}",
        "Shop.Api.CartController.Get(Int32 id) in /src/Api/CartController.cs:line 24",
        indent="   ",
    )
    return f"System.NullReferenceException: Object reference not set to an instance.\n{frames}"


_NIL = "runtime error: invalid memory address or nil pointer dereference"
_NRE = "Object reference not set to an instance."
_IOE = "System.InvalidOperationException"
BUGS: dict[str, list[Sample]] = {
    **_NODE_BUGS,
    "go-order-nil": [
        Sample(
            "runtime.Error", _NIL, _go_order(34, "/home/ci/src/shop", 88, "1d", " in goroutine 1")
        ),
        Sample("runtime.Error", _NIL, _go_order(1187, "/build", 91, "2f", ""), "go"),
    ],
    "go-args-range": [
        Sample(
            "runtime.boundsError",
            "runtime error: index out of range [3] with length 3",
            _go_args(3, 3, "/src", 52),
            "go",
        ),
        Sample(
            "runtime.boundsError",
            "runtime error: index out of range [5] with length 2",
            _go_args(5, 2, "/home/dev/shop", 55),
            None,
        ),
    ],
    "dotnet-order-missing": [
        Sample(_IOE, "Order 42 not found", _dotnet_order("/src/Shop/Orders", 42, True), "dotnet"),
        Sample(_IOE, "Order 45 not found", _dotnet_order("C:\\agent\\_work\\1\\s", 45, False)),
        Sample(_IOE, "Order 42 not found", _dotnet_order("/app/src", 42, True, _INNER), "dotnet"),
    ],
    "dotnet-cart-lambda": [
        Sample(
            "System.NullReferenceException",
            _NRE,
            _dotnet_cart("<>c__DisplayClass3_0", "0", 57),
            "dotnet",
        ),
        Sample(
            "System.NullReferenceException",
            _NRE,
            _dotnet_cart("<>c__DisplayClass7_1", "2", 61),
            None,
        ),
    ],
}
