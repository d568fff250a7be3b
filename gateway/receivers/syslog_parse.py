"""One syslog message (RFC 5424, RFC 3164 and the variants real senders use) as plain values.

Pure and allocation-light: precompiled regexes over the decoded line, no per-message objects
beyond the result. The receiver (:mod:`gateway.receivers.syslog`) removes the framing (octet
counts, trailing newlines) and maps the result with :mod:`gateway.receivers.syslog_mapping`.

**Never raises, never drops.** A line that is not syslog at all is ``format="unparsed"`` with
``message`` = the line; a line parsed only in part keeps every field it could read. Whenever
``parse_error`` is set, ``message`` is the *whole* decoded line (so the mapping can make it the
log body and nothing is lost). Decoding is UTF-8 (see "Invalid UTF-8" below). Trailing CR, LF
and NUL bytes are removed (Python's ``SysLogHandler`` appends a NUL).

**RFC 5424** (section 6): ``<PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP
MSGID SP STRUCTURED-DATA [SP MSG]``; ``-`` is NILVALUE (-> None); the BOM before MSG is removed.
SD-PARAM values are unescaped (``\\"``, ``\\\\``, ``\\]``; a backslash before anything else is kept,
section 6.3.3). An SD-ID given twice is merged, and a PARAM-NAME given twice in one element keeps
its first value (the type holds one value per name; RFC 5424 7.2.1 lets ``origin`` repeat ``ip``).
Lenient where no information is lost: up to 9 fractional digits (RFC 5424 allows 6; Go's
RFC3339Nano senders send 9), a missing time zone (taken as ``tz``), a missing STRUCTURED-DATA.

**RFC 3164** (section 4.1): ``<PRI>TIMESTAMP SP HOSTNAME SP TAG[PID]: MSG``, read by
:mod:`gateway.receivers.syslog_bsd` (BSD and Cisco timestamps, the year rule, the TAG rules),
or with an RFC 3339 timestamp as rsyslog's ``RSYSLOG_ForwardFormat`` sends it (zone optional).
When the first word after the timestamp is a TAG ending in ``:`` or ``[PID]`` there is no
HOSTNAME (what glibc writes to /dev/log); after a HOSTNAME a bare TAG (a program-name-like word
and a space, rsyslog's reading) is a TAG too. Without a timestamp the whole rest is the content
(RFC 3164 4.3.2), after an optional leading TAG ending in ``:`` or ``[PID]``. Without a valid
PRI facility and severity are None and that is a parse error. The examples of RFC 3164 5.4:

1. ``<34>Oct 11 22:14:15 mymachine su: 'su root' failed ...``: HOSTNAME ``mymachine``, TAG
   ``su``, as the RFC has it.
2. ``<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!`` (as a relay forwards it): HOSTNAME
   ``10.0.0.99``, TAG ``Use``, content ``the BFG!``. The RFC calls "Use" content; rsyslog reads
   ``programname`` "Use" and ``msg`` " the BFG!", and its forwarding templates depend on that
   reading (they write an RFC 5424 APP-NAME without PROCID as exactly such a bare word).
3. ``<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: ...``: HOSTNAME ``CST`` and, as the RFC
   says, the rest is content: ``1987`` is all digits, never a TAG.
4. ``<0>1990 Oct 22 10:52:01 TZ-6 scapegoat...``: no valid TIMESTAMP, all content (the RFC's).
5. ``<0>Oct 22 10:52:12 scapegoat 1990 Oct 22 ...`` (example 4 relayed): HOSTNAME ``scapegoat``,
   the rest content (``1990`` is no TAG).

Timestamps without a zone (RFC 3164, zone-less RFC 3339) are civil time in ``tz``, the
receiver's configured zone (default UTC), like the Collector's ``location``. Timestamps before
1970 cannot be an OTLP time: None, and a parse error.

**Invalid UTF-8.** The header is decoded strictly, the MSG leniently: RFC 5424 lets MSG be any
octets without a BOM (MSG-ANY) and old RFC 3164 devices send Latin-1. When every field read
from the header is valid UTF-8, each byte that is not part of a valid UTF-8 sequence becomes
the Latin-1 character of the same value (``caf\\xe9`` -> ``café``: every byte stays visible and
valid UTF-8 around it is kept, where U+FFFD would lose the text of every Latin-1 sender) and
``invalid_utf8`` is set -- not a parse error. When a header field is not UTF-8 the line is a
parse error and is decoded with U+FFFD replacement (``invalid_utf8`` is set too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, tzinfo
from typing import Literal

from gateway.receivers.syslog_bsd import (
    NS,
    bsd_timestamp,
    civil_ns,
    fraction_ns,
    host_and_tag,
    skip_sequence,
    tag,
)

Format = Literal["rfc5424", "rfc3164", "unparsed"]


@dataclass(frozen=True, slots=True)
class SyslogMessage:
    """One parsed syslog message; see the module docstring for the rules."""

    format: Format
    facility: int | None  # from <PRI>; None when PRI missing/invalid
    severity: int | None
    timestamp_ns: int | None  # event time in Unix ns (None when absent/unparseable)
    hostname: str | None
    app_name: str | None
    proc_id: str | None
    msg_id: str | None
    structured_data: dict[str, dict[str, str]]  # SD-ID -> params (RFC 5424), {} otherwise
    message: str  # the MSG part (BOM stripped), or the whole line when parse_error is set
    parse_error: str | None  # why it could not be parsed fully (the line is still kept)
    version: int | None
    invalid_utf8: bool = False  # bytes that are not UTF-8 were decoded leniently


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# surrogateescape's stand-ins for undecodable bytes -> the Latin-1 characters of those bytes
_LATIN1 = {0xDC00 + b: b for b in range(0x80, 0x100)}
_ESCAPED = re.compile("[\udc80-\udcff]")

_PRI = re.compile(r"<(\d{1,3})>")
_PRI_LIKE = re.compile(r"<([^<>]{0,5})>")  # PRI-shaped but not 1-3 digits: "<>", "<abc>", "<1234>"
# VERSION, TIMESTAMP (NILVALUE or starting with a year), HOSTNAME, APP-NAME, PROCID, MSGID.
_HEADER_5424 = re.compile(r"([1-9]\d{0,2}) (-|\d{4}-\S*) (\S+) (\S+) (\S+) (\S+)(?: |\Z)")
_VERSION_LIKE = re.compile(r"[1-9]\d{0,2} (?:-|\d{4}-)")  # a 5424 header the above refused
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?([Zz]|[+-]\d\d:?\d\d)?"
)
_RFC3339_WORD = re.compile(_RFC3339.pattern + r"(?: |\Z)")
_SD_ID = re.compile(r'\[([^\s=\]"]+)')
_SD_PARAM = re.compile(r' ([^\s=\]"]+)="([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL)
_SD_ESCAPE = re.compile(r'\\(["\\\]])')


def parse(raw: bytes, received_ns: int, *, tz: tzinfo = UTC) -> SyslogMessage:
    """Parse one syslog message (no framing: the receiver strips octet counts / trailing
    newlines). ``received_ns`` resolves the year of RFC 3164 timestamps; ``tz`` is the zone of
    timestamps that carry none."""
    raw = raw.rstrip(b"\r\n\x00")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return _parse_text(text, [], received_ns, tz)
    msg = _parse_text(raw.decode("utf-8", "surrogateescape"), [], received_ns, tz)
    if not _ESCAPED.search(_header_text(msg)):  # only the body (MSG, or the line) is not UTF-8
        return replace(msg, message=msg.message.translate(_LATIN1), invalid_utf8=True)
    errors = ["invalid UTF-8 in the header (replaced by U+FFFD)"]
    msg = _parse_text(raw.decode("utf-8", "replace"), errors, received_ns, tz)
    return replace(msg, invalid_utf8=True)


def decode_lenient(raw: bytes) -> str:
    """UTF-8, with each byte outside a valid sequence read as Latin-1 (the body's decoding)."""
    return raw.decode("utf-8", "surrogateescape").translate(_LATIN1)


def _header_text(msg: SyslogMessage) -> str:
    """Every string ``msg`` holds besides its body, joined (to look for undecodable bytes)."""
    fields = [msg.hostname, msg.app_name, msg.proc_id, msg.msg_id, msg.parse_error]
    for sd_id, params in msg.structured_data.items():
        fields += [sd_id, *params, *params.values()]
    return "\n".join(field for field in fields if field)


def _parse_text(text: str, errors: list[str], received_ns: int, tz: tzinfo) -> SyslogMessage:
    if not text:
        return _unparsed(text, ["empty message"])

    facility = severity = None
    pos = 0
    if m := _PRI.match(text):
        pri, pos = int(m.group(1)), m.end()
        if pri <= 191:
            facility, severity = divmod(pri, 8)
        else:
            errors.append(f"PRI {pri} out of range 0..191")
    elif m := _PRI_LIKE.match(text):
        errors.append(f"invalid PRI <{m.group(1)}>")
        pos = m.end()
    else:
        errors.append("no <PRI>")

    if header := _HEADER_5424.match(text, pos):
        return _rfc5424(text, header, facility, severity, errors, tz)
    return _rfc3164(text, pos, facility, severity, errors, received_ns, tz)


def _unparsed(text: str, errors: list[str]) -> SyslogMessage:
    return SyslogMessage(
        "unparsed", None, None, None, None, None, None, None, {}, text, "; ".join(errors), None
    )


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def _rfc5424(
    text: str,
    header: re.Match[str],
    facility: int | None,
    severity: int | None,
    errors: list[str],
    tz: tzinfo,
) -> SyslogMessage:
    timestamp_ns = None
    stamp = header.group(2)
    if stamp != "-":
        m = _RFC3339.fullmatch(stamp)
        timestamp_ns = _timestamp_ns(m, tz) if m else None
        if timestamp_ns is None:
            errors.append(f"invalid TIMESTAMP {stamp!r}")
    structured_data, start, sd_error = _structured_data(text, header.end())
    if sd_error:
        errors.append(sd_error)
    message = text[start:]
    if message.startswith("\ufeff"):
        message = message[1:]
    return SyslogMessage(
        format="rfc5424",
        facility=facility,
        severity=severity,
        timestamp_ns=timestamp_ns,
        hostname=_nil(header.group(3)),
        app_name=_nil(header.group(4)),
        proc_id=_nil(header.group(5)),
        msg_id=_nil(header.group(6)),
        structured_data=structured_data,
        message=text if errors else message,
        parse_error="; ".join(errors) or None,
        version=int(header.group(1)),
    )


def _structured_data(text: str, pos: int) -> tuple[dict[str, dict[str, str]], int, str | None]:
    """STRUCTURED-DATA from ``pos``: (elements, where MSG starts, error or None)."""
    end = len(text)
    if pos >= end:
        return {}, end, None  # no STRUCTURED-DATA and no MSG: lenient, nothing is lost
    if text[pos] == "-":
        if pos + 1 == end:
            return {}, end, None
        if text[pos + 1] == " ":
            return {}, pos + 2, None
        return {}, pos, f"invalid STRUCTURED-DATA at offset {pos}"
    if text[pos] != "[":
        return {}, pos, f"no STRUCTURED-DATA at offset {pos}"
    elements: dict[str, dict[str, str]] = {}
    while True:
        element = _SD_ID.match(text, pos)
        if element is None:
            return elements, pos, f"invalid SD-ELEMENT at offset {pos}"
        params = elements.setdefault(element.group(1), {})
        pos = element.end()
        while param := _SD_PARAM.match(text, pos):
            value = param.group(2)
            if "\\" in value:
                value = _SD_ESCAPE.sub(r"\1", value)
            params.setdefault(param.group(1), value)
            pos = param.end()
        if pos >= end or text[pos] != "]":
            return elements, pos, f"unterminated SD-ELEMENT at offset {pos}"
        pos += 1
        if pos == end:
            return elements, end, None
        if text[pos] == " ":
            return elements, pos + 1, None
        if text[pos] != "[":
            return elements, pos, f"invalid STRUCTURED-DATA at offset {pos}"


def _rfc3164(
    text: str,
    pos: int,
    facility: int | None,
    severity: int | None,
    errors: list[str],
    received_ns: int,
    tz: tzinfo,
) -> SyslogMessage:
    end = len(text)
    while pos < end and text[pos] == " ":  # "<165> 2014-05-16T21:33:39.531Z host ..."
        pos += 1
    pos = skip_sequence(text, pos)  # Cisco: "<189>29: *Apr 29 13:58:40.411: %SYS-5-..."
    timestamp_ns = None
    hostname = None
    stamp: re.Match[str] | None = None
    if bsd := bsd_timestamp(text, pos, received_ns, tz):
        stamp, timestamp_ns = bsd
    elif stamp := _RFC3339_WORD.match(text, pos):
        timestamp_ns = _timestamp_ns(stamp, tz)

    if stamp is None:
        if facility is None:  # neither a PRI nor a header: not syslog
            return _unparsed(text, errors)
        if _VERSION_LIKE.match(text, pos):
            errors.append("malformed RFC 5424 header")
        app_name, proc_id, pos = tag(text, pos)
    else:
        if timestamp_ns is None or timestamp_ns < 0:
            timestamp_ns = None
            errors.append(f"invalid TIMESTAMP {stamp.group(0).strip()!r}")
        hostname, app_name, proc_id, pos = host_and_tag(text, stamp.end())
    message = text[pos:]
    if message.startswith("\ufeff"):
        message = message[1:]
    return SyslogMessage(
        format="rfc3164",
        facility=facility,
        severity=severity,
        timestamp_ns=timestamp_ns,
        hostname=hostname,
        app_name=app_name,
        proc_id=proc_id,
        msg_id=None,
        structured_data={},
        message=text if errors else message,
        parse_error="; ".join(errors) or None,
        version=None,
    )


def _timestamp_ns(m: re.Match[str], tz: tzinfo) -> int | None:
    """An RFC 3339 match as Unix ns; None when it names no valid instant from 1970 on."""
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    fraction = fraction_ns(m.group(7))
    zone = m.group(8)
    try:
        if zone is None:
            ns = civil_ns(year, month, day, hour, minute, second, tz)
        else:
            offset = 0
            if zone not in ("Z", "z"):
                zone_hours, zone_minutes = int(zone[1:3]), int(zone[-2:])
                if zone_hours > 23 or zone_minutes > 59:
                    return None
                offset = (zone_hours * 3600 + zone_minutes * 60) * (-1 if zone[0] == "-" else 1)
            if hour > 23 or minute > 59 or second > 60:  # 60: a leap second, as POSIX counts it
                return None
            days = date(year, month, day).toordinal() - _EPOCH_ORDINAL
            ns = (days * 86_400 + hour * 3600 + minute * 60 + second - offset) * NS
    except (ValueError, OverflowError):
        return None
    ns += fraction
    return ns if ns >= 0 else None
