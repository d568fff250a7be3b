"""The ``cloudwatch`` exporter: logs to CloudWatch Logs, metrics as Embedded Metric Format."""
