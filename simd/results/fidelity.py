"""Replay fidelity tallies, accumulated at ingest so `replay_fidelity` costs O(bins + buckets),
not a scan of the events (the report's 10 s budget over 100M events holds for replays too).

For every publish row of a replay group, the recorded message it plays is found by arithmetic
(simd.plan.replay: device -> source and copy, seq -> pass and rank) and its expected time
recomputed (`lead_in + rint((pass * period + offset) / speed)`, exactly as the scheduler does). Per
group: rows, sent, completed, payload size mismatches and the largest |intended - expected|; the
send offset (sent - expected) as a fine log histogram (simd.results.histograms: within 0.05 %) with
its exact maximum; and rows per second of recording time ((t - lead_in) * speed), by intended and
by sent time. Tallies add: incremental ingest appends partial rows and the views sum them. The
exact per-message picture stays in the `replay_messages` view.
"""

from __future__ import annotations

import numpy as np

from simd.log.events import ACKED, NULL_NS, PUBLISH, SENT
from simd.plan.replay import ReplayPlan
from simd.results.histograms import bucket_of
from simd.results.series import Maxima, SparseCounts

_BUCKET_BITS = 17  # fine buckets (1 + 64 * 1024) fit in 17 bits
_SECOND_BITS = 40  # recording seconds fit in 40 bits; the group index sits above


class ReplayTallies:
    """Everything replay_fidelity and replay_series need from one segment's frames."""

    def __init__(self, groups: list[tuple[int, int, ReplayPlan]]) -> None:
        self.groups = groups  # (group index, first device, plan)
        n = max((g for g, _, _ in groups), default=-1) + 1
        self.counts = np.zeros((n, 4), dtype=np.int64)  # replayed, sent, completed, size diffs
        self.intended_error = Maxima()
        self.offset_hist = SparseCounts(_BUCKET_BITS)
        self.offset_max = Maxima()
        self.bins = SparseCounts(1)  # (group << 40 | second) << 1 | (0 intended, 1 sent)

    def add(self, cols: dict[str, np.ndarray]) -> None:
        dev = cols["device"]
        pub = cols["kind"] == PUBLISH
        for gi, first, plan in self.groups:
            rows = np.nonzero(pub & (dev >= first) & (dev < first + plan.devices))[0]
            if len(rows):
                self._add_group(gi, first, plan, cols, rows)

    def _add_group(
        self, gi: int, first: int, plan: ReplayPlan, cols: dict[str, np.ndarray], rows: np.ndarray
    ) -> None:
        o = plan.options
        local = cols["device"][rows].astype(np.int64) - first
        seq = cols["seq"][rows].astype(np.int64)
        src = local % plan.sources
        n = plan.per_source[src]
        passes, rank = seq // n, seq % n
        msg = plan.by_source[plan.source_start[src] + rank]
        expected = o.lead_in + np.rint(
            (passes * plan.period_ns + plan.offset[msg]) / o.speed
        ).astype(np.int64)
        t_int = cols["t_intended"][rows]
        t_sent = cols["t_sent"][rows]
        sent = t_sent != NULL_NS
        status = cols["status"][rows]
        size_diff = sent & (cols["bytes"][rows] != plan.recording.payload.lengths[msg])
        c = self.counts[gi]
        c += [len(rows), int(sent.sum()), int(((status == ACKED) | (status == SENT)).sum()),
              int(size_diff.sum())]  # fmt: skip
        key = np.full(len(rows), gi, dtype=np.int64)
        self.intended_error.add(key[:1], np.abs(t_int - expected).max(keepdims=True))
        offset = t_sent[sent] - expected[sent]
        if len(offset):
            self.offset_hist.add(key[sent], bucket_of(offset))
            self.offset_max.add(key[:1], offset.max(keepdims=True))
        base = gi << _SECOND_BITS
        sec_int = np.maximum(np.floor((t_int - o.lead_in) * o.speed / 1e9), 0).astype(np.int64)
        self.bins.add(base + sec_int, np.zeros(len(sec_int), dtype=np.int64))
        if len(offset):
            sec_sent = np.floor((t_sent[sent] - o.lead_in) * o.speed / 1e9)
            sec_sent = np.maximum(sec_sent, 0).astype(np.int64)
            self.bins.add(base + sec_sent, np.ones(len(sec_sent), dtype=np.int64))

    def rows(self) -> dict[str, dict[str, np.ndarray]]:
        """Table name -> columns, for the replay_* tally tables in analysis/schema.sql."""
        g = np.nonzero(self.counts[:, 0])[0]
        k_err, v_err = self.intended_error.rows()
        err = dict(zip(k_err.tolist(), v_err.tolist(), strict=True))
        counts = {
            "group_index": g.astype(np.int16),
            "replayed": self.counts[g, 0],
            "sent": self.counts[g, 1],
            "completed": self.counts[g, 2],
            "size_mismatches": self.counts[g, 3],
            "intended_error_max_ns": np.array([err[int(x)] for x in g], dtype=np.int64),
        }
        k, n, _ = self.offset_hist.rows()
        hist = {
            "group_index": (k >> _BUCKET_BITS).astype(np.int16),
            "bucket": (k & ((1 << _BUCKET_BITS) - 1)).astype(np.int32),
            "count": n,
        }
        k, m = self.offset_max.rows()
        mx = {"group_index": k.astype(np.int16), "max_ns": m}
        k, n, _ = self.bins.rows()
        gs = k >> 1
        bins = {
            "group_index": (gs >> _SECOND_BITS).astype(np.int16),
            "second": (gs & ((1 << _SECOND_BITS) - 1)),
            "by_sent": (k & 1).astype(bool),
            "count": n,
        }
        return {
            "replay_counts": counts,
            "replay_offset_hist": hist,
            "replay_offset_max": mx,
            "replay_bins": bins,
        }
