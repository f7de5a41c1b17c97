"""`simd capacity`: find the highest offered rate the system holds within the scenario's SLOs.

The search is a staircase of load steps, each step a phase of an ordinary run (so it is in the
run's own log, and `phase_stats` / `capacity_steps` in SQL re-analyse it):

1. coarse: from `start` (default: the scenario's own rate) up by `factor` per step, `steps`
   steps of `step` each. On the real clock the run stops at the end of the first step during
   which a live SLO alert is on (no point loading past the knee); on the virtual clock all steps
   run (they cost no wall time).
2. fine: `refine` steps evenly between the last step that held and the first that broke.

Verdicts come from the log, not the live view: a step holds when its latency p99 (from the
intended time), error rate, schedule lag p99 and throughput ratio (completed / planned) meet the
scenario's [slo] (and, with probes and traced publishes, the delivery loss at the probes:
loss_rate). The sustainable rate is the highest step that held below the first that broke;
the knee is the first that broke. The side that broke it: `generator` when the schedule lag did
(simd could not send on time: add workers or shards), else `target` (latency, errors, loss).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from simd.errors import RunError, UserError
from simd.model.scenario import Scenario
from simd.report.charts import Line, time_chart
from simd.report.tables import fixed
from simd.runtime.live import LiveState

STEP_SLOS = ("latency_p99", "error_rate", "schedule_lag_p99", "throughput_ratio", "loss_rate")


@dataclass(frozen=True)
class SearchOptions:
    start: float | None = None  # msg/s of the whole fleet; default: the scenario's own rate
    factor: float = 1.25
    steps: int = 16
    step_ns: int = 30_000_000_000
    refine: int = 4


@dataclass
class Step:
    name: str
    offered_per_s: float
    achieved_per_s: float
    latency_p50_ns: float | None
    latency_p99_ns: float | None
    latency_p99_sent_ns: float | None
    lag_p99_ns: float | None
    error_rate: float
    throughput_ratio: float
    reached: bool
    passed: bool
    breached: list[str]
    bound: str | None


@dataclass
class Search:
    """The outcome: every step of both passes, the sustainable rate and the knee."""

    passes: dict[str, list[Step]] = field(default_factory=dict)  # pass name -> steps
    runs: dict[str, str] = field(default_factory=dict)  # pass name -> run folder
    sustainable_per_s: float | None = None
    knee_per_s: float | None = None
    bound: str | None = None  # generator | target
    knee: Step | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def nominal_rate(scenario: Scenario) -> float:
    """Publishes per second of the whole fleet at phase level 1."""
    for gi, g in enumerate(scenario.fleet):
        if g.replay is not None or g.closed:
            raise UserError(
                f"fleet[{gi}] ({g.name}): capacity steps the rate of scheduled groups; "
                "replay and closed-model groups have no rate to step"
            )
    return sum((g.rate_per_s or 0.0) * g.count * g.steps for g in scenario.fleet)


def step_scenario(scenario: Scenario, rates: list[float], step_ns: int, prefix: str) -> Scenario:
    """The scenario with its phases replaced by one constant step per rate (msg/s)."""
    base = nominal_rate(scenario)
    if base <= 0:
        raise UserError("capacity: the fleet has no rate to step")
    if not any(getattr(scenario.slo, n) is not None for n in STEP_SLOS):
        raise UserError(
            "capacity: give the limit to hold in [slo]: latency_p99, error_rate, "
            "schedule_lag_p99, throughput_ratio and/or loss_rate"
        )
    data = scenario.model_dump(mode="json")
    data["phase"] = [
        {"name": f"{prefix}{i + 1:02d}", "duration": f"{step_ns}ns", "level": r / base}
        for i, r in enumerate(rates)
    ]
    data["duration"] = f"{step_ns * len(rates)}ns"
    return Scenario.model_validate(data)


def coarse_rates(scenario: Scenario, opts: SearchOptions) -> list[float]:
    start = opts.start or nominal_rate(scenario)
    return [start * opts.factor**i for i in range(opts.steps)]


def fine_rates(low: float, high: float, n: int) -> list[float]:
    return [low + (high - low) * (j + 1) / (n + 1) for j in range(n)]


class StepJudge:
    """Stops a real-clock run at the end of the first step that ends with a live SLO alert on."""

    def __init__(self, step_ns: int, steps: int) -> None:
        self.ends = [step_ns * (i + 1) for i in range(steps)]

    def __call__(self, live: LiveState) -> str | None:
        t = live.t_ns()
        while self.ends and t >= self.ends[0]:
            end = self.ends.pop(0)
            active = [a.slo for a in live.alerts if a.active]
            if active:
                return (
                    f"capacity: {', '.join(active)} breached in the step ending at {end / 1e9:g} s"
                )
        return None


def read_steps(con: Any) -> list[Step]:
    """capacity_steps (analysis/views.sql) as Steps."""
    cur = con.execute(
        "SELECT phase, offered_per_s, achieved_per_s, latency_p50_ns, latency_p99_ns, "
        "latency_p99_sent_ns, lag_p99_ns, error_rate, throughput_ratio, reached, passed, "
        "breached, bound FROM capacity_steps ORDER BY phase_index"
    )
    return [Step(*row) for row in cur.fetchall()]


def bracket(steps: list[Step]) -> tuple[Step | None, Step | None]:
    """(the highest step that held below the first that broke, the first that broke)."""
    held: Step | None = None
    for s in steps:
        if not s.reached:
            break
        if not s.passed:
            return held, s
        held = s
    return held, None


def conclude(search: Search) -> None:
    """The sustainable rate, the knee and the bound, from the passes' steps."""
    coarse = search.passes.get("coarse", [])
    held, broke = bracket(coarse)
    fine_held, fine_broke = bracket(search.passes.get("fine", []))
    if fine_held is not None and (held is None or fine_held.offered_per_s > held.offered_per_s):
        held = fine_held
    if fine_broke is not None:
        broke = fine_broke
    search.sustainable_per_s = held.offered_per_s if held else None
    search.knee = broke
    search.knee_per_s = broke.offered_per_s if broke else None
    search.bound = broke.bound if broke else None
    if broke is None:
        top = coarse[-1].offered_per_s if coarse else 0
        search.note = f"no step broke an SLO up to {top:,.0f} msg/s: the limit lies above"
    elif held is None:
        search.note = (
            f"the first step ({broke.offered_per_s:,.0f} msg/s) already broke "
            f"{', '.join(broke.breached)}: the limit lies below; start lower (--start)"
        )


