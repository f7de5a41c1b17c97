"""`simd compare BASE CANDIDATE`: two runs side by side, a verdict per metric, exit 1 on a
regression beyond the threshold (so it can gate CI). The figures come from the
`compare_metrics` and `slo_results` views of each run's results.duckdb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from simd.results.ingest import read_views, run_dir_of

ABS_RATIO_FLOOR = 0.001  # error rates and ratios: differences under 0.1 point are noise


@dataclass(frozen=True)
class MetricChange:
    metric: str
    unit: str
    better: str  # "lower", "higher" or "info"
    base: float | None
    candidate: float | None
    change: float | None  # (candidate - base) / |base|
    verdict: str  # "regressed", "improved", "same", "info", "n/a"


@dataclass
class Comparison:
    base: str
    candidate: str
    threshold: float
    metrics: list[MetricChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricChange]:
        return [m for m in self.metrics if m.verdict == "regressed"]


def _verdict(
    better: str, unit: str, base: float | None, cand: float | None, thr: float
) -> tuple[float | None, str]:
    if base is None or cand is None or not (math.isfinite(base) and math.isfinite(cand)):
        return None, "n/a"
    diff = cand - base
    change = diff / abs(base) if base else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    if better == "info":
        return change, "info"
    if unit == "bool":
        worse = diff < 0
        return change, "same" if diff == 0 else ("regressed" if worse else "improved")
    beyond = abs(diff) > thr * abs(base)
    if unit == "ratio":
        beyond = beyond and abs(diff) > ABS_RATIO_FLOOR
    if not beyond:
        return change, "same"
    worse = diff > 0 if better == "lower" else diff < 0
    return change, "regressed" if worse else "improved"


def _read(run: Path) -> tuple[dict[str, tuple[str, str, float | None]], dict[str, bool], str]:
    con = read_views(run)
    try:
        metrics = {
            m: (u, b, v)
            for _o, m, u, b, v in con.execute("SELECT * FROM compare_metrics").fetchall()
        }
        slos = dict(con.execute("SELECT name, passed FROM slo_results").fetchall())
        scenario_hash = con.execute("SELECT scenario_hash FROM runs").fetchone()[0]
    finally:
        con.close()
    return metrics, slos, scenario_hash


def compare(base: str | Path, candidate: str | Path, threshold: float = 0.10) -> Comparison:
    """Every metric of `compare_metrics` and every SLO, base against candidate."""
    b_dir, c_dir = run_dir_of(base), run_dir_of(candidate)
    bm, bs, bh = _read(b_dir)
    cm, cs, ch = _read(c_dir)
    out = Comparison(str(b_dir), str(c_dir), threshold)
    if bh != ch:
        out.notes.append("the runs used different scenarios (scenario hashes differ)")
    for name in [*bm, *(n for n in cm if n not in bm)]:
        unit, better, _ = bm[name] if name in bm else cm[name]
        bv = bm[name][2] if name in bm else None
        cv = cm[name][2] if name in cm else None
        change, verdict = _verdict(better, unit, bv, cv, threshold)
        out.metrics.append(MetricChange(name, unit, better, bv, cv, change, verdict))
    for name in sorted(set(bs) | set(cs)):
        bv = None if name not in bs else float(bs[name])
        cv = None if name not in cs else float(cs[name])
        change, verdict = _verdict("higher", "bool", bv, cv, threshold)
        out.metrics.append(MetricChange(f"slo {name}", "bool", "higher", bv, cv, None, verdict))
    return out
