"""A checker of CloudWatch Embedded Metric Format records, by the specification's rules.

Sources: the EMF specification
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html:
the ``_aws`` root member with ``Timestamp`` and ``CloudWatchMetrics``; each directive's
``Namespace``, ``Dimensions`` (arrays of dimension keys, at most 30 per set, each naming a
root member whose value is a string) and ``Metrics`` (at most 100 definitions, each naming a
root member; ``Unit`` and ``StorageResolution`` optional); metric values numbers or arrays of
numbers), and AWS's own EMF library (aws-embedded-metrics-java: ``Constants.java`` for the
lengths and the namespace pattern, ``Unit.java`` for the units, ``Histogram.java`` and
``Statistics.java`` for the distribution and statistic-set values and when a statistic set is
possible). :func:`problems` returns what breaks a rule; :func:`metrics` what CloudWatch would
extract.
"""

from __future__ import annotations

import math
import re
from typing import Any

UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip
NAMESPACE = re.compile(r"[a-zA-Z0-9._#:/-]{1,256}")
MAX_DIMENSIONS, MAX_METRICS, MAX_VALUES = 30, 100, 100
STATS = {"Max", "Min", "Count", "Sum"}


def _number(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool)
        and math.isfinite(value) and abs(value) < 2.0**360
    )  # fmt: skip


def _statistics(value: dict[str, Any]) -> list[str]:
    """The rules of a possible statistic set (Statistics.isValid), with float tolerance."""
    if not all(_number(value.get(k)) for k in STATS):
        return [f"statistic set needs finite Max, Min, Count, Sum: {value}"]
    high, low, count, total = value["Max"], value["Min"], value["Count"], value["Sum"]
    slack = 1e-6 * max(1.0, abs(total), abs(high) * count, abs(low) * count)
    if count <= 0 or not float(count).is_integer():
        return [f"Count {count} must be a positive integer"]
    if low > high:
        return [f"Min {low} above Max {high}"]
    if count == 1 and abs(high - low) > slack:
        return [f"one value, but Min {low} != Max {high}"]
    if low + high * (count - 1) < total - slack or high + low * (count - 1) > total + slack:
        return [f"no {count} values in [{low}, {high}] sum to {total}"]
    return []


def value_problems(name: str, value: Any) -> list[str]:
    """What is wrong with the value of metric ``name``."""
    if _number(value):
        return []
    if isinstance(value, list):
        if not 0 < len(value) <= MAX_VALUES or not all(_number(v) for v in value):
            return [f"{name}: an array of 1-{MAX_VALUES} finite numbers, not {value!r:.80}"]
        return []
    if not isinstance(value, dict):
        return [f"{name}: value {value!r:.80} is not a number"]
    found = _statistics(value)
    extra = set(value) - STATS - {"Values", "Counts"}
    if extra:
        found.append(f"{name}: unknown members {sorted(extra)}")
    if "Values" in value or "Counts" in value:
        values, counts = value.get("Values"), value.get("Counts")
        if not isinstance(values, list) or not isinstance(counts, list):
            return [*found, f"{name}: Values and Counts must both be arrays"]
        if len(values) != len(counts) or not 0 < len(values) <= MAX_VALUES:
            found.append(f"{name}: {len(values)} Values, {len(counts)} Counts (1-100, equal)")
        if not all(_number(v) for v in values):
            found.append(f"{name}: Values must be finite numbers")
        if not all(isinstance(c, int) and c > 0 for c in counts):
            found.append(f"{name}: Counts must be positive integers")
        elif sum(counts) != value.get("Count"):
            found.append(f"{name}: Counts add up to {sum(counts)}, Count is {value.get('Count')}")
        elif not found and not all(value["Min"] <= v <= value["Max"] for v in values):
            found.append(f"{name}: a value outside [Min, Max]")
    return found


def problems(doc: Any) -> list[str]:
    """Every rule of the module doc ``doc`` breaks (empty: a valid EMF record)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("_aws"), dict):
        return ["no _aws object"]
    aws = doc["_aws"]
    found: list[str] = []
    stamp = aws.get("Timestamp")
    if not isinstance(stamp, int) or isinstance(stamp, bool) or stamp < 0:
        found.append(f"_aws.Timestamp {stamp!r} is not milliseconds since the epoch")
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*found, "_aws.CloudWatchMetrics must be a non-empty array"]
    for directive in directives:
        found += _directive(doc, directive)
    return found


def _directive(doc: dict[str, Any], directive: Any) -> list[str]:
    if not isinstance(directive, dict):
        return ["a metric directive must be an object"]
    found: list[str] = []
    namespace = directive.get("Namespace")
    if not isinstance(namespace, str) or not NAMESPACE.fullmatch(namespace):
        found.append(f"Namespace {namespace!r}")
    dimension_sets = directive.get("Dimensions")
    if not isinstance(dimension_sets, list):
        return [*found, "Dimensions must be an array of dimension sets"]
    keys: set[str] = set()
    for dimension_set in dimension_sets:
        if not isinstance(dimension_set, list) or len(dimension_set) > MAX_DIMENSIONS:
            found.append(f"a dimension set of more than {MAX_DIMENSIONS} keys, or not an array")
            continue
        for key in dimension_set:
            keys.add(key)
            value = doc.get(key)
            ok_name = isinstance(key, str) and 0 < len(key) <= 250 and key.isascii()
            if not ok_name or key.startswith(":") or not key.strip():
                found.append(f"dimension name {key!r}")
            if not isinstance(value, str) or not 0 < len(value) <= 1024 or not value.strip():
                found.append(f"dimension {key!r}: value {value!r:.60} is not a 1-1024 string")
            elif not value.isascii():
                found.append(f"dimension {key!r}: value {value!r:.60} is not ASCII")
    metrics = directive.get("Metrics")
    if not isinstance(metrics, list) or len(metrics) > MAX_METRICS:
        return [*found, f"Metrics must be an array of at most {MAX_METRICS}"]
    names = [m.get("Name") if isinstance(m, dict) else None for m in metrics]
    if len(set(names)) != len(names):
        found.append("a metric defined twice in one directive")
    for definition, name in zip(metrics, names, strict=True):
        if not isinstance(name, str) or not 0 < len(name) <= 1024:
            found.append(f"metric name {name!r}")
            continue
        if name in keys:
            found.append(f"{name} is both a dimension and a metric")
        if "Unit" in definition and definition["Unit"] not in UNITS:
            found.append(f"{name}: unit {definition['Unit']!r}")
        if definition.get("StorageResolution", 60) not in (1, 60):
            found.append(f"{name}: StorageResolution {definition['StorageResolution']!r}")
        if name not in doc:
            found.append(f"metric {name} has no member")
        else:
            found += value_problems(name, doc[name])
    return found


def metrics(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, str], Any]]:
    """What CloudWatch extracts: ``(namespace, metric, dimensions, value)`` per dimension set."""
    out = []
    for directive in doc["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            dims = {k: doc[k] for k in dimension_set}
            out += [(directive["Namespace"], m["Name"], dims, doc[m["Name"]])
                    for m in directive["Metrics"]]  # fmt: skip
    return out