def describe(search: Search) -> str:
    """The verdict in one paragraph."""
    if search.knee is None or search.sustainable_per_s is None:
        return search.note
    k = search.knee
    assert k is not None
    evidence = []
    if k.latency_p99_ns is not None:
        evidence.append(f"latency p99 {k.latency_p99_ns / 1e6:,.1f} ms")
    if k.latency_p99_sent_ns is not None:
        evidence.append(f"from sent {k.latency_p99_sent_ns / 1e6:,.1f} ms")
    if k.lag_p99_ns is not None:
        evidence.append(f"schedule lag p99 {k.lag_p99_ns / 1e6:,.1f} ms")
    evidence.append(f"errors {k.error_rate:.3%}")
    evidence.append(f"completed {k.throughput_ratio:.1%} of planned")
    side = (
        "the generator (it could not keep its schedule: add workers or shards)"
        if k.bound == "generator"
        else "the target (its own latency or errors; the generator kept up)"
    )
    return (
        f"sustainable: {search.sustainable_per_s:,.0f} msg/s; it broke at "
        f"{k.offered_per_s:,.0f} msg/s ({', '.join(k.breached)}: {', '.join(evidence)}); "
        f"bound by {side}"
    )


def run_search(
    scenario: Scenario,
    *,
    scenario_path: Path,
    runs_dir: Path,
    run_id: str,
    opts: SearchOptions,
    workers: int | None = None,
    clock: str | None = None,
    progress: bool = True,
) -> tuple[Path, Search]:
    """Both passes, each an ordinary run in RUNS/ID/<pass>/; the search and its folder."""
    from simd.clock import parse_clock
    from simd.results.ingest import ingest, read_views
    from simd.runtime import supervisor

    folder = runs_dir / run_id
    if folder.exists():
        raise UserError(f"{folder}: exists already (choose another --run-id)")
    virtual = parse_clock(clock or scenario.run.clock).kind == "virtual"
    search = Search()
    plan = [("coarse", coarse_rates(scenario, opts))]
    while plan:
        name, rates = plan.pop(0)
        steps = step_scenario(scenario, rates, opts.step_ns, "c" if name == "coarse" else "f")
        outcome = supervisor.run(
            steps,
            scenario_path=scenario_path,
            runs_dir=folder,
            run_id=name,
            workers=workers,
            clock=clock,
            progress=progress,
            stop_when=None if virtual else StepJudge(opts.step_ns, len(rates)),
        )
        if outcome.state in ("failed", "aborted"):
            raise RunError(
                f"capacity {name} pass {outcome.state}: {outcome.problems or 'interrupted'}"
            )
        ingest(outcome.run_dir)
        con = read_views(outcome.run_dir)
        try:
            search.passes[name] = read_steps(con)
        finally:
            con.close()
        search.runs[name] = str(outcome.run_dir)
        held, broke = bracket(search.passes[name])
        if name == "coarse" and held is not None and broke is not None and opts.refine:
            plan.append(("fine", fine_rates(held.offered_per_s, broke.offered_per_s, opts.refine)))
    conclude(search)
    return folder, search


