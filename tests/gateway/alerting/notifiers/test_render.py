"""Subjects and bodies as people read them: Alertmanager's subject format, one line; every
alert value escaped in HTML; only http(s) URLs become links."""

from __future__ import annotations

import dataclasses
import re

from gateway.alerting.notifiers.render import (
    MAX_SUBJECT,
    html_body,
    link,
    subject,
    text_body,
)
from tests.gateway.alerting.notifiers.samples import (
    MAY_1_NOON,
    alert,
    firing_and_resolved,
    single,
)


def test_subject_counts_the_firing_alerts_and_names_rule_and_service() -> None:
    two = dataclasses.replace(single(alert()), alerts=(alert(), alert(extra_labels={"pod": "b"})))
    assert subject(two) == "[FIRING:2] HighErrorRate (checkout)"
    assert subject(firing_and_resolved()) == "[FIRING:1] HighErrorRate (checkout)"


def test_a_resolved_subject_has_no_count() -> None:
    resolved = alert(status="resolved", ends_at=MAY_1_NOON + 60)
    assert subject(single(resolved)) == "[RESOLVED] HighErrorRate (checkout)"


def test_without_a_common_alertname_the_group_labels_name_the_subject() -> None:
    mixed = dataclasses.replace(
        single(alert()),
        group_labels={"service": "checkout", "severity": "critical"},
        alerts=(alert("A"), alert("B")),
    )
    assert subject(mixed) == "[FIRING:2] checkout critical"


def test_escalation_is_in_the_subject() -> None:
    escalated = dataclasses.replace(single(alert()), escalation=2)
    assert subject(escalated) == "[FIRING:1] HighErrorRate (checkout) [escalation 2]"


def test_the_subject_is_one_bounded_line() -> None:
    sneaky = alert(service="checkout\r\nBcc: everyone@example.com" + "x" * 500)
    line = subject(single(sneaky))
    assert "\n" not in line and "\r" not in line
    assert line.startswith("[FIRING:1] HighErrorRate (checkout Bcc: everyone@example.com")
    assert len(line) == MAX_SUBJECT and line.endswith("…")


def test_the_text_body_lists_each_alert() -> None:
    body = text_body(firing_and_resolved())
    assert body.startswith("[FIRING:1] HighErrorRate (checkout)\n")
    assert body.index("Firing (1)") < body.index("Resolved (1)")
    assert "* HighErrorRate: Error rate above 5%" in body
    assert "  5xx ratio of checkout is 12.5% over 5m." in body
    assert "  Value: 0.125" in body
    assert "  Started: 2024-05-01 12:00:00 UTC" in body
    assert "  Ended: 2024-05-01 11:58:59 UTC" in body
    assert "  Labels: alertname=HighErrorRate, region=eu, service=checkout" in body
    assert "  Runbook: https://runbooks.example/high-error-rate" in body
    assert "  Source: http://gateway.example:8888/alerts/HighErrorRate" in body
    assert body.endswith("Open in otelgate: http://gateway.example:8888/alerts\n")


def test_other_annotations_and_the_acknowledger_are_shown() -> None:
    acked = dataclasses.replace(alert(dashboard="d/1"), acknowledged_by="alice")
    body = text_body(single(acked))
    assert "  Acknowledged by: alice" in body
    assert "  dashboard: d/1" in body


def test_html_escapes_every_alert_value() -> None:
    evil = "<script>alert('x')</script>"
    hostile = alert(
        service=evil,
        extra_labels={evil: "label name"},
        summary=f"summary {evil}",
        description=f"line one & {evil}\nline two",
        runbook_url="javascript:alert(1)",
        note=evil,
    )
    hostile = dataclasses.replace(hostile, acknowledged_by=evil, generator_url='http://x/"><b>')
    page = html_body(dataclasses.replace(single(hostile), external_url="http://ui/?a=1&b=2"))
    assert "<script>" not in page and "<b>" not in page
    assert page.count("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;") >= 6
    assert "line one &amp; " in page and "<br>line two" in page
    assert "javascript:alert(1)" in page and 'href="javascript' not in page  # inert text
    assert '<a href="http://x/&quot;&gt;&lt;b&gt;">source</a>' in page
    assert '<a href="http://ui/?a=1&amp;b=2">Open in otelgate</a>' in page
    # Only our own markup remains: every tag in the page is one we write.
    tags = set(re.findall(r"<\s*/?\s*([a-zA-Z0-9!]+)", page))
    assert tags <= {"!DOCTYPE", "html", "head", "meta", "title", "body", "h2", "h3", "ul"} | {
        "li",
        "strong",
        "p",
        "br",
        "table",
        "tr",
        "th",
        "td",
        "a",
    }


def test_links_are_only_made_for_http_urls() -> None:
    assert link("https://a.example/x?y=1&z=2", "run") == (
        '<a href="https://a.example/x?y=1&amp;z=2">run</a>'
    )
    assert link("data:text/html,<b>", "run") == "data:text/html,&lt;b&gt;"
