"""The tamper-evident audit trail: hash-chained, append-only JSON lines (docs/audit.md).

``config`` (``AuditConfig``), ``trail`` (``AuditTrail``: the API), ``writer`` (the active file:
appending, resuming, rotating), ``upkeep`` and ``retention`` (gzip, removal, rotation status),
``files`` (names, reading plain and ``.gz`` members), ``verify`` (checking), ``reader``
(paging for ``GET /audit``), ``command`` (``otelgate audit verify``), ``chain`` (the entry
format and links).
"""