def write_outputs(folder: Path, search: Search) -> tuple[Path, Path]:
    """capacity.json and capacity.html (rate vs latency, knee marked) in `folder`."""
    j = folder / "capacity.json"
    j.write_text(json.dumps(search.to_json(), indent=2) + "\n")
    h = folder / "capacity.html"
    h.write_text(page(search))
    return j, h


def page(search: Search) -> str:
    steps = sorted(
        (s for ps in search.passes.values() for s in ps if s.reached),
        key=lambda s: s.offered_per_s,
    )
    x = [s.offered_per_s for s in steps]

    def ms(v: float | None) -> float | None:
        return None if v is None else v / 1e6

    knee = [(search.knee_per_s, "knee")] if search.knee_per_s else []
    per_s = lambda v: f"{v:,.0f}/s"  # noqa: E731
    chart = time_chart(
        "latency p99 by offered rate (ms, log scale)",
        x,
        [
            Line("latency p99 from intended", [ms(s.latency_p99_ns) for s in steps]),
            Line("latency p99 from sent", [ms(s.latency_p99_sent_ns) for s in steps], True),
        ],
        "ms",
        log_y=True,
        x_fmt=per_s,
        marks=knee,
    )
    # lag on a linear axis: a step that kept its schedule is drawn at 0, not at a log floor
    chart += time_chart(
        "schedule lag p99 by offered rate (ms)",
        x,
        [Line("schedule lag p99", [ms(s.lag_p99_ns) or 0.0 for s in steps])],
        "ms",
        x_fmt=per_s,
        marks=knee,
    )
    chart += time_chart(
        "achieved vs offered rate (per s)",
        x,
        [
            Line("offered", x, True),
            Line("achieved (completed)", [s.achieved_per_s for s in steps]),
        ],
        "per s",
        x_fmt=per_s,
        marks=knee,
    )
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(s.name)}</td><td>{s.offered_per_s:,.0f}</td>"
        f"<td>{s.achieved_per_s:,.0f}</td><td>{_ms(s.latency_p99_ns)}</td>"
        f"<td>{_ms(s.latency_p99_sent_ns)}</td><td>{_ms(s.lag_p99_ns)}</td>"
        f"<td>{s.error_rate:.3%}</td><td>{verdict(s)}</td></tr>"
        for name, ps in search.passes.items()
        for s in ps
    )
    from simd.report.html import PAGE_CSS

    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>simd capacity</title>"
        f"<style>{PAGE_CSS}</style></head>"
        f"<body><h1>capacity</h1><p id='verdict'>{escape(describe(search))}</p>{chart}"
        "<table><tr><th>pass</th><th>step</th><th>offered/s</th><th>achieved/s</th>"
        "<th>p99 ms</th><th>p99 sent ms</th><th>lag p99 ms</th><th>errors</th><th>verdict</th>"
        f"</tr>{rows}</table></body></html>\n"
    )


def _ms(v: float | None) -> str:
    return fixed(2)(None if v is None else v / 1e6)


def verdict(s: Step) -> str:
    """A step's outcome in a few words: not reached, held, or what broke and which side."""
    if not s.reached:
        return "not reached"
    return "held" if s.passed else f"broke: {', '.join(s.breached)} ({s.bound})"
