"""The tamper-evident audit trail: hash-chained, append-only JSON lines (docs/audit.md).

``config`` (``AuditConfig``), ``trail`` (``AuditTrail``: writing), ``verify`` (checking),
``reader`` (paging for ``GET /audit``), ``command`` (``otelgate audit verify``), ``chain``
(the entry format and links).
"""
