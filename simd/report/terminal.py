"""`simd report` and `simd check`: thin renderings of the views in analysis/views.sql."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

from simd.results.ingest import connect, run_dir_of

# trends over less time than this say more about noise than about growth
MIN_TREND_SPAN_H = 10 / 60

# the latency table's columns, in the terminal and on the HTML page
LATENCY_COLUMNS = (
    "group",
    "phase",
    "completed",
    "p50",
    "p90",
    "p99",
    "p99.9",
    "max",
    "p50 sent",
    "p99 sent",
    "max sent",
)


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
        return _ms(v)
    return f"{v:.4g}"


def _pct(v: float | None, sign: bool = True) -> str:
    if v is None or v != v:
        return "-"
    return f"{100 * v:+.2f} %" if sign else f"{100 * v:.2f} %"


def _ms(ns: float | None) -> str:
    if ns is None:
        return "-"
    return f"{ns / 1e6:.3f} ms"


def check(run: str | Path) -> list[SloResult]:
    """The scenario's SLOs against the run's results."""
    con = connect(run_dir_of(run), read_only=True)
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


def _fetch(con: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cur = con.execute(sql)
    return [d[0] for d in cur.description], cur.fetchall()


REPLAY_COLUMNS = (
    "group",
    "recorded",
    "passes x fanout",
    "speed",
    "planned",
    "sent",
    "completed",
    "offset p50",
    "offset p99",
    "offset max",
    "corr (sent)",
    "size diffs",
)


def _replay_table(con: Any, console: Console) -> None:
    """Replay fidelity (analysis/views.sql replay_fidelity): send offsets from the recorded
    times and the per-second shape."""
    t = Table(
        title="replay fidelity: send offset (ms) from the recorded time scaled; "
        "correlation of per-second counts"
    )
    for n in REPLAY_COLUMNS:
        t.add_column(n, justify="left" if n == "group" else "right")
    for r in con.execute(
        "SELECT group_name, recorded_messages, passes, fanout, speed, planned, sent, completed, "
        "send_offset_p50_ms, send_offset_p99_ms, send_offset_max_ms, correlation_sent, "
        "size_mismatches FROM replay_fidelity"
    ).fetchall():
        t.add_row(
            r[0],
            f"{r[1]:,}",
            f"{r[2]} x {r[3]}",
            f"{r[4]:g}",
            *[f"{v:,}" for v in r[5:8]],
            *["-" if v is None else f"{v:.3f}" for v in r[8:11]],
            "-" if r[11] is None else f"{r[11]:.4f}",
            f"{r[12]:,}",
        )
    console.print(t)
    for group, spans in con.execute(
        "SELECT group_name, missing_spans FROM replay_fidelity WHERE missing_spans IS NOT NULL"
    ).fetchall():
        console.print(f"[bold red]replay {group}: recording {spans}[/bold red]")


JOURNEY_COLUMNS = ("group", "step", "request", "requests", "passed", "p50", "p99", "max")
DELIVERY_COLUMNS = ("probe", "group", "expected", "delivered", "lost", "loss", "duplicated",
                    "reordered", "unexpected", "worst device p99 ms")  # fmt: skip
DELIVERY_SQL = (
    "SELECT probe, group_name, expected, delivered, lost, loss_rate, duplicated, reordered, "
    "unexpected, worst_device_p99_ns FROM delivery_summary"
)


def delivery_cells(r: tuple[Any, ...]) -> list[str]:
    """A delivery_summary row as the report shows it."""
    return [
        r[0], r[1], *[f"{v:,}" for v in r[2:5]], "-" if r[5] is None else f"{r[5]:.3%}",
        *[f"{v:,}" for v in r[6:9]], _ms(r[9]).removesuffix(" ms"),
    ]  # fmt: skip


def _journey_table(con: Any, console: Console) -> None:
    """HTTP journeys (journey_stats): each step, then the whole journey."""
    t = Table(title="journeys: latency (ms) per step from its send, and of the whole journey")
    for n in JOURNEY_COLUMNS:
        t.add_column(n, justify="left" if n in ("group", "request") else "right")
    for r in con.execute("SELECT * FROM journey_stats").fetchall():
        t.add_row(
            r[0],
            "-" if r[1] is None else str(r[1]),
            r[2],
            f"{r[3]:,}",
            f"{r[4]:,}",
            *[_ms(v).removesuffix(" ms") for v in r[5:]],
        )
    console.print(t)


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


def render_report(run: str | Path, console: Console) -> None:
    """Totals, throughput, latency (from intended and from sent), lag, errors, SLOs."""
    run_dir = run_dir_of(run)
    con = connect(run_dir, read_only=True)
    try:
        (run_id, scen, state, clock, workers, dur, planned, stopped) = con.execute(
            "SELECT run_id, scenario, state, clock, workers, duration_ns, planned_publishes, "
            "stopped_at_ns FROM runs"
        ).fetchone()
        s_names, s_rows = _fetch(con, "SELECT * FROM run_summary")
        summary = dict(zip(s_names, s_rows[0], strict=True))
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

        t = Table(title="publishes by group and phase")
        names, rows = _fetch(con, "SELECT * FROM status_counts")
        for n in names:
            t.add_column(n, justify="right" if n not in ("group_name", "phase") else "left")
        for r in rows:
            t.add_row(*[f"{v:,}" if isinstance(v, int) else str(v) for v in r])
        console.print(t)

        t = Table(title="latency (ms) from intended send time | from actual send time")
        for n in LATENCY_COLUMNS:
            t.add_column(n, justify="left" if n in ("group", "phase") else "right")
        for r in con.execute(
            "SELECT group_name, phase, completed, p50_intended_ns, p90_intended_ns, "
            "p99_intended_ns, p999_intended_ns, max_intended_ns, p50_sent_ns, p99_sent_ns, "
            "max_sent_ns FROM latency_percentiles"
        ).fetchall():
            t.add_row(r[0], r[1], f"{r[2]:,}", *[_ms(v).removesuffix(" ms") for v in r[3:]])
        console.print(t)

        t = Table(title="schedule lag (ms): actual minus intended send time")
        for n in ("group", "phase", "sent", "p50", "p99", "max"):
            t.add_column(n, justify="left" if n in ("group", "phase") else "right")
        for r in con.execute("SELECT * FROM schedule_lag").fetchall():
            t.add_row(r[0], r[1], f"{r[2]:,}", *[_ms(v).removesuffix(" ms") for v in r[3:]])
        console.print(t)

        e2e = con.execute("SELECT * FROM end_to_end").fetchall()
        if e2e:
            t = Table(title="end to end (probes): intended send time -> received by a probe, ms")
            for n in ("group", "received", "traced", "p50", "p99", "max"):
                t.add_column(n, justify="left" if n == "group" else "right")
            for r in e2e:
                t.add_row(
                    r[0], f"{r[1]:,}", f"{r[2]:,}", *[_ms(v).removesuffix(" ms") for v in r[3:]]
                )
            console.print(t)

        if con.execute("SELECT count(*) FROM probes").fetchone()[0]:
            t = Table(
                title="delivery (probes): traced publishes that should have reached each probe"
            )
            for n in DELIVERY_COLUMNS:
                t.add_column(n, justify="left" if n in ("probe", "group") else "right")
            for r in con.execute(DELIVERY_SQL).fetchall():
                t.add_row(*delivery_cells(r))
            console.print(t)

        cmds = con.execute("SELECT * FROM command_stats").fetchall()
        if cmds:
            t = Table(title="commands: round trip from the intended send time to the reply, ms")
            cols = ("group", "commands", "delivered", "answered", "timed out", "p50", "p99", "max")
            for n in cols:
                t.add_column(n, justify="left" if n == "group" else "right")
            for r in cmds:
                t.add_row(r[0], *[f"{v:,}" for v in r[1:5]],
                          *[_ms(v).removesuffix(" ms") for v in r[5:]])  # fmt: skip
            console.print(t)

        if con.execute("SELECT count(*) FROM replay_groups").fetchone()[0]:
            _replay_table(con, console)
        if con.execute("SELECT count(*) FROM groups WHERE steps > 1").fetchone()[0]:
            _journey_table(con, console)

        errs = con.execute("SELECT * FROM errors_by_kind LIMIT 20").fetchall()
        if errs:
            t = Table(title="errors by kind")
            for n in ("status", "kind", "error", "count", "first (s)", "last (s)"):
                t.add_column(n)
            for r in errs:
                t.add_row(
                    r[0],
                    r[1],
                    r[2],
                    f"{r[3]:,}",
                    "-" if r[4] is None else f"{r[4] / 1e9:.1f}",
                    "-" if r[5] is None else f"{r[5] / 1e9:.1f}",
                )
            console.print(t)
        else:
            console.print("errors: none")

        trends = con.execute(
            "SELECT metric, points, span_h, mean, slope_per_h, slope_ci95_per_h, growth_per_h, "
            "growth_ci95_per_h FROM trends"
        ).fetchall()
        span_h = max((r[2] or 0.0 for r in trends), default=0.0)
        if span_h >= MIN_TREND_SPAN_H:
            t = Table(title="endurance: least-squares trend over the run's windows (per hour)")
            for n in ("metric", "windows", "mean", "slope", "± 95 %", "growth", "± 95 %"):
                t.add_column(n, justify="left" if n == "metric" else "right")
            for m, pts, _, mean, slope, ci, growth, gci in trends:
                fmt = _ms if m.startswith("latency") else (lambda v: _fmt(v, "ratio"))
                t.add_row(
                    m, f"{pts:,}", fmt(mean), fmt(slope), fmt(ci), _pct(growth), _pct(gci, False)
                )
            console.print(t)
        else:
            console.print(
                f"endurance trends: shown for runs of {MIN_TREND_SPAN_H * 60:.0f} minutes or more "
                f"(this one covers {span_h * 3600:.0f} s; `trends` in SQL has them anyway)",
                markup=False,
            )
        bursts = con.execute("SELECT count(*) FROM error_bursts").fetchone()[0]
        res = con.execute(
            "SELECT count(*), max(rss_max_bytes), max(rss_growth_per_h), max(fds_max) "
            "FROM resource_growth"
        ).fetchone()
        line = f"error bursts: {bursts}"
        if res[0]:
            line += (
                f"; generator resources over {res[0]} worker(s): RSS max "
                f"{res[1] / 2**20:,.1f} MiB, worst RSS growth {_pct(res[2])}/h, "
                f"fds max {res[3]:.0f}"
            )
        console.print(line, markup=False)

        console.print("[bold]recommendations[/bold]")
        for finding, evidence, advice in con.execute(
            "SELECT finding, evidence, advice FROM recommendations"
        ).fetchall():
            console.print(f"  {finding}: {evidence}. {advice}.", markup=False)
    finally:
        con.close()
    slos = check(run_dir)
    if slos:
        console.print("[bold]SLOs[/bold]")
        for s in slos:
            console.print("  " + s.describe(), markup=False)
