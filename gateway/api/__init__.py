"""Admin routes on their own listener: metrics, health, and (later) SLO, alerts, dashboard."""
