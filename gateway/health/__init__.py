"""Health: per-service RED health, component and system checks, the system
sampler and the latency sketch."""
