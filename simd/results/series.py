"""Tallies over a run's time axis and per topic, accumulated at ingest so that reports cost
O(windows x buckets), not scans of the events (the report over 100M events has a 10 s budget).

The time axis is cut in windows of intended send time, `series_window_ns(duration)` wide
(simd.plan.schedule: at most SERIES_WINDOWS of them). Per window: publish rows by final status
with their bytes, exact
maxima of latency (from intended, from sent) and schedule lag, coarse latency histograms (64
buckets per power of two: a percentile read back is within 0.8 %), and failed rows by status
and error code. Failed rows of every kind by (kind, status, error code), with their first and
last send time (errors_by_kind). Per (group, message): rows by status with bytes, a coarse
latency histogram and the exact maximum. Like the histograms in simd.results.histograms, every
tally adds: incremental ingest appends partial ones and the views in analysis/views.sql sum them.
"""

from __future__ import annotations

import numpy as np

from simd.log.events import FAILED_STATUSES, NULL_NS
from simd.results.histograms import SUB_BITS, FrameMetrics

SERIES_SUB_BITS = 6  # 64 buckets per power of two
_BUCKET_BITS = 13  # room for every coarse bucket: 1 + 64 * 64 < 2^13
# a coarse bucket is a fine one (simd.results.histograms) without its low mantissa bits: fine
# b > 0 maps to ((b - 1) >> 4) + 1, exactly the bucket bucket_of(v, SERIES_SUB_BITS) gives
_FINE_PER_COARSE_BITS = SUB_BITS - SERIES_SUB_BITS
_MIN = np.iinfo(np.int64).min
_MAX = np.iinfo(np.int64).max


