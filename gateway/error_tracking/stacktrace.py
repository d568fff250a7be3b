"""Native stack-trace text as frames, innermost first: Python, Java, Node, Go and .NET.

:func:`parse_stacktrace` reads an ``exception.stacktrace`` attribute. The
``telemetry.sdk.language`` hint picks the parser tried first; when it finds no frame (or there
is no usable hint) every parser runs and the one finding the most frames wins, ties going to
Python, Java, Go, .NET, then Node (the parsers rarely both match a line: Java's parentheses
hold a source such as ``File.java:42``, .NET's nothing or "Type name" parameters, and Node
puts a space before them). Text in which no parser finds a frame gives
``ParsedStack("unknown", ())``. Only the first 64 KiB are read, lines over 4 KiB are skipped
and the innermost 200 frames kept; every parser is one pass of anchored regular expressions
(no nested quantifiers) and string operations, so the cost is linear and nothing raises.

Which frames, when a trace holds several exceptions: Python, the last traceback that has frames
(a chain prints the exception that propagated last); Java, the first block, before any
``Caused by:`` or ``Suppressed:``; .NET, the frames after the last ``--- End of inner exception
stack trace ---`` (the outer exception's), up to an AggregateException's ``---> (Inner
Exception #n)``; Go, the first goroutine (the one that panicked, or called ``debug.Stack``).

``in_app`` is False for code the application does not own:

- Python: ``<frozen ...>``, anything under ``site-packages/`` or ``dist-packages/``, the standard
  library (``lib/python3.X/``, ``lib/pypy...``, Windows ``Python3XX/Lib/``).
- Java: classes under :data:`JAVA_LIBRARY_PREFIXES` (the JDK, Kotlin, Scala, Groovy, Spring,
  Apache, Netty, Jetty, Hibernate, Jackson, gRPC, Reactor and similar frameworks).
- Node: ``node:`` and ``internal/`` locations, anything under ``node_modules/``, and locations
  with no path separator (old Node's core modules such as ``events.js``, ``<anonymous>``).
- Go: builtins (``panic``), ``runtime`` and the rest of the standard library (packages whose
  first path element has no dot, except ``main`` and ``command-line-arguments``), and files
  under ``/vendor/``, ``/go/pkg/mod/`` or a versioned module directory (``@v1.2.3``). An
  application module whose path has no dot (``module shop`` in go.mod) reads as library too.
- .NET: the ``System``, ``Microsoft``, ``Mono``, ``Newtonsoft`` and ``Npgsql`` namespaces, and
  methods of no type (dynamic methods such as ``lambda_method12``).

Java and .NET frames carry the class in ``module`` and the method in ``function``; Go frames the
package path and the rest of the name (``(*Server).Handle``). .NET compiler-generated names are
read back to the method written in the source: ``<Post>d__5.MoveNext`` (async) and
``<Total>b__0`` (lambda) become ``Post`` and ``Total``, closures' ``<>c...`` classes are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Language = Literal["python", "java", "node", "go", "dotnet", "unknown"]

MAX_TEXT = 64 * 1024
MAX_FRAMES = 200
_MAX_LINE = 4096

JAVA_LIBRARY_PREFIXES = (
    "java.", "javax.", "jakarta.", "jdk.", "sun.", "com.sun.", "kotlin.", "kotlinx.", "scala.",
    "groovy.", "org.codehaus.groovy.", "clojure.", "org.springframework.", "org.apache.",
    "io.netty.", "org.eclipse.jetty.", "io.undertow.", "org.glassfish.", "org.jboss.",
    "org.hibernate.", "com.fasterxml.", "com.google.common.", "com.google.protobuf.", "io.grpc.",
    "io.micrometer.", "io.opentelemetry.", "reactor.", "io.reactivex.", "akka.", "io.vertx.",
    "io.quarkus.", "io.micronaut.", "org.slf4j.", "ch.qos.logback.", "com.zaxxer.hikari.",
    "org.postgresql.", "com.mysql.", "okhttp3.", "feign.", "org.aspectj.", "net.bytebuddy.",
    "org.junit.", "junit.", "org.mockito.",
)  # fmt: skip
DOTNET_LIBRARY_PREFIXES = ("System.", "Microsoft.", "Mono.", "Newtonsoft.", "Npgsql.")


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame as the trace wrote it, and whether the application owns its code."""

    file: str
    function: str
    line: int | None
    module: str | None
    in_app: bool


