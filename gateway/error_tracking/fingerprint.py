"""Error-group fingerprints: which exceptions are the same bug.

A stack-based fingerprint hashes the exception type and the top ``max_frames`` in-app frames
(innermost first; the top frames of any kind when none is in-app). Only when the stack has no
frame at all does the message enter, masked by :func:`normalise_message`, so the same bug
with different ids in its message groups together.

A frame counts by what names the code, never by where it ran: no line or column numbers,
addresses, Go ``+0x`` offsets, goroutine ids or .NET IL offsets.

- Python and Node: the function and the file as :func:`normalise_path` rewrites it.
- Java, .NET and Go: the class (package for Go) and the method; the file adds nothing. Java's
  generated names are made stable: ``$$EnhancerBySpringCGLIB$$a1b2c3``, ``$$Lambda$123/0x...``
  and other ``$$Name...`` class suffixes keep only ``$$Name``, ``$Proxy12`` and
  ``GeneratedMethodAccessor7`` lose their number, ``$HibernateProxy$x`` and ``$ByteBuddy$x``
  their random tail, and lambda or accessor methods (``lambda$handle$0``, ``access$000``,
  Kotlin's ``create$lambda-1``) their trailing number.

:func:`normalise_path` makes one file read the same from every deploy root: backslashes become
slashes; a URL's scheme and host (``file:///``, ``webpack:///``, ``https://cdn...``) and its
query and fragment go. The path is then kept from after the last library root
(``site-packages/``, ``dist-packages/``, ``node_modules/``, ``vendor/``, ``go/pkg/mod/``,
Python's ``lib/python3.X/``, Go's ``@v1.2.3`` module versions dropped), or else only its last
two components are kept (``/srv/releases/42/shop/orders.py`` is ``shop/orders.py``; a file
directly in differing roots, ``/app/x.py`` and ``/srv/x.py``, does not group). Build hashes in
a file name, ``.``/``-`` separated hex runs of six or more characters with a digit
(``main.8f3a2c1b.js``), are dropped.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from gateway.error_tracking.stacktrace import Frame, ParsedStack

MAX_MESSAGE = 500
_MESSAGE_INPUT = 4096  # characters of a message read; placeholders only ever shorten text
_MAX_PATH = 2048  # characters of a path read, from its end

_URL = re.compile(r"(?<![\w.+-])[A-Za-z][\w+.-]{0,31}://[^\s'\"<>]+")
_QUERY_VALUE = re.compile(r"([?&][^=&#]*)=[^&#]*")
_QUOTED = re.compile(r"""(?<!\w)(?:'[^'\n]{0,300}'|"[^"\n]{0,300}")(?!\w)""")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_UUID = re.compile(
    r"(?<![0-9A-Za-z])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9A-Za-z])",
    re.IGNORECASE,
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_HEX = re.compile(r"(?<![0-9A-Za-z])(?:0[xX][0-9A-Fa-f]+|[0-9A-Fa-f]{2,})(?![0-9A-Za-z])")
_NUMBER = re.compile(r"\d+(?:\.\d+)*")
_SPACE = re.compile(r"\s+")

_LIBRARY_ROOT = re.compile(
    r"(?:site-packages|dist-packages|node_modules|(?<![^/])vendor|(?<![^/])go/pkg/mod"
    r"|(?<![^/])lib/python\d[\d.]*|(?<![^/])lib/pypy[\d.]*|(?<![^/])python\d+/lib)/",
    re.IGNORECASE,
)
_GO_MODULE_VERSION = re.compile(r"@v\d[\w.+-]*")
_BUILD_HASH = re.compile(r"[.-](?=[0-9a-fA-F]*\d)[0-9a-fA-F]{6,}(?=[.-])")

_JAVA_CLASS_RULES = (
    (re.compile(r"\$\$([A-Za-z]+)[^.]*"), r"$$\1"),
    (re.compile(r"(\$Proxy|Generated[A-Za-z]*Accessor)\d+"), r"\1"),
    (re.compile(r"\$(HibernateProxy|ByteBuddy|MockitoMock)\$[\w$]*"), r"$\1"),
)
_NUMBERED_METHOD = re.compile(r"[$-]\d+$")


def _ip(match: re.Match[str]) -> str:
    text = match[0]
    is_ipv6 = ("::" in text or text.count(":") == 7) and any(c.isdigit() for c in text)
    return "<ip>" if is_ipv6 else text


