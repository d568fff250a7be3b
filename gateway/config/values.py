"""Building blocks of the configuration models: strict models, durations, sizes, endpoints."""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    field_validator,
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or a duration string such as ``"500ms"``, ``"5s"``, ``"1m30s"``."""
    problem = f"invalid duration {value!r} (use seconds, e.g. 5 or 0.5, or 500ms, 5s, 2m, 1h)"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(problem)
    seconds, text, pos = 0.0, str(value).strip(), 0
    try:
        seconds = float(text)
    except ValueError:
        while (part := _DURATION_PART.match(text, pos)) is not None:
            seconds, pos = seconds + float(part[1]) * _UNIT_SECONDS[part[2]], part.end()
        if pos == 0 or pos != len(text):
            raise ValueError(problem) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"duration must be zero or positive (got {value!r})")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_size(value: object) -> int:
    """Bytes from a number or ``"100MiB"``, ``"512KiB"``, ``"1GB"`` (``KiB``: 1024 bytes)."""
    problem = f"invalid size {value!r} (use bytes, or e.g. 512KiB, 100MiB, 1GiB)"
    if isinstance(value, bool):
        raise ValueError(problem)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str) or (match := _SIZE.fullmatch(value)) is None:
        raise ValueError(problem)
    unit = (match[2] or "").lower()
    factor = 1024 ** "kmgt".index(unit[0]) * 1024 if "i" in unit else _UNITS[unit[:1]]
    return int(float(match[1]) * factor)


Size = Annotated[int, BeforeValidator(parse_size)]


def host_port(endpoint: str, *, listen: bool = True) -> tuple[str, int]:
    """Split ``host:port`` (IPv6 in brackets), with a message saying what is wrong."""
    host, sep, port_text = endpoint.rpartition(":")
    if not sep or not host:
        example = "0.0.0.0:4317" if listen else "collector.example:4317"
        raise ValueError(f"'{endpoint}' must be host:port, e.g. {example}")
    if host.startswith("[") and host.endswith("]"):
        try:
            host = str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise ValueError(f"'{host}' in '{endpoint}' is not an IPv6 address") from None
    elif not re.fullmatch(r"[A-Za-z0-9_.-]+", host):
        raise ValueError(f"'{host}' in '{endpoint}' is not a valid host name or address")
    low = 0 if listen else 1
    if not (port_text.isascii() and port_text.isdigit()) or not low <= int(port_text) <= 65535:
        raise ValueError(f"port '{port_text}' in '{endpoint}' must be a number in {low}..65535")
    return host, int(port_text)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListenEndpoint(StrictModel):
    """A listener: ``endpoint`` is ``host:port`` (port 0 picks a free port)."""

    endpoint: str

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        host_port(value)
        return value

    @property
    def host(self) -> str:
        """The host or address to bind."""
        return host_port(self.endpoint)[0]

    @property
    def port(self) -> int:
        """The port to bind."""
        return host_port(self.endpoint)[1]


def parse_window(value: object) -> float:
    """Seconds from a duration that may also use days and weeks (``30d``, ``4w``, ``6h``)."""
    if isinstance(value, str) and (long := re.fullmatch(r"\s*(\d+(?:\.\d+)?)([dw])\s*", value)):
        return float(long[1]) * (86400.0 if long[2] == "d" else 604800.0)
    return parse_duration(value)


Window = Annotated[float, BeforeValidator(parse_window)]
"""A duration that may be given in days or weeks (``30d``)."""
