"""What a worker tells its supervisor while it runs: cumulative counts per group, message (an
HTTP run's request name) and status, a cumulative latency histogram per group (Prometheus
buckets), counts per phase and status, failed rows per error text, and the last interval's
latency quantiles (from intended and from sent time). Fed frame by frame from the rows the
worker logs (never per message), so a worker that restarts rebuilds the same counters by
feeding its own log back in (simd.runtime.resume).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simd.log.events import (
    ACKED,
    COMPLETED_STATUSES,
    FAILED_STATUSES,
    KINDS,
    NULL_NS,
    PUBLISH,
    SENT,
    STATUSES,
)

# upper bounds of the latency buckets (from intended send time), seconds; +Inf follows
LATENCY_BOUNDS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BOUNDS_NS = np.array([round(b * 1e9) for b in LATENCY_BOUNDS_S], dtype=np.int64)
_NB = len(LATENCY_BOUNDS_S) + 1
_NS = len(STATUSES)
# what take_interval returns, in order (ns): from intended, then from actual send time
INTERVAL_QUANTILES = ("p50", "p95", "p99", "max", "sent_p50", "sent_p99", "sent_max")
_FAILED_LO, _FAILED_HI = min(FAILED_STATUSES), max(FAILED_STATUSES)  # a contiguous range
INTERVAL_SAMPLE = 200_000  # latencies kept per interval for its percentiles (a prefix beyond)
JOINT_BINS = 8192  # (group, message, phase, status) counted in one bincount up to this many


class LiveStats:
    """Counters over the rows of one slice [lo, hi) of the fleet."""

    def __init__(
        self,
        group_of: np.ndarray,
        lo: int,
        n_groups: int,
        n_messages: int = 1,
        n_phases: int = 1,
    ) -> None:
        self.group_of = group_of.astype(np.int64)  # group index per device of the slice
        self.lo = lo
        self.hi = lo + len(group_of)
        self.n_groups = n_groups
        self.n_messages = max(1, n_messages)  # the most messages any group has
        # [group][message][status] publish rows
        self.by_message = np.zeros((n_groups, self.n_messages, _NS), dtype=np.int64)
        self.buckets = np.zeros((n_groups, _NB), dtype=np.int64)  # not cumulative across le
        self.message_latency_sum_ns = np.zeros((n_groups, self.n_messages), dtype=np.float64)
        self.n_phases = max(1, n_phases)
        self.by_phase = np.zeros((self.n_phases, _NS), dtype=np.int64)  # [phase][status]
        self.error_codes: dict[int, int] = {}  # failed publish rows by error code
        # [kind][status] rows of the other kinds (connect, receive, command, reply, ...)
        self.by_kind = np.zeros((len(KINDS), _NS), dtype=np.int64)
        self._interval: list[np.ndarray] = []  # latency from intended send time
        self._interval_sent: list[np.ndarray] = []  # ... and from actual send time
        self._interval_n = 0

    _COUNTERS = ("by_message", "buckets", "message_latency_sum_ns", "by_phase", "by_kind")

    def snapshot(self) -> dict[str, Any]:
        """The counters so far (a worker's checkpoint); the interval samples are left out."""
        out: dict[str, Any] = {name: getattr(self, name).copy() for name in self._COUNTERS}
        out["error_codes"] = dict(self.error_codes)
        return out

    def restore(self, snap: dict[str, Any]) -> None:
        """Counters from a `snapshot` of the same slice's stats (ValueError otherwise)."""
        for name in self._COUNTERS:
            if snap[name].shape != getattr(self, name).shape:
                raise ValueError(f"live counters of another shape ({name})")
        for name in self._COUNTERS:
            setattr(self, name, snap[name].copy())
        self.error_codes = {int(k): int(v) for k, v in snap["error_codes"].items()}

    def observe(self, cols: dict[str, np.ndarray], n: int) -> None:
        """Count the publish rows of one frame (n rows of `cols`)."""
        if n == 0:  # a flush with nothing but samples or error texts
            return
        dev = cols["device"][:n]
        kind = cols["kind"][:n]
        pub = kind == PUBLISH
        other = ~pub
        if other.any():  # few: connects, probes' receives, commands and replies
            kk = np.minimum(kind[other].astype(np.int64), len(KINDS) - 1)
            k = kk * _NS + np.minimum(cols["status"][:n][other].astype(np.int64), _NS - 1)
            self.by_kind += np.bincount(k, minlength=self.by_kind.size).reshape(self.by_kind.shape)
        pub &= (dev >= self.lo) & (dev < self.hi)
        if pub.all():  # the usual frame: every row a publish of this slice, no copies

            def col(name: str) -> np.ndarray:
                return cols[name][:n]
        else:
            if not pub.any():
                return
            rows = np.flatnonzero(pub)

            def col(name: str) -> np.ndarray:
                return cols[name].take(rows)

        g = self.group_of[col("device") - self.lo]
        st = col("status").astype(np.int64)
        m = col("message").astype(np.int64)
        ph = col("phase").astype(np.int64)
        if m.max() >= self.n_messages or ph.max() >= self.n_phases:  # a damaged log's rows
            m = np.minimum(m, self.n_messages - 1)
            ph = np.minimum(ph, self.n_phases - 1)
        per_status = self._count(g * self.n_messages + m, ph, st)
        if per_status[_FAILED_LO : _FAILED_HI + 1].any():  # rare: then by error text
            self._count_errors(col("error")[(st >= _FAILED_LO) & (st <= _FAILED_HI)])
        if not per_status[list(COMPLETED_STATUSES)].any():
            return
        t_done = col("t_done")
        done = ((st == ACKED) | (st == SENT)) & (t_done != NULL_NS)
        if done.all():
            t_int, t_sent = col("t_intended"), col("t_sent")
        else:
            if not done.any():
                return
            t_done, t_int, t_sent = t_done[done], col("t_intended")[done], col("t_sent")[done]
            g, m = g[done], m[done]
        lat = t_done - t_int
        b = np.searchsorted(_BOUNDS_NS, lat, side="left")  # first bound >= latency
        self.buckets += np.bincount(g * _NB + b, minlength=self.n_groups * _NB).reshape(
            self.n_groups, _NB
        )
        self.message_latency_sum_ns += np.bincount(
            g * self.n_messages + m, weights=lat, minlength=self.message_latency_sum_ns.size
        ).reshape(self.message_latency_sum_ns.shape)
        if self._interval_n < INTERVAL_SAMPLE:
            k = INTERVAL_SAMPLE - self._interval_n
            self._interval.append(lat[:k])
            self._interval_sent.append(t_done[:k] - t_sent[:k])
            self._interval_n += len(self._interval[-1])

    def _count_errors(self, codes: np.ndarray) -> None:
        if (codes == codes[0]).all():  # the usual case: one reason at a time
            c = int(codes[0])
            self.error_codes[c] = self.error_codes.get(c, 0) + len(codes)
            return
        uniq, k = np.unique(codes, return_counts=True)
        for c, v in zip(uniq.tolist(), k.tolist(), strict=True):
            self.error_codes[c] = self.error_codes.get(c, 0) + v

    def _count(self, gm: np.ndarray, ph: np.ndarray, st: np.ndarray) -> np.ndarray:
        """Add rows to by_message and by_phase (one bincount over both when they are small
        together); the rows per status."""
        n_gm = self.n_groups * self.n_messages
        if n_gm * self.n_phases * _NS <= JOINT_BINS:
            joint = np.bincount(
                (gm * self.n_phases + ph) * _NS + st, minlength=n_gm * self.n_phases * _NS
            ).reshape(n_gm, self.n_phases, _NS)
            by_gm = joint.sum(axis=1)
            self.by_message += by_gm.reshape(self.by_message.shape)
            self.by_phase += joint.sum(axis=0)
            return by_gm.sum(axis=0)
        by_gm = np.bincount(gm * _NS + st, minlength=n_gm * _NS).reshape(n_gm, _NS)
        self.by_message += by_gm.reshape(self.by_message.shape)
        self.by_phase += np.bincount(ph * _NS + st, minlength=self.by_phase.size).reshape(
            self.by_phase.shape
        )
        return by_gm.sum(axis=0)

    @property
    def status(self) -> np.ndarray:
        """[group][status] publish rows."""
        return self.by_message.sum(axis=1)

    def outcomes(self) -> tuple[int, int]:
        """(completed, failed) publish rows so far, over every group."""
        st = self.status.sum(axis=0)
        return int(st[list(COMPLETED_STATUSES)].sum()), int(st[list(FAILED_STATUSES)].sum())

    def take_interval(self) -> tuple[int, list[int]]:
        """(completed, quantiles ns) of the latencies seen since the last call: p50, p95, p99
        and max from the intended send time, then p50, p99 and max from the actual one."""
        if not self._interval:
            return 0, [0] * len(INTERVAL_QUANTILES)
        lat = np.concatenate(self._interval)
        sent = np.concatenate(self._interval_sent)
        self._interval, self._interval_sent, self._interval_n = [], [], 0
        q = np.percentile(lat, [50, 95, 99, 100]).tolist()
        q += np.percentile(sent, [50, 99, 100]).tolist() if len(sent) else [0, 0, 0]
        return len(lat), [int(v) for v in q]
