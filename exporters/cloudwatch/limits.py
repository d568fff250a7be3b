"""What CloudWatch Logs and the Embedded Metric Format take, with where each number comes from.

PutLogEvents (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html,
and the same text in botocore's service model ``logs/2014-03-28``, botocore 1.43):

* at most 10,000 events per call;
* at most 1,048,576 bytes per call, counted as the UTF-8 bytes of every message plus 26 bytes
  per event;
* the events of one call in chronological order, spanning at most 24 hours;
* events more than 2 hours in the future, older than 14 days or older than the group's
  retention are rejected "while processing remaining valid events" (``rejectedLogEventsInfo``);
* an event is at most 1 MB: raised from 256 KB in April 2025
  (https://aws.amazon.com/about-aws/whats-new/2025/04/amazon-cloudwatch-logs-increases-log-event-size-1-mb/).
  Like the CloudWatch agent (``plugins/outputs/cloudwatchlogs/internal/pusher/batch.go``: 1 MiB
  including the per-event header), the message may be 1 MiB minus the 26 bytes of overhead:
  the most that also fits a call on its own.

Names (the service model's ``LogGroupName`` and ``LogStreamName`` shapes): 1-512 characters;
a group of ``[.\\-_/#A-Za-z0-9]``, a stream of anything but ``:`` and ``*``. Retention days
(the ``Days`` shape, ``PutRetentionPolicy``): the values in :data:`RETENTION_DAYS`.

Embedded Metric Format (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html;
the numbers as AWS's own EMF library checks them, aws-embedded-metrics-java ``Constants.java``):
at most 30 dimensions in a dimension set, 100 metrics in a directive, 100 values per metric;
dimension names up to 250 characters, dimension values up to 1024, metric names up to 1024,
a namespace up to 256 of ``[a-zA-Z0-9._#:/-]``.
"""

from __future__ import annotations

import re

MAX_EVENTS_PER_CALL = 10_000
MAX_CALL_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 1_048_576 - EVENT_OVERHEAD  # a message's UTF-8 bytes
MAX_SPAN_MS = 24 * 3600 * 1000  # one call's events span less than this
MAX_AGE_MS = 14 * 24 * 3600 * 1000
MAX_FUTURE_MS = 2 * 3600 * 1000

MAX_NAME_LENGTH = 512
GROUP_NAME = re.compile(r"[.\-_/#A-Za-z0-9]+")
GROUP_NAME_BAD_CHARS = re.compile(r"[^.\-_/#A-Za-z0-9]")
STREAM_NAME_BAD_CHARS = re.compile(r"[:*]")
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip

EMF_MAX_DIMENSIONS = 30
EMF_MAX_METRICS = 100
EMF_MAX_VALUES = 100
EMF_MAX_DIMENSION_NAME = 250
EMF_MAX_DIMENSION_VALUE = 1024
EMF_MAX_METRIC_NAME = 1024
EMF_MAX_NAMESPACE = 256
EMF_NAMESPACE = re.compile(r"[a-zA-Z0-9._#:/-]+")
# CloudWatch rejects metric values outside this range (PutMetricData's MetricDatum.Value).
EMF_MAX_MAGNITUDE = 2.0**360
