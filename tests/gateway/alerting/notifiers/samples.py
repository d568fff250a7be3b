"""Hand-built alerts and notifications for the notifier tests."""

from __future__ import annotations

from gateway.alerting.alerts import AlertSnapshot, Notification, fingerprint

MAY_1_NOON = 1714564800.0  # 2024-05-01T12:00:00Z


def alert(
    name: str = "HighErrorRate",
    service: str = "checkout",
    *,
    status: str = "firing",
    starts_at: float = MAY_1_NOON + 0.5,
    ends_at: float | None = None,
    value: float | None = 0.125,
    extra_labels: dict[str, str] | None = None,
    **annotations: str,
) -> AlertSnapshot:
    """An alert of rule ``name`` for ``service`` (severity critical)."""
    labels = {"alertname": name, "service": service, "severity": "critical"}
    labels.update(extra_labels or {})
    assert status in ("firing", "resolved")
    return AlertSnapshot(
        id=f"{name}/{service}",
        status="firing" if status == "firing" else "resolved",
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=f"http://gateway.example:8888/alerts/{name}",
        fingerprint=fingerprint(labels),
        value=value,
    )


def firing_and_resolved() -> Notification:
    """Two alerts of HighErrorRate for checkout: one firing, one resolved."""
    firing = alert(
        summary="Error rate above 5%",
        description="5xx ratio of checkout is 12.5% over 5m.",
        runbook_url="https://runbooks.example/high-error-rate",
    )
    resolved = alert(
        status="resolved",
        starts_at=MAY_1_NOON - 600,
        ends_at=MAY_1_NOON - 60.25,
        value=0.07,
        extra_labels={"region": "eu"},
        summary="Error rate above 5%",
    )
    return Notification(
        receiver="oncall",
        group_key='{}:{alertname="HighErrorRate"}',
        group_labels={"alertname": "HighErrorRate"},
        alerts=(firing, resolved),
        external_url="http://gateway.example:8888/alerts",
    )


def single(a: AlertSnapshot, receiver: str = "oncall") -> Notification:
    """A notification of one alert, grouped by alertname."""
    return Notification(
        receiver=receiver,
        group_key=f'{{}}:{{alertname="{a.labels["alertname"]}"}}',
        group_labels={"alertname": a.labels["alertname"]},
        alerts=(a,),
        external_url="http://gateway.example:8888/alerts",
    )
