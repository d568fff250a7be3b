"""Alerting: rules over what the gateway sees, routing, notifications, ack/silence/escalation
and history (docs/alerting.md)."""
