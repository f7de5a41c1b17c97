"""`simd report` and `simd check`: thin renderings of the views in analysis/views.sql (the
tables are declared once, in report/tables.py, for this report and the page)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table
from rich.text import Text

from simd.report import tables as T
from simd.report.tables import TableSpec
from simd.results.ingest import read_views, run_dir_of

# trends over less time than this say more about noise than about growth
MIN_TREND_SPAN_H = 10 / 60


@dataclass(frozen=True)
class SloResult:
    name: str
    unit: str
    threshold: float
    observed: float | None
    passed: bool
    origin: str = "scenario"  # or "default" (error_rate when [slo] sets none), "built-in"

    @property
    def label(self) -> str:
        return slo_label(self.name, self.origin)

    def describe(self) -> str:
        if self.name == "log_integrity":
            n = int(self.observed or 0)
            return "log_integrity: ok — no damaged log range" if self.passed else (
                f"log_integrity: FAILED — {n} damaged log range(s) (see the log_damage table)"
            )  # fmt: skip
        if self.observed is None:
            return f"{self.label}: no data to check (threshold {_fmt(self.threshold, self.unit)})"
        verdict = "ok" if self.passed else "FAILED"
        rel = ""
        if self.threshold:
            rel = f", {100.0 * (self.observed - self.threshold) / self.threshold:+.1f}%"
        return (
            f"{self.label}: {verdict} — observed {_fmt(self.observed, self.unit)}, "
            f"threshold {_fmt(self.threshold, self.unit)}{rel}"
        )


def slo_label(name: str, origin: str | None) -> str:
    """An SLO's name as reports print it: a default one says so."""
    return name + (" (default)" if origin == "default" else "")


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "ns":
        return T.ms_unit(v)
    return f"{v:.4g}"


