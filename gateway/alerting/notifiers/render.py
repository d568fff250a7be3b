"""A notification as people read it: a subject line, a plain-text body and an HTML body.

Shared by the email and apprise integrations. The subject follows Alertmanager's default
(``[FIRING:2] HighErrorRate (checkout)``, ``[RESOLVED] ...``) on one line. Bodies list firing
alerts, then resolved ones, each with its summary, description, value, times, labels, other
annotations, runbook and source. In HTML every value from an alert is escaped, and only
``http(s)`` URLs become links (a ``javascript:`` runbook stays inert text).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator, Mapping

from gateway.alerting.alerts import AlertSnapshot, Notification

MAX_SUBJECT = 200  # characters; a subject is a header line, not a report
SHOWN_ANNOTATIONS = ("summary", "description", "runbook_url")
_SPACE = re.compile(r"\s+")
_LINKABLE = re.compile(r"https?://", re.IGNORECASE)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (line breaks included) made one space."""
    return _SPACE.sub(" ", text).strip()


def when(seconds: float) -> str:
    """Wall-clock seconds as ``2024-05-01 12:00:00 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def sorted_labels(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    """Label pairs, ``alertname`` first and the others by name (Alertmanager's order)."""
    return sorted(labels.items(), key=lambda kv: (kv[0] != "alertname", kv[0]))


def title(notification: Notification) -> tuple[str, set[str]]:
    """What the group is about, and the labels that says: its common ``alertname``, else its
    group label values."""
    name = notification.common_labels.get("alertname")
    if name:
        return name, {"alertname"}
    values = [v for _, v in sorted_labels(notification.group_labels)]
    return " ".join(values) or "alerts", set(notification.group_labels)


def subject(notification: Notification) -> str:
    """``[FIRING:<n firing>] <alertname> (<service>)`` or ``[RESOLVED] ...``, one line."""
    firing = sum(a.status == "firing" for a in notification.alerts)
    head = f"[FIRING:{firing}]" if firing else "[RESOLVED]"
    name, named_by = title(notification)
    text = f"{head} {name}"
    service = notification.common_labels.get("service")
    if service and "service" not in named_by:
        text += f" ({service})"
    if notification.escalation:
        text += f" [escalation {notification.escalation}]"
    text = one_line(text)
    return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 1] + "…"


def _sections(notification: Notification) -> Iterator[tuple[str, list[AlertSnapshot]]]:
    for status in ("firing", "resolved"):
        alerts = [a for a in notification.alerts if a.status == status]
        if alerts:
            yield f"{status.capitalize()} ({len(alerts)})", alerts


def _facts(alert: AlertSnapshot) -> list[tuple[str, str]]:
    """Name/value lines of an alert other than its heading, description and links."""
    facts: list[tuple[str, str]] = []
    if alert.value is not None:
        facts.append(("Value", f"{alert.value:.6g}"))
    facts.append(("Started", when(alert.starts_at)))
    if alert.ends_at is not None:
        facts.append(("Ended", when(alert.ends_at)))
    if alert.acknowledged_by:
        facts.append(("Acknowledged by", alert.acknowledged_by))
    facts.append(("Labels", ", ".join(f"{k}={v}" for k, v in sorted_labels(alert.labels))))
    others = sorted((k, v) for k, v in alert.annotations.items() if k not in SHOWN_ANNOTATIONS)
    facts.extend((k, v) for k, v in others)
    return facts


def _heading(alert: AlertSnapshot) -> str:
    name = alert.labels.get("alertname", "alert")
    summary = alert.annotations.get("summary")
    return f"{name}: {summary}" if summary else name


def text_body(notification: Notification) -> str:
    """The notification as plain text."""
    lines = [subject(notification), ""]
    for caption, alerts in _sections(notification):
        lines += [caption, "=" * len(caption), ""]
        for alert in alerts:
            lines.append(f"* {one_line(_heading(alert))}")
            description = alert.annotations.get("description")
            if description:
                lines += [f"  {line}" for line in description.splitlines()]
            lines += [f"  {one_line(k)}: {one_line(v)}" for k, v in _facts(alert)]
            if alert.annotations.get("runbook_url"):
                lines.append(f"  Runbook: {one_line(alert.annotations['runbook_url'])}")
            if alert.generator_url:
                lines.append(f"  Source: {one_line(alert.generator_url)}")
            lines.append("")
    if notification.external_url:
        lines.append(f"Open in otelgate: {one_line(notification.external_url)}")
    return "\n".join(lines).rstrip() + "\n"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def link(url: str, text: str) -> str:
    """An HTML link to ``url`` if it is http(s), else the escaped ``url`` as text."""
    url = url.strip()
    if _LINKABLE.match(url):
        return f'<a href="{_e(url)}">{_e(text)}</a>'
    return _e(url)


def _html_alert(alert: AlertSnapshot) -> list[str]:
    parts = [f"<li><strong>{_e(_heading(alert))}</strong>"]
    description = alert.annotations.get("description")
    if description:
        parts.append(f"<p>{_e(description).replace(chr(10), '<br>')}</p>")
    parts.append("<table>")
    rows = [(name, _e(value)) for name, value in _facts(alert)]
    runbook = alert.annotations.get("runbook_url")
    if runbook:
        rows.append(("Runbook", link(runbook, runbook)))
    if alert.generator_url:
        rows.append(("Source", link(alert.generator_url, "source")))
    parts += [f"<tr><th align='left'>{_e(name)}</th><td>{cell}</td></tr>" for name, cell in rows]
    parts.append("</table></li>")
    return parts


def html_body(notification: Notification) -> str:
    """The notification as an HTML document; every alert value is escaped."""
    heading = _e(subject(notification))
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{heading}</title></head><body>",
        f"<h2>{heading}</h2>",
    ]
    for caption, alerts in _sections(notification):
        parts += [f"<h3>{_e(caption)}</h3>", "<ul>"]
        for alert in alerts:
            parts += _html_alert(alert)
        parts.append("</ul>")
    if notification.external_url:
        parts.append(f"<p>{link(notification.external_url, 'Open in otelgate')}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
