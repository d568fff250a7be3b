"""Tests of gateway.alerting."""
