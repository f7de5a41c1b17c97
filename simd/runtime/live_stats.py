"""What a worker tells its supervisor while it runs: cumulative counts per group, message (an
HTTP run's request name) and status, a cumulative latency histogram per group (Prometheus
buckets), counts per phase and status, failed rows per error text, and the last interval's
latency quantiles (from intended and from sent time). Fed frame by frame from the rows the
worker logs (never per message), so a worker that restarts rebuilds the same counters by
feeding its own log back in (simd.runtime.resume).
"""

from __future__ import annotations

import numpy as np

from simd.log.events import (
    ACKED,
    COMPLETED_STATUSES,
    FAILED_STATUSES,
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
        self._interval: list[np.ndarray] = []  # latency from intended send time
        self._interval_sent: list[np.ndarray] = []  # ... and from actual send time
        self._interval_n = 0

    def observe(self, cols: dict[str, np.ndarray], n: int) -> None:
        """Count the publish rows of one frame (n rows of `cols`)."""
        dev = cols["device"][:n]
        pub = (cols["kind"][:n] == PUBLISH) & (dev >= self.lo) & (dev < self.hi)
        if not pub.any():
            return
        g = self.group_of[dev[pub] - self.lo]
        st = cols["status"][:n][pub].astype(np.int64)
        m = np.minimum(cols["message"][:n][pub].astype(np.int64), self.n_messages - 1)
        size = self.by_message.size
        self.by_message += np.bincount(
            (g * self.n_messages + m) * _NS + st, minlength=size
        ).reshape(self.by_message.shape)
        ph = np.minimum(cols["phase"][:n][pub].astype(np.int64), self.n_phases - 1)
        self.by_phase += np.bincount(ph * _NS + st, minlength=self.by_phase.size).reshape(
            self.by_phase.shape
        )
        failed = (st >= _FAILED_LO) & (st <= _FAILED_HI)
        if failed.any():
            codes, k = np.unique(cols["error"][:n][pub][failed], return_counts=True)
            for c, v in zip(codes.tolist(), k.tolist(), strict=True):
                self.error_codes[c] = self.error_codes.get(c, 0) + v
        t_done = cols["t_done"][:n][pub]
        done = ((st == ACKED) | (st == SENT)) & (t_done != NULL_NS)
        if not done.any():
            return
        lat = t_done[done] - cols["t_intended"][:n][pub][done]
        gd = g[done]
        gm = gd * self.n_messages + m[done]
        b = np.searchsorted(_BOUNDS_NS, lat, side="left")  # first bound >= latency
        self.buckets += np.bincount(gd * _NB + b, minlength=self.n_groups * _NB).reshape(
            self.n_groups, _NB
        )
        self.message_latency_sum_ns += np.bincount(
            gm, weights=lat, minlength=self.message_latency_sum_ns.size
        ).reshape(self.message_latency_sum_ns.shape)
        if self._interval_n < INTERVAL_SAMPLE:
            k = INTERVAL_SAMPLE - self._interval_n
            self._interval.append(lat[:k])
            sent = cols["t_sent"][:n][pub][done][:k]
            self._interval_sent.append(t_done[done][:k] - sent)
            self._interval_n += len(self._interval[-1])

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
