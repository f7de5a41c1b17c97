"""Log-bucketed latency histograms, accumulated at ingest so reports stay O(buckets).

A value v (ns) falls in bucket 0 when v <= 0; else its bucket is read off the bits of v as a
float64: the binary exponent and the top 10 bits of the mantissa (HdrHistogram's scheme,
with no logarithm). Buckets are at most 2^-10 (0.098 %) wide, so a percentile read back as a
bucket's midpoint is within 0.05 % of the exact value. Maxima are kept exactly. Histograms
add: incremental ingest appends partial ones and the views sum them. (HdrHistogram makes the
same trade: fixed relative precision, O(1) merge.)

Metrics: 0 latency from intended send time, 1 latency from actual send time (both over
completed publishes: acked or sent), 2 schedule lag (actual minus intended, over publishes that
left the generator).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simd.log.events import ACKED, NULL_NS, PUBLISH, SENT

SUB_BITS = 10  # mantissa bits per bucket: 1,024 buckets per power of two
_BASE = 1023 << SUB_BITS  # the bucket bits of 1.0
BUCKETS = 1 + (64 << SUB_BITS)  # bucket 0, then every value in [1, 2^64)
METRICS = ("latency_intended", "latency_sent", "schedule_lag")


def bucket_of(v: np.ndarray, sub_bits: int = SUB_BITS) -> np.ndarray:
    """Bucket index per value (int64 ns): 0 for v <= 0, else 1 + (float bits above the tail)."""
    bits = np.maximum(v, 1).astype(np.float64).view(np.int64) >> (52 - sub_bits)
    return np.where(v > 0, bits - ((1023 << sub_bits) - 1), 0)


def bucket_value(b: np.ndarray) -> np.ndarray:
    """The midpoint of each bucket (analysis/views.sql computes the same in SQL)."""
    e, m = np.divmod(np.asarray(b, dtype=np.int64) - 1, 1 << SUB_BITS)
    return np.where(b > 0, np.exp2(e) * (1.0 + (m + 0.5) / (1 << SUB_BITS)), 0.0)


@dataclass
class FrameMetrics:
    """The metrics of one batch, computed once for every tally that reads them (this module's
    histograms and simd.results.series): per metric, the rows it covers, their values, fine
    buckets."""

    pub: np.ndarray  # publish rows
    metrics: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]  # (metric, mask, v, bucket)


def frame_metrics(cols: dict[str, np.ndarray]) -> FrameMetrics:
    kind, status = cols["kind"], cols["status"]
    t_int, t_sent, t_done = cols["t_intended"], cols["t_sent"], cols["t_done"]
    pub = kind == PUBLISH
    completed = pub & ((status == ACKED) | (status == SENT)) & (t_done != NULL_NS)
    left = pub & (t_sent != NULL_NS)
    out = []
    for metric, mask, a, b in (
        (0, completed, t_done, t_int),
        (1, completed, t_done, t_sent),
        (2, left, t_sent, t_int),
    ):
        if mask.any():
            v = a[mask] - b[mask]
            out.append((metric, mask, v, bucket_of(v)))
    return FrameMetrics(pub, out)


@dataclass
class HistRows:
    """Rows for latency_hist, latency_max and status_totals, as column arrays."""

    hist: dict[str, np.ndarray]
    maxima: dict[str, np.ndarray]
    status: dict[str, np.ndarray]


class Histograms:
    """Dense per-(group, phase, metric) bucket counts, added to frame by frame, emitted as rows."""

    def __init__(self) -> None:
        self.counts: dict[tuple[int, int], np.ndarray] = {}
        # bucket arrays not yet counted: one bincount per ~4M values, not one per frame
        self.pending: dict[tuple[int, int], list[np.ndarray]] = {}
        self.pending_n = 0
        self.maxima: dict[tuple[int, int], int] = {}
        self.status: dict[tuple[int, int, int], int] = {}

    def add(
        self, cols: dict[str, np.ndarray], grp: np.ndarray, fm: FrameMetrics | None = None
    ) -> None:
        """Count one batch of event columns; `grp` is each row's group index."""
        kind, status = cols["kind"], cols["status"]
        pair = grp.astype(np.int64) * 256 + cols["phase"]
        if len(pair) == 0:
            return
        fm = fm or frame_metrics(cols)
        lo, hi = int(pair.min()), int(pair.max())
        pairs = np.array([lo]) if lo == hi else np.nonzero(np.bincount(pair - lo))[0] + lo
        single = len(pairs) == 1
        for metric, mask, v, buckets in fm.metrics:
            p = None if single else pair[mask]
            for pk in pairs.tolist():
                sel = slice(None) if p is None else (p == pk)
                bv = buckets[sel]
                if len(bv) == 0:
                    continue
                key = (pk, metric)
                self.pending.setdefault(key, []).append(bv)
                self.pending_n += len(bv)
                self.maxima[key] = max(self.maxima.get(key, _MIN), int(v[sel].max()))
        if self.pending_n >= 4_000_000:
            self._count()
        skey = ((pair - lo) * 8 + kind) * 8 + status
        sc = np.bincount(skey)
        for k in np.nonzero(sc)[0].tolist():
            t = (k // 64 + lo, k // 8 % 8, k % 8)
            self.status[t] = self.status.get(t, 0) + int(sc[k])

    def _count(self) -> None:
        for key, parts in self.pending.items():
            counts = self.counts.get(key)
            if counts is None:
                counts = self.counts[key] = np.zeros(BUCKETS, dtype=np.int64)
            counts += np.bincount(np.concatenate(parts), minlength=BUCKETS)
        self.pending = {}
        self.pending_n = 0

    def rows(self) -> HistRows:
        """Everything counted so far as table rows (nonzero buckets only)."""
        self._count()
        hist: dict[str, list[np.ndarray]] = {"pair": [], "metric": [], "bucket": [], "count": []}
        for (pk, metric), counts in self.counts.items():
            nz = np.nonzero(counts)[0]
            hist["pair"].append(np.full(len(nz), pk))
            hist["metric"].append(np.full(len(nz), metric))
            hist["bucket"].append(nz)
            hist["count"].append(counts[nz])
        h = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in hist.items()}
        mk = list(self.maxima)
        sk = list(self.status)
        return HistRows(
            hist=_by_pair(h),
            maxima=_by_pair(
                {
                    "pair": np.array([k[0] for k in mk], dtype=np.int64),
                    "metric": np.array([k[1] for k in mk], dtype=np.int64),
                    "max_ns": np.array([self.maxima[k] for k in mk], dtype=np.int64),
                }
            ),
            status=_by_pair(
                {
                    "pair": np.array([k[0] for k in sk], dtype=np.int64),
                    "kind": np.array([k[1] for k in sk], dtype=np.uint8),
                    "status": np.array([k[2] for k in sk], dtype=np.uint8),
                    "count": np.array([self.status[k] for k in sk], dtype=np.int64),
                }
            ),
        )


_MIN = int(np.iinfo(np.int64).min)


def _by_pair(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    pair = cols.pop("pair").astype(np.int64)
    return {"grp": (pair // 256).astype(np.int16), "phase": (pair % 256).astype(np.uint8), **cols}
