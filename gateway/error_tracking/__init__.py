"""Error tracking: exceptions from spans and logs grouped by fingerprint."""
