"""Transport security, authentication, per-token limits."""
