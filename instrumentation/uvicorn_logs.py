"""uvicorn's own log lines (startup, errors, access log) through the root logger, automatically.

uvicorn configures its loggers itself, in ``Config.configure_logging``, after
``opentelemetry-instrument`` set up the SDK: its handlers print plain text. The configurator
wraps that method (once) so that, right after uvicorn's own setup, uvicorn's loggers lose
their handlers and propagate to the root logger: JSON on stdout and OTLP export like every
other record. uvicorn's access log stays on (as JSON) unless ``--no-access-log``, or unless
the app uses :class:`~instrumentation.middleware.RequestLoggingMiddleware`, which logs every
request already: building it turns ``uvicorn.access`` off (:func:`request_logging_started`;
``OTELGATE_UVICORN_ACCESS_LOG=on`` or its ``uvicorn_access_log=True`` keeps it).

Left alone: a ``--log-config`` of the user's own (uvicorn's ``Config.log_config`` is no
longer its default ``LOGGING_CONFIG``, nor a copy of it as in a ``--workers`` child), and
``OTELGATE_UVICORN_LOGS=plain``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from typing import Any

UVICORN_LOGS_ENV = "OTELGATE_UVICORN_LOGS"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
_WRAPPED = "__otelgate_wrapped__"
ACCESS_LOG_ENV = "OTELGATE_UVICORN_ACCESS_LOG"


class _State:
    """This process: did the wrapper route uvicorn's loggers (access log on), and was a
    request logging middleware built that wants the access log off?"""

    routed = False
    request_logging = False


state = _State()


def keep_access_log_requested(env: dict[str, str] | None = None) -> bool:
    """True when OTELGATE_UVICORN_ACCESS_LOG is on/true/1/yes (keep it beside the middleware)."""
    value = (os.environ if env is None else env).get(ACCESS_LOG_ENV, "").strip().lower()
    return value in ("1", "true", "yes", "on")


def request_logging_started(*, keep_access_log: bool = False) -> None:
    """A request logging middleware was built (``RequestLoggingMiddleware.__init__``).

    It logs every request already, so once the wrapper has routed uvicorn's loggers (before or
    after this call) ``uvicorn.access`` is disabled, as ``use_root_logging_for_uvicorn`` does,
    unless ``keep_access_log``.
    """
    if keep_access_log:
        return
    state.request_logging = True
    _mute_doubled_access_log()


def _mute_doubled_access_log() -> None:
    if state.routed and state.request_logging:
        logging.getLogger("uvicorn.access").disabled = True


def plain_requested(env: dict[str, str] | None = None) -> bool:
    """True when OTELGATE_UVICORN_LOGS=plain (keep uvicorn's own text handlers)."""
    value = (os.environ if env is None else env).get(UVICORN_LOGS_ENV, "").strip().lower()
    return value == "plain"


def route_to_root(*, access_log: bool = True) -> None:
    """uvicorn's loggers: no handlers of their own, propagating to root.

    With ``access_log=False`` (``--no-access-log``) ``uvicorn.access`` stays silent the way
    uvicorn leaves it: no handlers and no propagation.
    """
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    if not access_log:
        logging.getLogger("uvicorn.access").propagate = False


def _without_colours(log_config: dict[str, Any]) -> dict[str, Any]:
    formatters = {
        name: {k: v for k, v in settings.items() if k != "use_colors"}
        if isinstance(settings, dict)
        else settings
        for name, settings in log_config.get("formatters", {}).items()
    }
    return {**log_config, "formatters": formatters}


def is_default_log_config(log_config: object, default: dict[str, Any]) -> bool:
    """True for uvicorn's own LOGGING_CONFIG: the object itself or an equal copy.

    A copy is what a ``--workers`` child sees (the parent's Config arrives pickled), with
    ``use_colors`` possibly filled in by uvicorn; that key is ignored in the comparison.
    """
    if log_config is default:
        return True
    if not isinstance(log_config, dict):
        return False
    try:
        return _without_colours(log_config) == _without_colours(default)
    except (AttributeError, TypeError):  # a hand-written dict of another shape
        return False


def _after_configure_logging(config: Any, default_config: dict[str, Any]) -> None:
    if plain_requested() or not is_default_log_config(config.log_config, default_config):
        state.routed = False
        return
    route_to_root(access_log=config.access_log is not False)
    state.routed = True
    _mute_doubled_access_log()


def patch_uvicorn() -> bool:
    """Wrap ``uvicorn.config.Config.configure_logging`` when uvicorn is installed. Idempotent.

    uvicorn is imported only when ``importlib.util.find_spec`` finds it. Returns True when
    the wrapper is (now) in place.
    """
    try:
        if importlib.util.find_spec("uvicorn") is None:
            return False
        import uvicorn.config
    except ImportError:
        return False
    config_class = uvicorn.config.Config
    original = config_class.configure_logging
    if getattr(original, _WRAPPED, False):
        return True
    default_config = uvicorn.config.LOGGING_CONFIG

    @functools.wraps(original)
    def configure_logging(self: Any) -> None:
        original(self)
        _after_configure_logging(self, default_config)

    setattr(configure_logging, _WRAPPED, True)
    config_class.configure_logging = configure_logging  # type: ignore[method-assign]
    return True
