"""The live run as a time series: one point per supervisor tick (about a second), for the
dashboard's charts. A page opened mid-run fetches every point so far, then the new ones.

Memory stays bounded on a run of days: past `MAX_POINTS` neighbouring points are merged in
pairs (rates averaged, quantiles and memory kept at their worst, workers up at their fewest),
so the whole run stays on the chart at a coarser step. Each merge bumps `epoch`: a client
holding points of an older epoch fetches them all again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# a point's fields, in order; rates are per second of wall time between two ticks
RATE_FIELDS = (
    "planned_per_s",
    "sent_per_s",
    "completed_per_s",
    "failed_per_s",
    "timeout_per_s",
    "error_per_s",
    "dropped_per_s",
    "missed_per_s",
    "unsent_per_s",
)
WORST_FIELDS = (  # ms; None where the interval had nothing to measure
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "sent_p50_ms",
    "sent_p99_ms",
    "sent_max_ms",
    "lag_p99_ms",
    "rss_mib",
)
FIELDS = ("t_s", *RATE_FIELDS, *WORST_FIELDS, "workers_up")
MAX_POINTS = 3600

Point = list[float | None]
_RATES = range(1, 1 + len(RATE_FIELDS))
_WORST = range(1 + len(RATE_FIELDS), 1 + len(RATE_FIELDS) + len(WORST_FIELDS))


def _worst(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


def merge(a: Point, b: Point) -> Point:
    """Two neighbouring points as one, at the later one's time."""
    out: Point = [b[0]]
    out += [((a[i] or 0.0) + (b[i] or 0.0)) / 2 for i in _RATES]
    out += [_worst(a[i], b[i]) for i in _WORST]
    up = [v for v in (a[-1], b[-1]) if v is not None]
    out.append(min(up) if up else None)
    return out


@dataclass
class Timeline:
    max_points: int = MAX_POINTS
    points: list[Point] = field(default_factory=list)
    epoch: int = 0

    def add(self, values: dict[str, float | None]) -> None:
        """One tick's point (by field name; a missing field is None)."""
        self.points.append([values.get(f) for f in FIELDS])
        if len(self.points) > self.max_points:
            pts = self.points
            merged = [merge(pts[i], pts[i + 1]) for i in range(0, len(pts) - 1, 2)]
            if len(pts) % 2:
                merged.append(pts[-1])
            self.points = merged
            self.epoch += 1

    def since(self, start: int, epoch: int) -> tuple[int, list[Point]]:
        """(index of the first point returned, the points from `start` on) for a client that
        holds `start` points of `epoch`; all of them when its epoch is not the current one."""
        if epoch != self.epoch or start < 0 or start > len(self.points):
            start = 0
        return start, self.points[start:]