class SparseCounts:
    """Counts (and optional sums) per key (major << minor_bits | minor). Each add counts densely
    over the span the frame actually covers in both parts (a frame spans few windows and a
    few hundred buckets), the parts merged once at the end."""

    def __init__(self, minor_bits: int = 0) -> None:
        self.minor_bits = minor_bits
        self.keys: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.sums: list[np.ndarray] = []

    def add(
        self, major: np.ndarray, minor: np.ndarray | None = None, sums: np.ndarray | None = None
    ) -> None:
        if len(major) == 0:
            return
        a0 = int(major.min())
        if minor is None:
            b0, nb, local = 0, 1, major - a0
        else:
            b0 = int(minor.min())
            nb = int(minor.max()) - b0 + 1
            local = (major - a0) * nb + (minor - b0)
        span = int(local.max()) + 1
        if span <= 1 << 22:
            n = np.bincount(local, minlength=span)
            nz = np.nonzero(n)[0]
            counts = n[nz]
            s = None if sums is None else np.bincount(local, weights=sums)[nz]
        else:
            nz, inv, counts = np.unique(local, return_inverse=True, return_counts=True)
            s = None if sums is None else np.bincount(inv, weights=sums)
        self.keys.append(((nz // nb + a0) << self.minor_bits) | (nz % nb + b0))
        self.counts.append(counts)
        if s is not None:
            self.sums.append(s)

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(keys, counts, sums), keys unique and ascending."""
        if not self.keys:
            z = np.zeros(0, dtype=np.int64)
            return z, z, z
        k, inv = np.unique(np.concatenate(self.keys), return_inverse=True)
        n = np.bincount(inv, weights=np.concatenate(self.counts)).astype(np.int64)
        s = (
            np.bincount(inv, weights=np.concatenate(self.sums)).astype(np.int64)
            if self.sums
            else np.zeros(len(k), dtype=np.int64)
        )
        return k, n, s


class Maxima:
    """Exact maximum per small non-negative key, grown as keys appear."""

    def __init__(self) -> None:
        self.max = np.full(0, _MIN, dtype=np.int64)

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        if len(keys) == 0:
            return
        top = int(keys.max()) + 1
        if top > len(self.max):
            grown = np.full(max(top, 2 * len(self.max)), _MIN, dtype=np.int64)
            grown[: len(self.max)] = self.max
            self.max = grown
        np.maximum.at(self.max, keys, values)

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        k = np.nonzero(self.max != _MIN)[0]
        return k, self.max[k]


class FailureTotals:
    """Failed rows of every kind per (kind, status, error code): how many, and the first and last
    send time among those sent (_MAX / _MIN when none was)."""

    def __init__(self) -> None:
        self.totals: dict[int, tuple[int, int, int]] = {}

    def add(self, cols: dict[str, np.ndarray], failed: np.ndarray) -> None:
        """Count the rows of `cols` where `failed` (a mask of FAILED_STATUSES) is set."""
        if not failed.any():
            return
        kind = cols["kind"][failed].astype(np.int64)
        key = (kind * 8 + cols["status"][failed]) << 16 | cols["error"][failed]
        keys, inv = np.unique(key, return_inverse=True)
        n = np.bincount(inv, minlength=len(keys))
        t = cols["t_sent"][failed]
        sent = t != NULL_NS
        first = np.full(len(keys), _MAX, dtype=np.int64)
        last = np.full(len(keys), _MIN, dtype=np.int64)
        np.minimum.at(first, inv[sent], t[sent])
        np.maximum.at(last, inv[sent], t[sent])
        for k, c, lo, hi in zip(
            keys.tolist(), n.tolist(), first.tolist(), last.tolist(), strict=True
        ):
            had = self.totals.get(k)
            if had is not None:
                c, lo, hi = c + had[0], min(lo, had[1]), max(hi, had[2])
            self.totals[k] = (c, lo, hi)

    def rows(self, worker: int) -> dict[str, np.ndarray]:
        """Columns of error_totals (analysis/schema.sql)."""
        k = np.array(list(self.totals), dtype=np.int64)
        c, lo, hi = np.array(list(self.totals.values()), dtype=np.int64).reshape(-1, 3).T
        ks = k >> 16
        return {
            "worker": np.full(len(k), worker, dtype=np.int32),
            "kind": (ks // 8).astype(np.uint8),
            "status": (ks % 8).astype(np.uint8),
            "error": (k & 0xFFFF).astype(np.uint16),
            "count": c,
            "first_ns": lo,
            "last_ns": hi,
        }


class Tallies:
    """Everything the series and topic views need from one segment's frames."""

    def __init__(self, window_ns: int, worker: int) -> None:
        self.window_ns = window_ns
        self.worker = worker  # error codes are per worker (simd.log.events.ErrorTable)
        self.status = SparseCounts()  # window * 8 + status -> publishes, bytes
        self.hist = SparseCounts(_BUCKET_BITS)  # (window * 3 + metric) << 13 | bucket
        self.maxima = Maxima()  # window * 3 + metric
        self.errors = SparseCounts(16)  # (window * 8 + status) << 16 | error code
        self.topic_status = SparseCounts()  # (grp * 256 + message) * 8 + status -> rows, bytes
        self.topic_hist = SparseCounts(_BUCKET_BITS)  # (grp * 256 + message) << 13 | bucket
        self.topic_max = Maxima()  # grp * 256 + message
        self.failures = FailureTotals()  # rows of every kind, not only publishes

    def add(self, cols: dict[str, np.ndarray], grp: np.ndarray, fm: FrameMetrics) -> None:
        """Count one batch of event columns; `grp` is each row's group index (-1: none);
        `fm` its metrics (simd.results.histograms.frame_metrics)."""
        failed = np.isin(cols["status"], FAILED_STATUSES)
        self.failures.add(cols, failed)
        t_int = cols["t_intended"]
        pub = fm.pub & (t_int != NULL_NS) & (grp >= 0)
        if not pub.any():
            return
        every = bool(pub.all())  # the usual frame: no copies

        def rows(a: np.ndarray) -> np.ndarray:
            return a if every else a[pub]

        w_all = np.maximum(t_int // self.window_ns, 0)
        topic_all = grp.astype(np.int64) * 256 + cols["message"]
        status = rows(cols["status"]).astype(np.int64)
        w, topic = rows(w_all), rows(topic_all)
        nbytes = rows(cols["bytes"]).astype(np.float64)
        self.status.add(w * 8 + status, sums=nbytes)
        self.topic_status.add(topic * 8 + status, sums=nbytes)
        keys, buckets = [], []
        for metric, mask, v, fine in fm.metrics:
            key = w_all[mask] * 3 + metric
            coarse = np.where(fine > 0, ((fine - 1) >> _FINE_PER_COARSE_BITS) + 1, 0)
            keys.append(key)
            buckets.append(coarse)
            self.maxima.add(key, v)
            if metric == 0:
                self.topic_hist.add(topic_all[mask], coarse)
                self.topic_max.add(topic_all[mask], v)
        if keys:
            self.hist.add(np.concatenate(keys), np.concatenate(buckets))
        bad = rows(failed)
        if bad.any():
            err = rows(cols["error"])[bad].astype(np.int64)
            self.errors.add(w[bad] * 8 + status[bad], err)

    def rows(self) -> dict[str, dict[str, np.ndarray]]:
        """Table name -> columns, for the tables of the same names in analysis/schema.sql."""
        k, n, s = self.status.rows()
        series_counts = {
            "window": k // 8,
            "status": (k % 8).astype(np.uint8),
            "count": n,
            "bytes": s,
        }
        k, n, _ = self.hist.rows()
        wm = k >> _BUCKET_BITS
        series_hist = {
            "window": wm // 3,
            "metric": (wm % 3).astype(np.uint8),
            "bucket": (k & ((1 << _BUCKET_BITS) - 1)).astype(np.int32),
            "count": n,
        }
        k, m = self.maxima.rows()
        series_max = {"window": k // 3, "metric": (k % 3).astype(np.uint8), "max_ns": m}
        k, n, _ = self.errors.rows()
        ws = k >> 16
        series_errors = {
            "window": ws // 8,
            "status": (ws % 8).astype(np.uint8),
            "worker": np.full(len(k), self.worker, dtype=np.int32),
            "error": (k & 0xFFFF).astype(np.uint16),
            "count": n,
        }
        k, n, s = self.topic_status.rows()
        t = k // 8
        topic_counts = {
            "grp": (t // 256).astype(np.int16),
            "message": (t % 256).astype(np.uint8),
            "status": (k % 8).astype(np.uint8),
            "count": n,
            "bytes": s,
        }
        k, n, _ = self.topic_hist.rows()
        t = k >> _BUCKET_BITS
        topic_hist = {
            "grp": (t // 256).astype(np.int16),
            "message": (t % 256).astype(np.uint8),
            "bucket": (k & ((1 << _BUCKET_BITS) - 1)).astype(np.int32),
            "count": n,
        }
        k, m = self.topic_max.rows()
        topic_max = {
            "grp": (k // 256).astype(np.int16),
            "message": (k % 256).astype(np.uint8),
            "max_ns": m,
        }
        return {
            "series_counts": series_counts,
            "series_hist": series_hist,
            "series_max": series_max,
            "series_error_counts": series_errors,
            "topic_counts": topic_counts,
            "topic_hist": topic_hist,
            "topic_max": topic_max,
            "error_totals": self.failures.rows(self.worker),
        }
