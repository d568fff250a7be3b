"""Tests of gateway.signals."""
