"""The RFC 3164 ("BSD") header for :mod:`gateway.receivers.syslog_parse`: TIMESTAMP (with the
year rule and Cisco's variants), HOSTNAME and TAG, as plain values. Precompiled regexes, each
anchored at a position and bounded, so every line is read in linear time.

**TIMESTAMP**: ``Mmm dd hh:mm:ss`` (day space- or zero-padded, optional fraction),
``Mmm dd yyyy hh:mm:ss`` (Cisco ASA, Cisco IOS with ``service timestamps log datetime year``),
and Cisco IOS's decorations: a leading ``*`` (clock not authoritative) or ``.`` (clock lost its
sync), which are dropped, and a ``:`` right after the time (``*Apr 29 13:58:40.411: %SYS-...``).
Before the timestamp, Cisco's sequence number (``service sequence-numbers``: ``29: ``) is
skipped when a timestamp or a ``%FACILITY-SEVERITY-MNEMONIC`` follows it.

**The year of a timestamp without one**: of Y + 1, Y and Y - 1, where Y is the receive time's
year in ``tz``, the latest that puts the timestamp **no more than one day after the receive
time**. So ``Dec 31 23:59:59`` received on 1 January is last year, ``Jan  1 00:00:05`` received
at 23:59:58 on 31 December (a clock a few seconds fast) is next year, ``Dec  8`` received on
6 December is last year (two days ahead cannot be this year), and anything else is this year.
One day covers clock skew and a sender in a zone ahead of ``tz`` (UTC+14 against UTC is 14
hours). A date that exists in none of those years (29 February) is an invalid timestamp.

**TAG** (RFC 3164 4.1.3): ``TAG:``, ``TAG[PID]:`` or ``TAG[PID]`` anywhere a TAG may be; after
a HOSTNAME also a *bare* TAG, a word of 1 to 48 of ``A-Z a-z 0-9 _ . / -`` (APP-NAME's length
limit) with at least one letter among its first 48 characters, followed by a space. The RFC
ends the TAG at the first non-alphanumeric character, and rsyslog reads such a word as the
``programname``; it is what rsyslog's own ``RSYSLOG_ForwardFormat`` and
``RSYSLOG_TraditionalForwardFormat`` (omfwd's default) write for an RFC 5424 message without
PROCID: ``<30>2026-12-06T06:39:52.350032+00:00 vm sshd session opened``. The letter keeps
numbers, addresses and dates (``1987``, ``10.1.2.3``, ``2024-01-01``) out of the TAG, and an
all-digit word is never a TAG even with a colon (Cisco's ``29:`` is a sequence number). Cisco
ASA's ``HOSTNAME : %ASA-6-302013: ...`` (``logging device-id``) reads as HOSTNAME and TAG.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

NS = 1_000_000_000
_DAY_NS = 86_400 * NS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONTHS = {
    name: i
    for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}

# Cisco's "service sequence-numbers" prefix, only before a timestamp or a %MNEMONIC.
_SEQUENCE = re.compile(r"\d{1,10}: (?=[*.]?[A-Za-z]{3} {1,2}\d|%)")
_BSD_TS = re.compile(
    r"[*.]?([A-Za-z]{3}) {1,2}(\d{1,2})(?: (\d{4}))? (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?:?"
    r"(?: |\Z)"
)
# TAG, [PID], ':' -- a tag only when followed by a space or the end (not "fe80::1").
_TAG = re.compile(r"([^\s\[\]:]+)(?:\[([^\]\s]*)\])?(:)?(?= |\Z)")
_BARE_TAG = re.compile(r"(?=[0-9_./-]{0,47}[A-Za-z])([A-Za-z0-9_./-]{1,48}) ")


def skip_sequence(text: str, pos: int) -> int:
    """Where the header goes on after a Cisco sequence number at ``pos`` (``pos`` if none)."""
    m = _SEQUENCE.match(text, pos)
    return m.end() if m else pos


def bsd_timestamp(
    text: str, pos: int, received_ns: int, tz: tzinfo
) -> tuple[re.Match[str], int | None] | None:
    """A BSD timestamp at ``pos``: (its match, Unix ns or None when it names no valid time),
    or None when there is none."""
    stamp = _BSD_TS.match(text, pos)
    if stamp is None or (month := _MONTHS.get(stamp.group(1).lower())) is None:
        return None
    day, hour, minute, second = (int(g) for g in stamp.group(2, 4, 5, 6))
    fraction = fraction_ns(stamp.group(7))
    try:
        if stamp.group(3):
            ns = civil_ns(int(stamp.group(3)), month, day, hour, minute, second, tz)
        else:
            resolved = _resolve_year(month, day, hour, minute, second, received_ns, tz)
            if resolved is None:
                return stamp, None
            ns = resolved
    except (ValueError, OverflowError, OSError):
        return stamp, None
    return stamp, ns + fraction


def tag(text: str, pos: int, *, bare: bool = False) -> tuple[str | None, str | None, int]:
    """A TAG at ``pos`` (a bare one too when ``bare``): (tag, pid, where the content starts)."""
    m = _TAG.match(text, pos)
    if m is not None and (m.group(2), m.group(3)) != (None, None) and not m.group(1).isdigit():
        start = m.end()
        return m.group(1), m.group(2) or None, start + 1 if start < len(text) else start
    if bare and (word := _BARE_TAG.match(text, pos)) is not None:
        return word.group(1), None, word.end()
    return None, None, pos


def host_and_tag(text: str, pos: int) -> tuple[str | None, str | None, str | None, int]:
    """HOSTNAME and TAG after the timestamp: (hostname, tag, pid, where the content starts)."""
    app_name, proc_id, start = tag(text, pos)
    if app_name is not None:  # "Dec  6 05:01:02 sshd[42]: ..." -- no HOSTNAME
        return None, app_name, proc_id, start
    space = text.find(" ", pos)
    if space == -1:
        return text[pos:] or None, None, None, len(text)
    after = space + 1
    if text.startswith(": %", after):  # Cisco ASA: "asa01 : %ASA-6-302013: ..."
        after += 2
    app_name, proc_id, start = tag(text, after, bare=True)
    return text[pos:space] or None, app_name, proc_id, start if app_name else space + 1


def fraction_ns(digits: str | None) -> int:
    return int(digits.ljust(9, "0")) if digits else 0


def civil_ns(
    year: int, month: int, day: int, hour: int, minute: int, second: int, tz: tzinfo
) -> int:
    """Wall-clock time in ``tz`` as Unix ns (ValueError when there is no such date)."""
    delta = datetime(year, month, day, hour, minute, second, tzinfo=tz) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS


def _resolve_year(
    month: int, day: int, hour: int, minute: int, second: int, received_ns: int, tz: tzinfo
) -> int | None:
    """The year rule of the module docstring; None when the date exists in none of the years."""
    year = datetime.fromtimestamp(received_ns // NS, tz).year
    latest = received_ns + _DAY_NS
    for candidate in (year + 1, year, year - 1):
        try:
            ns = civil_ns(candidate, month, day, hour, minute, second, tz)
        except (ValueError, OverflowError):
            continue  # 29 February of a common year, or past year 9999
        if ns <= latest:
            return ns
    return None
