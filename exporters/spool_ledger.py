"""The disk spool's books: which segments are live and what each of them holds.

Memory keeps a few counters per segment and for the whole spool (bytes on disk, records not
yet read, records and items not yet acknowledged), never the records. The ledger places a
group commit in segments (a new one when the next record would pass ``segment_bytes``),
counts what a write synced, what reading handed out or passed over and what was
acknowledged, and retires a segment once it is sealed and read and acknowledged to the end.
It touches no file: :class:`exporters.spool.Spool` does the I/O, and ``schedule`` hands it
each ack to record and each retired segment to delete. Losses found while reading are logged
here and passed on through ``report_lost`` and ``report_unreadable``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from exporters.spool_files import OVERHEAD, Recovery, Segment, segment_path
from exporters.spool_io import Acked, Damaged, Outcome, Pending, Plan, Record, Unreadable
from gateway.otlp.batch import Signal

log = logging.getLogger("otelgate.spool")


class Ledger:
    """The live segments and the spool's counters (see module doc)."""

    def __init__(
        self,
        directory: Path,
        *,
        schedule: Callable[[Segment, int], None],
        report_lost: Callable[[Signal, int], None],
        report_unreadable: Callable[[Signal, int, str], None],
    ) -> None:
        self.directory = directory
        self.schedule = schedule  # (segment, offset of an acked record, or -1: retire it)
        self.report_lost = report_lost  # (signal, items) lost to damage found while reading
        self.report_unreadable = report_unreadable  # (signal, items, why) of a bad record
        self.segments: list[Segment] = []
        self.active: Segment | None = None
        self.next_id = 1
        self.bytes = 0  # of the live segment files
        self.unread_records = self.unacked_records = self.unacked_items = 0

    def restore(self, segments: list[Segment], report: Recovery, next_id: int) -> None:
        """Start from what the start-up check of the directory found."""
        self.segments = segments
        self.next_id = next_id
        self.bytes = report.bytes
        self.unread_records = self.unacked_records = report.records
        self.unacked_items = sum(report.items.values())

    # --- writing -----------------------------------------------------------------------------

    def place(self, group: list[Pending], segment_bytes: int) -> Plan:
        """Where each record of a group commit goes (rolling to new segments as needed)."""
        plan: Plan = []
        for pending in group:
            size = OVERHEAD + len(pending.payload)
            seg = self.active
            if seg is None or (seg.planned and seg.planned + size > segment_bytes):
                if seg is not None:
                    self.seal(seg)
                seg = self.active = Segment(
                    self.next_id, segment_path(self.directory, self.next_id)
                )
                self.next_id += 1
                self.segments.append(seg)
            if not plan or plan[-1][0] is not seg:
                plan.append((seg, seg.planned, []))
            plan[-1][2].append(pending)
            seg.planned += size
        return plan

    def commit(self, plan: Plan) -> None:
        """Count the records of a group commit that was written and synced."""
        for seg, offset, records in plan:
            end = offset + sum(OVERHEAD + len(r.payload) for r in records)
            self.bytes += end - seg.size
            seg.size = end
            seg.records += len(records)
            seg.unread_records += len(records)
            for r in records:
                seg.unread[r.signal] = seg.unread.get(r.signal, 0) + r.items
                self.unacked_items += r.items
            self.unread_records += len(records)
            self.unacked_records += len(records)
            self._maybe_retire(seg)  # sealed meanwhile with everything already acknowledged

    def abort(self, plan: Plan) -> None:
        """After a failed write: keep what was synced, continue in a fresh segment."""
        for seg, _, _ in plan:
            seg.planned = seg.size
        if self.active is not None:
            self.seal(self.active)
        for seg, _, _ in plan:
            self._maybe_retire(seg)

    def seal(self, seg: Segment) -> None:
        """No more appends to ``seg``."""
        seg.sealed = True
        if self.active is seg:
            self.active = None
        self._maybe_retire(seg)

    # --- reading and acknowledging -----------------------------------------------------------

    def to_read(self) -> Segment | None:
        """The first segment with synced records not read yet."""
        return next((s for s in self.segments if s.read_pos < s.size), None)

    def hand_out(self, seg: Segment, record: Record) -> None:
        """``record`` was read from ``seg`` to be delivered."""
        seg.read_pos = record.end
        self._take(seg, record.batch.signal, record.batch.items)
        self._maybe_retire(seg)  # a damaged segment counts its losses at the end

    def _take(self, seg: Segment, signal: Signal, items: int) -> None:
        seg.unread_records -= 1
        seg.unread[signal] = seg.unread.get(signal, 0) - items
        self.unread_records -= 1

    def pass_over(self, seg: Segment, pos: int, outcome: Outcome) -> None:
        """Move past what is at ``pos`` that is not a batch to deliver."""
        if isinstance(outcome, Acked):  # acknowledged before the restart
            seg.read_pos = outcome.end
            seg.skip.discard(pos)
        elif isinstance(outcome, Unreadable):
            seg.read_pos = outcome.end
            self._take(seg, outcome.signal, outcome.items)
            why = (
                f"spool record at offset {pos} of {seg.path.name} cannot be decoded, "
                f"skipped: {outcome.error}"
            )
            log.error("spool %s: %d %s failed: %s", self.directory, outcome.items,
                      outcome.signal.value, why)  # fmt: skip
            self.finish(seg, pos, outcome.items)
            self.report_unreadable(outcome.signal, outcome.items, why)
        elif isinstance(outcome, Damaged):
            log.error(
                "spool %s: %s is damaged at offset %d; skipping %d byte(s) to the next intact "
                "record", self.directory, seg.path.name, pos, outcome.resume - pos,
            )  # fmt: skip
            seg.damaged = True  # quarantined once finished; no more appends to it
            seg.read_pos = outcome.resume
            self.seal(seg)
        self._maybe_retire(seg)

    def _lose_unread(self, seg: Segment) -> None:
        """A damaged segment read to its end: the records never read were in damaged bytes."""
        records = max(0, seg.unread_records)
        lost = {signal: n for signal, n in seg.unread.items() if n > 0}
        log.error(
            "spool %s: %d record(s) in the damaged part of %s are lost (%s)",
            self.directory, records, seg.path.name,
            ", ".join(f"{n} {s.value}" for s, n in lost.items()) or "no items",
        )  # fmt: skip
        seg.acked += records
        self.unread_records -= records
        self.unacked_records -= records
        self.unacked_items -= sum(lost.values())
        seg.unread_records, seg.unread = 0, {}
        for signal, items in lost.items():
            self.report_lost(signal, items)

    def finish(self, seg: Segment, offset: int, items: int) -> None:
        """The record at ``offset`` of ``seg`` was delivered (or failed for good)."""
        seg.acked += 1
        self.unacked_records -= 1
        self.unacked_items -= items
        self.schedule(seg, offset)
        self._maybe_retire(seg)

    def _maybe_retire(self, seg: Segment) -> None:
        """Drop a sealed, fully read and acknowledged segment; its files go in the background."""
        read = seg.read_pos >= seg.size and seg.planned == seg.size
        if seg.damaged and read and seg.unread_records:
            self._lose_unread(seg)
        if seg.sealed and read and seg.acked == seg.records and seg in self.segments:
            self.segments.remove(seg)
            self.bytes -= seg.size
            self.schedule(seg, -1)
