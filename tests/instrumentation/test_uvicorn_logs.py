"""uvicorn's loggers routed to the root logger after uvicorn's own logging setup."""

from __future__ import annotations

import copy
import logging
import pickle
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
import uvicorn.config
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp
from uvicorn.config import LOGGING_CONFIG, Config

from instrumentation import uvicorn_logs
from instrumentation.logs import use_root_logging_for_uvicorn
from instrumentation.middleware import RequestLoggingMiddleware
from instrumentation.uvicorn_logs import (
    ACCESS_LOG_ENV,
    UVICORN_LOGGERS,
    UVICORN_LOGS_ENV,
    is_default_log_config,
    patch_uvicorn,
    plain_requested,
)
from tests.instrumentation.conftest import ListHandler


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restores uvicorn's loggers and Config.configure_logging; patches afresh."""
    monkeypatch.delenv(UVICORN_LOGS_ENV, raising=False)
    monkeypatch.delenv(ACCESS_LOG_ENV, raising=False)
    monkeypatch.setattr(Config, "configure_logging", Config.configure_logging)
    for attr in ("routed", "request_logging"):  # middleware built by other tests
        monkeypatch.setattr(uvicorn_logs.state, attr, False)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        for attr in ("handlers", "propagate", "disabled", "level"):
            value = getattr(logger, attr)
            monkeypatch.setattr(logger, attr, list(value) if attr == "handlers" else value)
    assert patch_uvicorn() is True
    yield


def _own_handlers() -> dict[str, int]:
    return {name: len(logging.getLogger(name).handlers) for name in UVICORN_LOGGERS}


def test_default_config_routes_to_root() -> None:
    Config(app="mod:app")
    assert _own_handlers() == dict.fromkeys(UVICORN_LOGGERS, 0)
    assert all(logging.getLogger(name).propagate for name in UVICORN_LOGGERS)
    root_records = ListHandler()
    root = logging.getLogger()
    root.addHandler(root_records)
    try:
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "c", "GET", "/", "1.1", 200
        )
        logging.getLogger("uvicorn.error").info("Application startup complete.")
    finally:
        root.removeHandler(root_records)
    assert [r.name for r in root_records.records] == ["uvicorn.access", "uvicorn.error"]
    # uvicorn decides whether to write access lines from hasHandlers(): still on
    assert logging.getLogger("uvicorn.access").hasHandlers()


def test_no_access_log_is_honoured() -> None:
    Config(app="mod:app", access_log=False)
    access = logging.getLogger("uvicorn.access")
    assert access.handlers == [] and access.propagate is False
    assert not access.hasHandlers()  # so uvicorn writes no access lines at all
    assert logging.getLogger("uvicorn.error").propagate


def test_a_copy_of_the_default_counts_as_default() -> None:
    # what a --workers child gets: the parent's Config, pickled, with use_colors filled in
    config = pickle.loads(pickle.dumps(Config(app="mod:app", use_colors=False)))
    assert config.log_config is not LOGGING_CONFIG
    for name in UVICORN_LOGGERS:
        logging.getLogger(name).addHandler(logging.NullHandler())
    config.configure_logging()
    assert _own_handlers() == dict.fromkeys(UVICORN_LOGGERS, 0)
    assert is_default_log_config(copy.deepcopy(LOGGING_CONFIG), LOGGING_CONFIG)
    assert not is_default_log_config("logging.yaml", LOGGING_CONFIG)
    assert not is_default_log_config({"version": 1, "formatters": []}, LOGGING_CONFIG)


def test_users_log_config_is_left_alone() -> None:
    mine = copy.deepcopy(LOGGING_CONFIG)
    mine["formatters"]["default"]["fmt"] = "%(asctime)s %(message)s"
    Config(app="mod:app", log_config=mine)
    assert _own_handlers()["uvicorn"] == 1
    assert _own_handlers()["uvicorn.access"] == 1
    assert logging.getLogger("uvicorn").propagate is False


def test_opt_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(UVICORN_LOGS_ENV, "plain")
    assert plain_requested()
    Config(app="mod:app")
    assert _own_handlers()["uvicorn"] == 1
    assert _own_handlers()["uvicorn.access"] == 1


def test_patch_is_idempotent() -> None:
    wrapped = Config.configure_logging
    assert patch_uvicorn() is True
    assert Config.configure_logging is wrapped
    assert uvicorn.config.Config.configure_logging is wrapped


def test_app_calling_use_root_logging_keeps_access_log_off() -> None:
    Config(app="mod:app")  # uvicorn configures logging, then imports the app ...
    use_root_logging_for_uvicorn()  # ... which calls this at import
    assert logging.getLogger("uvicorn.access").disabled
    assert _own_handlers() == dict.fromkeys(UVICORN_LOGGERS, 0)


def _hello(request: object) -> PlainTextResponse:
    return PlainTextResponse("hello")


def _app(*, middleware: bool, uvicorn_access_log: bool | None = None) -> Starlette:
    app = Starlette(routes=[Route("/hello", _hello)])
    if middleware:  # built at startup, after uvicorn set up logging
        app.add_middleware(RequestLoggingMiddleware, uvicorn_access_log=uvicorn_access_log)
    return app


def _request_records(app: ASGIApp, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Serve ``app`` with real uvicorn (logging patched), make 2 requests; records by logger."""
    monkeypatch.setattr(logging.getLogger("otelgate.http"), "level", logging.INFO)
    records = ListHandler()
    root = logging.getLogger()
    root.addHandler(records)
    server = uvicorn.Server(Config(app=app, host="127.0.0.1", port=0, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.02)
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        for _ in range(2):
            assert httpx.get(f"http://127.0.0.1:{port}/hello", timeout=5).text == "hello"
    finally:
        server.should_exit = True
        thread.join(10)
        root.removeHandler(records)
    names = [r.name for r in records.records]
    return {name: names.count(name) for name in ("otelgate.http", "uvicorn.access")}


def test_request_logging_middleware_turns_the_access_log_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts = _request_records(_app(middleware=True), monkeypatch)
    assert counts == {"otelgate.http": 2, "uvicorn.access": 0}  # one line per request


def test_without_the_middleware_the_access_log_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = _request_records(_app(middleware=False), monkeypatch)
    assert counts == {"otelgate.http": 0, "uvicorn.access": 2}


def test_keeping_the_access_log_with_the_middleware(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app(middleware=True, uvicorn_access_log=True)
    assert _request_records(app, monkeypatch) == {"otelgate.http": 2, "uvicorn.access": 2}
    monkeypatch.setenv(ACCESS_LOG_ENV, "on")
    logging.getLogger("uvicorn.access").disabled = False  # as a fresh process has it
    assert _request_records(_app(middleware=True), monkeypatch)["uvicorn.access"] == 2


def test_a_middleware_built_before_uvicorn_configures_logging() -> None:
    """``uvicorn.run(app)`` with an app wrapped at import: the middleware exists first."""
    RequestLoggingMiddleware(_app(middleware=False))
    access = logging.getLogger("uvicorn.access")
    assert not access.disabled  # uvicorn's loggers are not ours yet
    Config(app="mod:app")
    assert access.disabled
