"""Tests of gateway.alerting.notifiers."""