def _hex(match: re.Match[str]) -> str:
    text = match[0]
    if text[:2] in ("0x", "0X"):
        return "<hex>"
    digits = sum(c.isdigit() for c in text)
    return "<hex>" if 0 < digits < len(text) or len(text) >= 16 else text


def normalise_message(message: str) -> str:
    """``message`` with its variable parts masked, for grouping messages of one template.

    In this order: URLs' query values become ``<val>``; quoted values (``'...'``/``"..."``
    opened and closed outside a word, so "can't" is not a quote) ``<str>``; e-mail addresses
    ``<email>``; UUIDs ``<uuid>``; IPv4 and IPv6 addresses ``<ip>``; ``0x`` numbers and
    standalone hex words mixing letters and digits (``91bb``, ``a1b2c3d``, ``req_8f3a9c``'s
    tail) or of 16 or more letters ``<hex>``; then every remaining run of digits, decimals and
    dotted versions included, ``<num>`` - also inside words (``user123`` is ``user<num>``),
    as ids often are, at the cost of ``utf8`` and ``utf16`` reading alike. A sign stays
    (``-5`` is ``-<num>``). English words of hex letters only (``facade``) stay.
    Whitespace collapses to single spaces and the result is cut to 500 characters.
    """
    text = message[:_MESSAGE_INPUT]
    text = _URL.sub(lambda url: _QUERY_VALUE.sub(r"\1=<val>", url[0]), text)
    text = _QUOTED.sub("<str>", text)
    text = _EMAIL.sub("<email>", text)
    text = _UUID.sub("<uuid>", text)
    text = _IPV4.sub("<ip>", text)
    text = _IPV6.sub(_ip, text)
    text = _HEX.sub(_hex, text)
    text = _NUMBER.sub("<num>", text)
    return _SPACE.sub(" ", text).strip()[:MAX_MESSAGE]


def normalise_path(path: str) -> str:
    """``path`` without what varies between deploys of the same code (see the module doc)."""
    path = path[-_MAX_PATH:].replace("\\", "/")
    scheme = path.find("://")
    if 0 < scheme <= 32 and path[:scheme].replace("-", "").replace("+", "").isalnum():
        path = path[scheme + 3 :].partition("/")[2]  # drop the scheme and the host
    if not path.startswith("<"):  # "<frozen importlib._bootstrap>" may hold "?" or "#"
        path = path.split("?", 1)[0].split("#", 1)[0]
    if roots := list(_LIBRARY_ROOT.finditer(path)):
        path = _GO_MODULE_VERSION.sub("", path[roots[-1].end() :])
    else:
        parts = [part for part in path.split("/") if part not in ("", ".", "..")]
        path = "/".join(parts[-2:])
    folder, slash, name = path.rpartition("/")
    return folder + slash + _BUILD_HASH.sub("", name)


def _java_class(name: str) -> str:
    for pattern, replacement in _JAVA_CLASS_RULES:
        name = pattern.sub(replacement, name)
    return name


def _java_method(name: str) -> str:
    if "lambda" in name or name.startswith("access$"):
        return _NUMBERED_METHOD.sub("", name)
    return name


def _frame_name(language: str, frame: Frame) -> str:
    """How ``frame`` reads in a culprit and in the hash."""
    if language == "java":
        return f"{_java_class(frame.module or '')}.{_java_method(frame.function)}".lstrip(".")
    if language in ("dotnet", "go"):
        return f"{frame.module}.{frame.function}" if frame.module else frame.function
    file = normalise_path(frame.file)
    return f"{file} in {frame.function}" if frame.function else file


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """An error group's id, the frame it is blamed on, and what the grouping used."""

    id: str
    culprit: str
    basis: Literal["stack", "message"]
    frames: tuple[Frame, ...]


def _digest(*parts: str) -> str:
    data = "\x1f".join(("v1", *parts)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:16]


def fingerprint(
    exc_type: str, message: str, stack: ParsedStack, max_frames: int = 3
) -> Fingerprint:
    """The group of an exception: its type and top in-app frames, or its message when no stack.

    ``max_frames`` below 1 counts as 1.
    """
    kind = " ".join(exc_type.split())
    owned = tuple(frame for frame in stack.frames if frame.in_app) or stack.frames
    if not owned:
        return Fingerprint(_digest("message", kind, normalise_message(message)), "", "message", ())
    frames = owned[: max(1, max_frames)]
    names = [_frame_name(stack.language, frame) for frame in frames]
    return Fingerprint(_digest("stack", kind, stack.language, *names), names[0], "stack", frames)
