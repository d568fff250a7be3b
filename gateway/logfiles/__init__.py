"""Files the gateway writes (its own log, the file exporter's output): rotation by size and
daily, gzip, retention by age and count, crash repair, and their status (docs/log-files.md)."""