def check(run: str | Path) -> list[SloResult]:
    """The scenario's SLOs against the run's results."""
    con = read_views(run_dir_of(run))
    try:
        rows = con.execute(
            "SELECT name, unit, threshold, observed, passed, origin FROM slo_results"
        ).fetchall()
    finally:
        con.close()
    return [SloResult(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows]


def integrity_line(con: Any) -> str | None:
    """One loud line when the log is damaged (None when it is whole)."""
    ranges, nbytes, lost, unknown, unreadable = con.execute(
        "SELECT damaged_ranges, damaged_bytes, rows_lost, ranges_rows_unknown, "
        "unreadable_segments FROM log_integrity"
    ).fetchone()
    if not ranges:
        return None
    rows = f"{lost:,} rows lost" + (f" (and an unknown number in {unknown})" if unknown else "")
    return (
        f"LOG DAMAGED: {ranges} range(s), {nbytes:,} bytes unreadable"
        + (f" ({unreadable} whole segment(s))" if unreadable else "")
        + f", {rows}; every frame after the damage was read (table log_damage)"
    )


def shard_lines(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[str]]:
    """A sharded run's coverage: (summary lines, one line per missing shard); ([], []) for a
    run that was not sharded."""
    rows = con.execute(
        "SELECT shard, shards, present, device_lo, device_hi, planned_publishes, planned_share, "
        "start_lead_ms, host, clock_synced, clock_max_error_us FROM shard_coverage"
    ).fetchall()
    if not rows or rows[0][1] == 1:
        return [], []
    here = [r for r in rows if r[2]]
    covered = sum(r[6] or 0 for r in here)
    leads = [r[7] for r in here if r[7] is not None]
    lines = [
        f"shards {len(here)} of {rows[0][1]} present, {covered:.1%} of planned publishes covered"
        + (f"; ready before t=0 by {min(leads):,.0f}..{max(leads):,.0f} ms" if leads else "")
    ]
    errs = [r[10] for r in here if r[10] is not None]
    if errs:
        unsynced = sum(1 for r in here if r[9] is False)
        top = sorted(errs)[-2:]
        lines.append(
            f"shard clocks: {len({r[8] for r in here})} host(s), {unsynced} not NTP-synchronised;"
            f" skew between shards at most {sum(top) / 1e3:,.1f} ms (kernel max errors)"
        )
    missing = [
        f"shard {r[0]}/{r[1]} missing: devices {r[3]}..{r[4] - 1} ({r[4] - r[3]:,} devices, "
        f"{r[5]:,} planned publishes) not covered"
        for r in rows
        if not r[2]
    ]
    return lines, missing


def print_table(spec: TableSpec, con: Any, console: Console) -> None:
    """A declared table (report/tables.py) as a terminal table; its `empty` line without
    rows, nothing when it does not apply to the run."""
    spec = spec.for_run(con)
    rows = spec.fetch(con)
    if rows is None:
        return
    if not rows and spec.empty is not None:
        console.print(spec.empty, markup=False)
        return
    if not rows and not spec.always:
        return
    t = Table(title=spec.title_for(con))
    for c in spec.cols:
        t.add_column(c.header, justify="left" if c.left else "right")
    for r in rows:
        t.add_row(*[Text(cell) for _, cell, _ in spec.cells(r)])  # error texts are not markup
    console.print(t)


def _headline(con: Any, console: Console) -> None:
    """The run line, damage and shard lines, and the totals."""
    (run_id, scen, state, clock, workers, dur, planned, stopped) = con.execute(
        "SELECT run_id, scenario, state, clock, workers, duration_ns, planned_publishes, "
        "stopped_at_ns FROM runs"
    ).fetchone()
    cur = con.execute("SELECT * FROM run_summary")
    summary = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    console.print(
        f"[bold]run[/bold] {run_id}  scenario {scen}  state {state}  clock {clock}"
        f"  workers {workers}  duration {dur / 1e9:g}s"
        + (f"  stopped at {stopped / 1e9:.1f}s" if stopped is not None else "")
    )
    damaged = integrity_line(con)
    if damaged:
        console.print(f"[bold red]{damaged}[/bold red]")
    lines, missing = shard_lines(con)
    for line in lines:
        console.print(line)
    for line in missing:
        console.print(f"[bold red]{line}[/bold red]")
    console.print(
        f"planned {planned:,}  logged {summary['logged']:,}  completed "
        f"{summary['completed']:,}  failed {summary['failed']:,}  "
        f"error rate {summary['error_rate']:.4%}  throughput "
        f"{(summary['throughput_per_s'] or 0):,.1f}/s"
    )


def _replay_gaps(con: Any, console: Console) -> None:
    for group, spans in con.execute(
        "SELECT group_name, missing_spans FROM replay_fidelity WHERE missing_spans IS NOT NULL"
    ).fetchall():
        console.print(f"replay {group}: recording {spans}", style="bold red", markup=False)


def _trends(con: Any, console: Console) -> None:
    trends = con.execute(
        "SELECT metric, points, span_h, mean, slope_per_h, slope_ci95_per_h, growth_per_h, "
        "growth_ci95_per_h FROM trends"
    ).fetchall()
    span_h = max((r[2] or 0.0 for r in trends), default=0.0)
    if span_h < MIN_TREND_SPAN_H:
        console.print(
            f"endurance trends: shown for runs of {MIN_TREND_SPAN_H * 60:.0f} minutes or more "
            f"(this one covers {span_h * 3600:.0f} s; `trends` in SQL has them anyway)",
            markup=False,
        )
        return
    t = Table(title="endurance: least-squares trend over the run's windows (per hour)")
    for n in ("metric", "windows", "mean", "slope", "± 95 %", "growth", "± 95 %"):
        t.add_column(n, justify="left" if n == "metric" else "right")
    for m, pts, _, mean, slope, ci, growth, gci in trends:
        fmt = T.ms_unit if m.startswith("latency") else T.fixed(4)
        t.add_row(m, T.count(pts), fmt(mean), fmt(slope), fmt(ci), T.change(growth),
                  T.change(gci).lstrip("+"))  # fmt: skip
    console.print(t)


def _resources(con: Any, console: Console) -> None:
    bursts = con.execute("SELECT count(*) FROM error_bursts").fetchone()[0]
    res = con.execute(
        "SELECT count(*), max(rss_max_bytes), max(rss_growth_per_h), max(fds_max) "
        "FROM resource_growth"
    ).fetchone()
    line = f"error bursts: {bursts}"
    if res[0]:
        line += (
            f"; generator resources over {res[0]} worker(s): RSS max "
            f"{T.mib(res[1])} MiB, worst RSS growth {T.change(res[2])}/h, fds max {res[3]:.0f}"
        )
    console.print(line, markup=False)


def _recommendations(con: Any, console: Console) -> None:
    console.print("[bold]recommendations[/bold]")
    for finding, evidence, advice in con.execute(
        "SELECT finding, evidence, advice FROM recommendations"
    ).fetchall():
        console.print(f"  {finding}: {evidence}. {advice}.", markup=False)


def render_report(run: str | Path, console: Console) -> None:
    """Totals, the declared tables (publishes, latency from intended and from sent, lag, probes,
    commands, replay, journeys, errors), trends, resources, recommendations, SLOs."""
    run_dir = run_dir_of(run)
    con = read_views(run_dir)
    try:
        _headline(con, console)
        for spec in T.TERMINAL:
            print_table(spec, con, console)
            if spec is T.REPLAY and spec.fetch(con) is not None:
                _replay_gaps(con, console)
        _trends(con, console)
        _resources(con, console)
        _recommendations(con, console)
    finally:
        con.close()
    slos = check(run_dir)
    if slos:
        console.print("[bold]SLOs[/bold]")
        for s in slos:
            console.print("  " + s.describe(), markup=False)
