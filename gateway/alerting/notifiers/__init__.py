"""Where notifications go: webhook, Alertmanager, email, and apprise for the long tail."""
