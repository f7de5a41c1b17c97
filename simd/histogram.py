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

from simd.events import ACKED, NULL_NS, PUBLISH, SENT

SUB_BITS = 10  # mantissa bits per bucket: 1,024 buckets per power of two
_BASE = 1023 << SUB_BITS  # the bucket bits of 1.0
BUCKETS = 1 + (64 << SUB_BITS)  # bucket 0, then every value in [1, 2^64)
METRICS = ("latency_intended", "latency_sent", "schedule_lag")


SERIES_SUB_BITS = 6  # over time: 64 buckets per power of two (1.6 % wide, within 0.8 %)
SERIES_WINDOWS = 720  # a run's time axis is cut in at most this many windows
_NICE_WINDOWS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)


def bucket_of(v: np.ndarray, sub_bits: int = SUB_BITS) -> np.ndarray:
    """Bucket index per value (int64 ns): 0 for v <= 0, else 1 + (float bits above the tail)."""
    bits = np.maximum(v, 1).astype(np.float64).view(np.int64) >> (52 - sub_bits)
    return np.where(v > 0, bits - ((1023 << sub_bits) - 1), 0)


def series_window_ns(duration_ns: int) -> int:
    """The width of one point on a run's time axis: 1 s, or the smallest round width that
    keeps a run within SERIES_WINDOWS points (a 2 h run: 10 s; a day: 2 min)."""
    for w in _NICE_WINDOWS_S:
        if duration_ns <= w * SERIES_WINDOWS * 1_000_000_000:
            return w * 1_000_000_000
    return -(-duration_ns // SERIES_WINDOWS)


def bucket_value(b: np.ndarray) -> np.ndarray:
    """The midpoint of each bucket (analysis/views.sql computes the same in SQL)."""
    e, m = np.divmod(np.asarray(b, dtype=np.int64) - 1, 1 << SUB_BITS)
    return np.where(b > 0, np.exp2(e) * (1.0 + (m + 0.5) / (1 << SUB_BITS)), 0.0)


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

    def add(self, cols: dict[str, np.ndarray], grp: np.ndarray) -> None:
        """Count one batch of event columns; `grp` is each row's group index."""
        kind, status = cols["kind"], cols["status"]
        t_int, t_sent, t_done = cols["t_intended"], cols["t_sent"], cols["t_done"]
        pair = grp.astype(np.int64) * 256 + cols["phase"]
        if len(pair) == 0:
            return
        lo, hi = int(pair.min()), int(pair.max())
        pairs = np.array([lo]) if lo == hi else np.nonzero(np.bincount(pair - lo))[0] + lo
        single = len(pairs) == 1
        pub = kind == PUBLISH
        completed = pub & ((status == ACKED) | (status == SENT)) & (t_done != NULL_NS)
        left = pub & (t_sent != NULL_NS)
        for metric, mask, a, b in (
            (0, completed, t_done, t_int),
            (1, completed, t_done, t_sent),
            (2, left, t_sent, t_int),
        ):
            if not mask.any():
                continue
            v = a[mask] - b[mask]
            buckets = bucket_of(v)
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


class SeriesHistograms:
    """Per time window (of intended send time) and metric: coarse log buckets, for percentiles
    over time. Rows come out as (window, metric, bucket, count), nonzero only."""

    _KEY_BITS = 13  # room for every series bucket: 1 + 64 * 64 < 2^13

    def __init__(self, window_ns: int) -> None:
        self.window_ns = window_ns
        self.keys: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []

    def add(self, cols: dict[str, np.ndarray]) -> None:
        kind, status = cols["kind"], cols["status"]
        t_int, t_sent, t_done = cols["t_intended"], cols["t_sent"], cols["t_done"]
        pub = (kind == PUBLISH) & (t_int != NULL_NS)
        completed = pub & ((status == ACKED) | (status == SENT)) & (t_done != NULL_NS)
        left = pub & (t_sent != NULL_NS)
        parts = []
        for metric, mask, a, b in (
            (0, completed, t_done, t_int),
            (1, completed, t_done, t_sent),
            (2, left, t_sent, t_int),
        ):
            if mask.any():
                w = t_int[mask] // self.window_ns
                c = bucket_of(a[mask] - b[mask], SERIES_SUB_BITS)
                parts.append(((w * 3 + metric) << self._KEY_BITS) | c)
        if not parts:
            return
        keys = np.concatenate(parts)
        lo, hi = int(keys.min()), int(keys.max())
        if hi - lo < 1 << 22:  # a frame spans few windows: count densely
            dense = np.bincount(keys - lo)
            nz = np.nonzero(dense)[0]
            self.keys.append(nz + lo)
            self.counts.append(dense[nz])
        else:
            k, n = np.unique(keys, return_counts=True)
            self.keys.append(k)
            self.counts.append(n)

    def rows(self) -> dict[str, np.ndarray]:
        if self.keys:
            k, inv = np.unique(np.concatenate(self.keys), return_inverse=True)
            n = np.bincount(inv, weights=np.concatenate(self.counts)).astype(np.int64)
        else:
            k = n = np.zeros(0, dtype=np.int64)
        wm = k >> self._KEY_BITS
        return {
            "window": wm // 3,
            "metric": (wm % 3).astype(np.uint8),
            "bucket": (k & ((1 << self._KEY_BITS) - 1)).astype(np.int32),
            "count": n,
        }