@dataclass(frozen=True, slots=True)
class ParsedStack:
    """A trace's language and frames, innermost (where the exception was raised) first."""

    language: Language
    frames: tuple[Frame, ...]


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if 0 < len(text) <= 9 and text.isascii() and text.isdigit() else None


# --- Python -------------------------------------------------------------------------------

_PY_HEADER = "Traceback (most recent call last):"
_PY_FRAME = re.compile(r'[\s|+]*File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<fn>.*))?')
_PY_LIBRARY = re.compile(
    r"(?:site-packages|dist-packages|(?<![^/])lib/python\d[\d.]*|(?<![^/])lib/pypy[\d.]*"
    r"|(?<![^/])python\d+/lib)/",
    re.IGNORECASE,
)


def _python_frame(file: str, function: str, line: int | None) -> Frame:
    if file.startswith("<frozen "):
        return Frame(file, function, line, file[8:].rstrip(">").strip() or None, False)
    roots = list(_PY_LIBRARY.finditer(file.replace("\\", "/")))
    if not roots:
        return Frame(file, function, line, None, True)
    rest = file[roots[-1].end() :].replace("\\", "/")  # the last: a venv in an installation
    module = rest.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    return Frame(file, function, line, module if rest.endswith(".py") else None, False)


def _python(lines: list[str]) -> list[Frame]:
    blocks: list[list[Frame]] = [[]]
    for line in lines:
        if _PY_HEADER in line:
            blocks.append([])
        elif match := _PY_FRAME.match(line):
            fn = (match["fn"] or "").strip()
            blocks[-1].append(_python_frame(match["file"], fn, _int(match["line"])))
    frames = next((block for block in reversed(blocks) if block), [])
    return frames[::-1]  # Python prints the most recent call last


# --- Java ---------------------------------------------------------------------------------

_JAVA_FRAME = re.compile(r"\s*at\s+(?P<name>[^\s()]+)\((?P<src>[^()]*)\)(?:\s+~?\[[^\]\s]*\])?\s*$")
_JAVA_LAYER = re.compile(r"[\w.@-]*/+")  # "java.base/", "java.base@17.0.2/", "app//"
_JAVA_NO_FILE = frozenset({"Native Method", "Unknown Source", "Unknown"})


def _java_frame(name: str, src: str) -> Frame | None:
    if not src or (src not in _JAVA_NO_FILE and any(c.isspace() for c in src)):
        return None
    if layer := _JAVA_LAYER.match(name):
        name = name[layer.end() :]
    cls, _, method = name.rpartition(".")
    file, line = ("", None) if src in _JAVA_NO_FILE else (src, None)
    head, _, tail = src.rpartition(":")
    if head and _int(tail) is not None:
        file, line = head, _int(tail)
    in_app = not (cls + ".").startswith(JAVA_LIBRARY_PREFIXES)
    return Frame(file, method, line, cls or None, in_app)


def _java(lines: list[str]) -> list[Frame]:
    frames: list[Frame] = []
    for line in lines:
        if frames and line.lstrip().startswith(("Caused by:", "Suppressed:")):
            break  # the outermost exception's own frames only
        if (match := _JAVA_FRAME.match(line)) and (frame := _java_frame(*match.groups())):
            frames.append(frame)
    return frames


# --- Node ---------------------------------------------------------------------------------


_NODE_NO_FILE = frozenset({"<anonymous>", "native", "unknown location"})


def _node_location(loc: str) -> tuple[str, int | None]:
    if loc.startswith("eval at ") and "(" in loc:
        inner = loc[loc.find("(") + 1 :]  # "eval at fn (/app/x.js:3:10), <anonymous>:1:1"
        loc = inner[: inner.find(")")] if ")" in inner else inner
    head, _, tail = loc.rpartition(":")
    if not head or _int(tail) is None:
        return loc, None
    file, _, line = head.rpartition(":")
    if file and _int(line) is not None:
        return file, _int(line)  # file:line:column
    return head, _int(tail)


