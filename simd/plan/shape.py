"""The fleet's load shape: phases compiled to a piecewise-linear rate multiplier m(t).

Every shape (constant, ramp, step, burst, sine) becomes segments on which m is linear, so its
integral M(t) is quadratic and M's inverse needs only +, -, *, /, sqrt: operations IEEE 754 rounds
exactly, so a device's schedule does not depend on array length, SIMD path or worker count. A sine
is drawn with 64 linear pieces per period (the largest gap to a true sine is 0.12 % of amplitude).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from simd.model.scenario import Phase, Scenario

SINE_PIECES_PER_PERIOD = 64
NS = 1_000_000_000


@dataclass(frozen=True)
class Shape:
    """Segments j = 0..n-1 over [t0[j], t1[j]) ns with m(t) = a[j] + b[j] * (t - t0[j]) seconds.

    `m0[j]` is M at t0[j] (M in level-seconds); `m_end` is M at the run's end.
    """

    phase_names: tuple[str, ...]
    t0: np.ndarray  # int64 ns
    t1: np.ndarray  # int64 ns
    a: np.ndarray  # float64, level at t0
    b: np.ndarray  # float64, level change per second
    phase: np.ndarray  # int16, index into phase_names
    m0: np.ndarray  # float64
    m_end: float
    duration_ns: int

    @property
    def knots(self) -> np.ndarray:
        """M at every segment start and, last, at the end: the boundaries of work space."""
        return np.append(self.m0, self.m_end)

    def m_at(self, t_ns: int) -> float:
        """M(t) for one instant (chunk boundaries); at or past the end it is exactly m_end."""
        if t_ns >= self.duration_ns:
            return self.m_end
        if t_ns <= 0:
            return 0.0
        j = int(np.searchsorted(self.t0, t_ns, side="right")) - 1
        u = (t_ns - int(self.t0[j])) / NS
        return float(self.m0[j] + self.a[j] * u + self.b[j] * u * u / 2.0)

    def m_at_many(self, t_ns: np.ndarray) -> np.ndarray:
        """M(t) per instant (device start times), by the same formula as m_at."""
        t = np.asarray(t_ns, dtype=np.int64)
        j = np.clip(np.searchsorted(self.t0, t, side="right") - 1, 0, len(self.t0) - 1)
        u = (t - self.t0[j]) / NS
        m = self.m0[j] + self.a[j] * u + self.b[j] * u * u / 2.0
        m = np.where(t >= self.duration_ns, self.m_end, m)
        return np.where(t <= 0, 0.0, m)

    def phase_of(self, t_ns: np.ndarray) -> np.ndarray:
        """The phase index (int16) of each time."""
        j = np.clip(np.searchsorted(self.t0, t_ns, side="right") - 1, 0, len(self.t0) - 1)
        return self.phase[j]

    def level_at(self, t_ns: int) -> float:
        j = max(0, int(np.searchsorted(self.t0, t_ns, side="right")) - 1)
        return float(self.a[j] + self.b[j] * (t_ns - int(self.t0[j])) / NS)

    def peak_level(self, phase_index: int) -> float:
        """The highest m(t) within one phase."""
        sel = self.phase == phase_index
        if not sel.any():
            return 0.0
        u = (self.t1[sel] - self.t0[sel]) / NS
        return float(max(self.a[sel].max(), (self.a[sel] + self.b[sel] * u).max()))

    def phase_span(self, phase_index: int) -> tuple[int, int]:
        sel = np.nonzero(self.phase == phase_index)[0]
        if len(sel) == 0:
            return (0, 0)
        return int(self.t0[sel[0]]), int(self.t1[sel[-1]])

    def time_of(self, w: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """Invert M in segment `seg`: the ns instant where M reaches `w` (clamped in-segment).
        When every point lies in one segment (most chunks), its constants are scalars: the
        same arithmetic, without gathering five arrays per point."""
        if len(seg) and seg[0] == seg[-1] and (seg == seg[0]).all():
            k = int(seg[0])
            return self._invert(w, self.m0[k], self.a[k], self.b[k], self.t0[k], self.t1[k])
        return self._invert(w, self.m0[seg], self.a[seg], self.b[seg], self.t0[seg], self.t1[seg])

    @staticmethod
    def _invert(w: np.ndarray, m0: Any, a: Any, b: Any, t0: Any, t1: Any) -> np.ndarray:
        c = w - m0
        span = (t1 - t0) / NS
        disc = np.maximum(a * a + 2.0 * b * c, 0.0)
        denom = a + np.sqrt(disc)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(denom > 0, 2.0 * c / denom, 0.0)
        u = np.clip(u, 0.0, span)
        t = t0 + np.rint(u * NS).astype(np.int64)
        return np.minimum(t, t1 - 1)


def _phase_pieces(p: Phase) -> list[tuple[int, int, float, float]]:
    """(offset, length, level at start, level at end) pieces of one phase, in ns from its start."""
    d = p.duration
    if p.shape == "constant":
        return [(0, d, p.level, p.level)]
    if p.shape == "ramp":
        return [(0, d, p.start, p.end)]
    if p.shape == "step":
        n = len(p.levels)
        cuts = [d * i // n for i in range(n + 1)]
        return [(cuts[i], cuts[i + 1] - cuts[i], lv, lv) for i, lv in enumerate(p.levels)]
    if p.shape == "burst":
        pieces = []
        if p.burst_at > 0:
            pieces.append((0, p.burst_at, p.level, p.level))
        pieces.append((p.burst_at, p.burst_length, p.peak, p.peak))
        rest = p.burst_at + p.burst_length
        if rest < d:
            pieces.append((rest, d - rest, p.level, p.level))
        return pieces
    # sine: knots every period / 64, plus the phase's end
    step = max(1, p.period // SINE_PIECES_PER_PERIOD)
    knots = [*list(range(0, d, step)), d]

    def level(t: int) -> float:
        return p.level + p.amplitude * math.sin(2.0 * math.pi * t / p.period)

    return [(k0, k1 - k0, level(k0), level(k1)) for k0, k1 in itertools.pairwise(knots)]


def compile_shape(scenario: Scenario) -> Shape:
    """Compile the scenario's phases over its duration (cut, or held at the last level)."""
    duration = scenario.duration_ns
    phases = list(scenario.phase) or [Phase(name="main", duration=duration)]
    t0s: list[int] = []
    t1s: list[int] = []
    a_s: list[float] = []
    b_s: list[float] = []
    idx: list[int] = []
    start = 0
    last_level = 1.0
    for pi, p in enumerate(phases):
        for off, length, lv0, lv1 in _phase_pieces(p):
            s = start + off
            if s >= duration or length <= 0:
                continue
            e = min(s + length, duration)
            slope = (lv1 - lv0) / (length / NS)
            t0s.append(s)
            t1s.append(e)
            a_s.append(lv0)
            b_s.append(slope)
            idx.append(pi)
            last_level = lv0 + slope * (e - s) / NS
        start += p.duration
    if start < duration:  # hold the last level to the end, under the last phase's name
        t0s.append(start)
        t1s.append(duration)
        a_s.append(last_level)
        b_s.append(0.0)
        idx.append(len(phases) - 1)
    t0 = np.array(t0s, dtype=np.int64)
    t1 = np.array(t1s, dtype=np.int64)
    a = np.array(a_s, dtype=np.float64)
    b = np.array(b_s, dtype=np.float64)
    u = (t1 - t0) / NS
    inc = a * u + b * u * u / 2.0
    # M accumulated left to right in Python floats: one deterministic order.
    m0 = np.zeros(len(t0), dtype=np.float64)
    acc = 0.0
    for j in range(len(t0)):
        m0[j] = acc
        acc = acc + float(inc[j])
    return Shape(
        phase_names=tuple(p.name for p in phases),
        t0=t0,
        t1=t1,
        a=a,
        b=b,
        phase=np.array(idx, dtype=np.int16),
        m0=m0,
        m_end=acc,
        duration_ns=duration,
    )
