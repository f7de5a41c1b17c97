"""Random arrival processes per device, deterministic: poisson, pareto and zipf bursts.

Each is a renewal process in *work space* (work = the group's rate times the phase shape's
integral, decision 0001), with mean gap 1, so every process keeps the group's mean rate and a
load shape scales it alike; they differ in how the arrivals bunch:

- poisson: exponential gaps (the memoryless baseline).
- pareto: Pareto gaps of shape a > 1 (scale (a - 1) / a for mean 1): most gaps are short, a few
  very long (the variance is infinite for a <= 2): quiet stretches, then clusters.
- zipf: bursts. A burst of K messages, K ~ Zipf(s) on 1..burst_max (P(K = k) ~ k^-s), spaced
  `spacing` apart; bursts start after exponential gaps whose mean keeps the rate (E[K] messages
  per E[K] of work). Heavy-tailed burst sizes: mostly single messages, sometimes dozens at once.

Draws come in blocks of 64 per device: uniform(seed, group, device, k) for gap k (and a second
stream for burst sizes), each block continuing from the block before (its last point and, for
bursts, how many messages of the current burst are left). The same blocks are generated
whichever devices share the array, so a point depends on (seed, group, device, k) only: worker
count, shard count and chunking never change the schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from simd.plan.hashing import hash2, uniform01

BLOCK = 64  # draws per block; the cumulative sum restarts from the carry at each block
_SIZE_KEY = 0x9E3779B97F4A7C15  # xor-ed into the arrival key for the burst-size stream


@dataclass(frozen=True)
class GapLaw:
    """Gaps between one device's arrivals, in work units (mean 1)."""

    kind: str  # poisson | pareto | zipf
    shape: float = 1.5  # pareto: a > 1
    exponent: float = 2.0  # zipf: s
    burst_max: int = 100  # zipf: the largest burst
    spacing: float = 0.0  # zipf: work between messages of one burst (< 1)

    @cached_property
    def _size_cdf(self) -> np.ndarray:
        w = np.arange(1, self.burst_max + 1, dtype=np.float64) ** -self.exponent
        cdf = np.cumsum(w) / w.sum()
        cdf[-1] = 1.0
        return cdf

    @cached_property
    def mean_burst(self) -> float:
        p = np.diff(np.concatenate([[0.0], self._size_cdf]))
        return float((np.arange(1, self.burst_max + 1) * p).sum())

    def bursty(self) -> bool:
        return self.kind == "zipf"

    def gaps(self, u: np.ndarray) -> np.ndarray:
        """Gaps for uniforms u (renewal laws without state)."""
        if self.kind == "pareto":
            a = self.shape
            # (1 - u)^(-1/a) as exp(-log1p(-u) / a): same value, a third the time of pow
            return ((a - 1.0) / a) * np.exp(np.log1p(-u) * (-1.0 / a))
        return -np.log1p(-u)

    def burst_gaps(
        self, u: np.ndarray, u_size: np.ndarray, left: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Zipf bursts: gaps for a block (rows x BLOCK uniforms) given each row's messages left
        in its current burst; returns (gaps, messages left after the block)."""
        out = np.empty_like(u)
        between = self.mean_burst - (self.mean_burst - 1.0) * self.spacing  # mean gap to a burst
        left = left.copy()
        for j in range(u.shape[1]):
            starts = left == 0
            size = np.searchsorted(self._size_cdf, u_size[:, j], side="right") + 1
            out[:, j] = np.where(starts, -between * np.log1p(-u[:, j]), self.spacing)
            left = np.where(starts, np.minimum(size, self.burst_max) - 1, left - 1)
        return out, left


class ArrivalStreams:
    """Per-device arrival points of one group in work space, generated block by block."""

    def __init__(
        self,
        key: int,
        local: np.ndarray,
        start: np.ndarray | None = None,
        law: GapLaw | None = None,
    ) -> None:
        self.key = key
        self.law = law or GapLaw("poisson")
        self.local = local.astype(np.uint64)
        self.start = np.zeros(len(local)) if start is None else start  # work at the device's start
        self.block = np.full(len(local), -1, dtype=np.int64)
        self.values = np.zeros((len(local), BLOCK), dtype=np.float64)
        self.left = np.zeros(len(local), dtype=np.int64)  # zipf: messages left in the burst
        self._advance(np.arange(len(local)))

    def _advance(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        carry = np.where(self.block[rows] >= 0, self.values[rows, -1], self.start[rows])
        nxt = self.block[rows] + 1
        k = nxt[:, None] * BLOCK + np.arange(BLOCK)[None, :]
        dev = np.broadcast_to(self.local[rows][:, None], k.shape)
        u = uniform01(hash2(self.key, dev.ravel(), k.ravel())).reshape(k.shape)
        if self.law.bursty():
            u_size = uniform01(hash2(self.key ^ _SIZE_KEY, dev.ravel(), k.ravel()))
            gaps, self.left[rows] = self.law.burst_gaps(u, u_size.reshape(k.shape), self.left[rows])
        else:
            gaps = self.law.gaps(u)
        self.values[rows] = carry[:, None] + np.cumsum(gaps, axis=1)
        self.block[rows] = nxt

    def state(self) -> dict[str, np.ndarray]:
        """Where the streams stand (a worker's checkpoint): enough for `restore` to go on
        exactly as these would."""
        return {"block": self.block.copy(), "values": self.values.copy(), "left": self.left.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        if state["values"].shape != self.values.shape:
            raise ValueError("arrival state of another slice")
        self.block, self.values, self.left = state["block"], state["values"], state["left"]

    def take(self, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points with lo <= v < hi, as (row, k, v); blocks advance past hi. Call with rising lo."""
        rows_out, k_out, v_out = [], [], []
        active = np.arange(len(self.local))
        while len(active):
            vals = self.values[active]
            r, c = np.nonzero((vals >= lo) & (vals < hi))
            if len(r):
                rows_out.append(active[r])
                k_out.append(self.block[active[r]] * BLOCK + c)
                v_out.append(vals[r, c])
            more = active[vals[:, -1] < hi]
            self._advance(more)
            active = more
        if not rows_out:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        return np.concatenate(rows_out), np.concatenate(k_out), np.concatenate(v_out)