def _node_frame(text: str) -> Frame | None:
    text = text.strip()
    if not text.startswith("at "):
        return None
    rest = text[3:].strip().removeprefix("async ")
    function = ""
    if rest.endswith(")") and " (" in rest:
        split = rest.find(" (")
        function, rest = rest[:split].strip(), rest[split + 2 : -1]
    file, line = _node_location(rest)
    if not function and "(" in file:
        return None  # Java's "at pkg.Class.method(File.java:1" cut short, not a Node location
    if line is None and not (function and (file in _NODE_NO_FILE or file.startswith("index "))):
        return None
    unix = file.replace("\\", "/")
    in_app = not (
        unix.startswith(("node:", "internal/")) or "node_modules/" in unix or "/" not in unix
    )
    return Frame(file, function, line, None, in_app)


def _node(lines: list[str]) -> list[Frame]:
    return [frame for line in lines if (frame := _node_frame(line))]


# --- Go -----------------------------------------------------------------------------------

_GO_STD_EXCEPTIONS = frozenset({"main", "command-line-arguments"})
_GO_VERSIONED = re.compile(r"@v\d")


def _go_split(name: str) -> tuple[str | None, str]:
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    if dot < 0:
        return None, name
    after = name[dot + 1 :]
    if after[:1] == "v" and after[1:2].isdigit() and "." in after:  # gopkg.in/yaml.v3.Func
        version_end = after.find(".")
        if after[1:version_end].isdigit():
            dot += version_end + 1
    return name[:dot], name[dot + 1 :]


def _go_frame(name: str, location: str) -> Frame | None:
    offset = location.rfind(" +0x")
    if offset >= 0:
        location = location[:offset]
    file, _, line_text = location.rpartition(":")
    line = _int(line_text)
    if not file or line is None:
        return None
    module, function = _go_split(name)
    in_app = (
        module is not None
        and "/vendor/" not in file
        and "/go/pkg/mod/" not in file
        and not _GO_VERSIONED.search(file)
        and (module in _GO_STD_EXCEPTIONS or "." in module.split("/")[0])
    )
    return Frame(file, function, line, module, in_app)


def _go_call(line: str) -> str | None:
    if line.startswith("created by "):
        return line[11:].partition(" in goroutine ")[0].strip() or None
    if line[:1].isspace() or not line.endswith(")") or "(" not in line:
        return None
    name = line[: line.rfind("(")]
    return name if name and not any(c.isspace() for c in name) else None


def _go(lines: list[str]) -> list[Frame]:
    frames: list[Frame] = []
    call: str | None = None
    for raw in lines:
        line = raw.rstrip()
        if line.startswith("goroutine ") and line.endswith(":"):
            if frames:
                break  # only the first goroutine
            call = None
        elif call is not None and raw[:1].isspace():
            if frame := _go_frame(call, line.strip()):
                frames.append(frame)
            call = None
        else:
            call = _go_call(line)
    return frames


# --- .NET ---------------------------------------------------------------------------------

_DOTNET_FRAME = re.compile(r"\s*at (?P<name>[^\s()]+)\((?P<args>[^()]*)\)(?P<rest>(?:\s.*)?)$")
_DOTNET_GENERATED = re.compile(r"<(?P<method>[^<>]*)>(?P<kind>[a-z])__(?P<tail>.*)")


def _dotnet_name(name: str) -> tuple[str | None, str]:
    if name.endswith(("..ctor", "..cctor")):
        split = name.rfind("..")
        return name[:split] or None, name[split + 1 :]
    parts = [part for part in name.split(".") if not part.startswith("<>c")]
    function = parts.pop() if parts else name
    if function == "MoveNext" and parts and (state := _DOTNET_GENERATED.fullmatch(parts[-1])):
        parts.pop()
        function = state["method"]  # <Post>d__5.MoveNext(): the async method Post
    elif generated := _DOTNET_GENERATED.fullmatch(function):
        local = generated["tail"].partition("|")[0]
        method = generated["method"]
        function = f"{method}.{local}" if generated["kind"] == "g" and local else method
    return ".".join(parts) or None, function


def _dotnet_arguments(args: str) -> bool:
    """Whether ``args`` reads as .NET parameters: none, or "Type name" pairs (Java's
    ``(File.java:42)``, ``(Native Method)`` or ``(Unknown Source)`` do not)."""
    return not args or (args not in _JAVA_NO_FILE and any(c.isspace() for c in args))


def _dotnet_frame(name: str, rest: str) -> Frame:
    file, line = "", None
    where = rest.find(" in ")
    if where >= 0:
        file, sep, line_text = rest[where + 4 :].rpartition(":line ")
        file, line = (file.strip(), _int(line_text)) if sep else (rest[where + 4 :].strip(), None)
    module, function = _dotnet_name(name)
    in_app = module is not None and not (module + ".").startswith(DOTNET_LIBRARY_PREFIXES)
    return Frame(file, function, line, module, in_app)


def _dotnet(lines: list[str]) -> list[Frame]:
    frames: list[Frame] = []
    for line in lines:
        if "--- End of inner exception stack trace ---" in line:
            frames = []  # what follows belongs to the exception wrapping the inner one
        elif "---> (Inner Exception #" in line and frames:
            break
        elif (match := _DOTNET_FRAME.match(line)) and _dotnet_arguments(match["args"]):
            frames.append(_dotnet_frame(match["name"], match["rest"]))
    return frames


# --- Dispatch -----------------------------------------------------------------------------

_PARSERS: dict[Language, Callable[[list[str]], list[Frame]]] = {
    "python": _python,
    "java": _java,
    "go": _go,
    "dotnet": _dotnet,
    "node": _node,
}
_HINTS: dict[str, Language] = {
    "python": "python", "py": "python", "java": "java", "kotlin": "java", "scala": "java",
    "nodejs": "node", "node": "node", "javascript": "node", "js": "node", "webjs": "node",
    "typescript": "node", "go": "go", "golang": "go", "dotnet": "dotnet", ".net": "dotnet",
    "csharp": "dotnet", "c#": "dotnet", "fsharp": "dotnet",
}  # fmt: skip


def _guess(text: str) -> Language | None:
    """The language whose marks the text carries (substring tests only), so that usually one
    parser runs instead of all of them; None when nothing stands out."""
    if "Traceback (most recent call last)" in text or '  File "' in text:
        return "python"
    if "goroutine " in text and ".go:" in text:
        return "go"
    if ":line " in text or "--- End of " in text:
        return "dotnet"
    if ".java:" in text or "(Native Method)" in text or "(Unknown Source)" in text:
        return "java"
    if "    at " in text and (".js:" in text or ".ts:" in text or "node:" in text):
        return "node"
    return None


def parse_stacktrace(text: str, language: str | None = None) -> ParsedStack:
    """Frames of ``text``, innermost first; ``language`` is the ``telemetry.sdk.language`` hint.

    The hint may be None or anything: unknown values are ignored and the language is detected
    from the text, as it is when the hinted parser finds no frame.
    """
    if not isinstance(text, str):
        return ParsedStack("unknown", ())
    lines = [line.rstrip("\r") for line in text[:MAX_TEXT].split("\n") if len(line) <= _MAX_LINE]
    hinted = _HINTS.get(language.strip().lower()) if isinstance(language, str) else None
    if hinted is not None and (frames := _PARSERS[hinted](lines)):
        return ParsedStack(hinted, tuple(frames[:MAX_FRAMES]))
    guess = _guess(text[:MAX_TEXT])
    if guess not in (None, hinted) and (frames := _PARSERS[guess](lines)):
        return ParsedStack(guess, tuple(frames[:MAX_FRAMES]))
    tried = {hinted, guess}
    found = [(lang, parse(lines)) for lang, parse in _PARSERS.items() if lang not in tried]
    best, frames = max(found, key=lambda item: len(item[1]))  # the first of equals wins
    if not frames:
        return ParsedStack("unknown", ())
    return ParsedStack(best, tuple(frames[:MAX_FRAMES]))
