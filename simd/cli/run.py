"""Commands that run a scenario: `run` (and how a run ends: ingest, report, exit code), `plan`,
`replay`, `capacity`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from simd.cli.app import (
    app,
    duckdb_error,
    fail,
    first_line,
    guarded,
    out,
)
from simd.cli.logs import warn_ingest
from simd.cli.options import (
    CLOCK,
    DURATION,
    JUNIT,
    LINGER,
    PROGRESS,
    PROGRESS_EVERY,
    REPORT,
    RUN_ID,
    RUNS_DIR,
    SEED,
    SET,
    SUMMARY,
    TARGET,
    WORKERS,
    format_option,
)
from simd.cli.results import figure
from simd.errors import EXIT_OK, EXIT_RUN, EXIT_SLO, ScenarioError, UserError


def duration_s(flag: str, text: str) -> float:
    """A duration option's seconds (>= 0), or a one-line error naming the flag."""
    from simd.model.durations import parse_duration_ns

    try:
        seconds = parse_duration_ns(text) / 1e9
    except ValueError as exc:
        raise UserError(f"{flag} {text!r}: {exc}") from None
    if seconds < 0:
        raise UserError(f"{flag} {text!r}: must be >= 0")
    return seconds


def progress_setting(progress: bool, interval: str) -> bool | float:
    """--progress/--no-progress and --progress-interval as the supervisor takes them."""
    seconds = duration_s("--progress-interval", interval)
    if seconds <= 0:
        raise UserError(f"--progress-interval {interval!r}: must be > 0")
    return seconds if progress else False


def overrides(target: str | None, duration: str | None, seed: int | None) -> dict[str, Any]:
    o: dict[str, Any] = {}
    if target is not None:
        o["target"] = target
    if duration is not None:
        o["duration"] = duration
    if seed is not None:
        o["seed"] = seed
    return o


@app.command()
@guarded
def run(
    scenario: Annotated[
        Path | None,
        typer.Argument(help="scenario TOML file, - for standard input (not with --resume)"),
    ] = None,
    workers: Annotated[int | None, WORKERS] = None,
    clock: Annotated[str | None, CLOCK] = None,
    target: Annotated[str | None, TARGET] = None,
    duration: Annotated[str | None, DURATION] = None,
    seed: Annotated[int | None, SEED] = None,
    set_: Annotated[list[str] | None, SET] = None,
    runs_dir: Annotated[Path, RUNS_DIR] = Path("runs"),
    run_id: Annotated[str | None, RUN_ID] = None,
    progress: Annotated[bool, PROGRESS] = True,
    progress_interval: Annotated[str, PROGRESS_EVERY] = "10s",
    report: Annotated[bool, REPORT] = True,
    status_port: Annotated[
        int | None,
        typer.Option(help="/status and /metrics on --status-host:PORT (0 a free port, -1 none)"),
    ] = None,
    status_host: Annotated[
        str, typer.Option(help="address /status listens on (0.0.0.0 to be scraped in a pod)")
    ] = "127.0.0.1",
    resume: Annotated[
        Path | None,
        typer.Option(help="continue this run folder after its supervisor died (a reboot)"),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(help="I/N: run shard I of N (its slice of the fleet) into RUN/shard-I/"),
    ] = None,
    start_at: Annotated[
        str | None,
        typer.Option(help="t=0 shared by all shards: epoch seconds or ISO 8601 with a zone"),
    ] = None,
    summary_export: Annotated[Path | None, SUMMARY] = None,
    junit: Annotated[Path | None, JUNIT] = None,
    linger: Annotated[str, LINGER] = "0s",
) -> None:
    """Run a scenario: workers publish, every event is logged, then ingest, report and check.

    With --shard I/N --start-at T the run is one shard of a distributed run: it writes its
    logs only; `simd ingest RUNS/ID` merges the shards and reports on the whole fleet."""
    from simd.runtime.preload import preload_workers

    preload_workers()  # the workers' imports go on while this reads the scenario
    from simd.clock import parse_clock
    from simd.plan.inputs import load_scenario
    from simd.plan.shard import default_run_id, parse_shard, parse_start_at
    from simd.runtime import supervisor

    linger_s = duration_s("--linger", linger)
    if resume is not None:
        if (
            scenario is not None
            or set_
            or any(
                v is not None
                for v in (workers, clock, target, duration, seed, run_id, shard, start_at)
            )
        ):
            raise UserError("--resume RUN continues a run as it was: give no scenario or overrides")
        outcome = supervisor.resume(
            resume,
            progress=progress_setting(progress, progress_interval),
            status_port=status_port,
            status_host=status_host,
            keep_serving=True,
        )
    else:
        if scenario is None:
            raise UserError("give a scenario file (or --resume RUN)")
        if clock is not None:
            parse_clock(clock)
        the_shard = parse_shard(shard) if shard is not None else None
        start_ns = parse_start_at(start_at) if start_at is not None else None
        check_run_id(run_id)
        sc = load_scenario(scenario, overrides(target, duration, seed), set_ or [])
        _warn_damaged_recordings(sc)
        if the_shard is not None and run_id is None and start_ns is not None:
            run_id = default_run_id(sc.name, start_ns)
        outcome = supervisor.run(
            sc,
            scenario_path=scenario,
            runs_dir=runs_dir,
            run_id=run_id,
            workers=workers,
            clock=clock,
            progress=progress_setting(progress, progress_interval),
            status_port=status_port,
            status_host=status_host,
            shard=the_shard,
            start_at_ns=start_ns,
            keep_serving=True,
        )
    if outcome.manifest is not None and outcome.manifest.shard is not None:
        if outcome.server is not None:
            outcome.server.close()
        _finish_shard(outcome)
    else:
        finish_run(outcome, report, summary_export, junit, linger_s)


def _finish_shard(outcome: Any) -> None:
    """After one shard: its folder, how it ended; results come from merging all shards."""
    shard = outcome.manifest.shard
    print(outcome.run_dir, flush=True)
    if outcome.state == "completed":
        sys.stderr.write(
            f"simd: shard {shard.index}/{shard.count} completed; merge the shards with "
            f"`simd ingest {outcome.run_dir.parent}`\n"
        )
        raise typer.Exit(EXIT_OK)
    fail(
        f"shard {shard.index}/{shard.count} {outcome.state}"
        + (f": {outcome.problems}" if outcome.problems else "")
        + f" (logs in {outcome.run_dir})",
        EXIT_RUN,
    )


def finish_run(
    outcome: Any,
    report: bool,
    summary_export: Path | None = None,
    junit: Path | None = None,
    linger_s: float = 0.0,
) -> None:
    """After a run: print its folder, ingest, report (and the JSON summary and JUnit XML when
    asked), and exit as its verdict says (simd.report.verdict); with `linger_s` the dashboard
    stays up that long after all that (or until Ctrl-C)."""
    import signal
    import threading

    server = outcome.server
    done = threading.Event()  # Ctrl-C while it lingers (or before): stop lingering
    old = {}
    if server is not None and linger_s > 0:  # Ctrl-C during the report ends the lingering
        old = {s: signal.signal(s, lambda *_: done.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _finish(outcome, report, summary_export, junit)
    finally:
        if server is not None:
            linger(server, linger_s, done)
        for s, h in old.items():
            signal.signal(s, h)


def linger(server: Any, seconds: float, done: Any) -> None:
    """Keep the status server and dashboard up for `seconds` or until `done` is set; close it."""
    try:
        if seconds > 0 and not done.is_set():
            sys.stderr.write(
                f"simd: the dashboard stays up on {server.url}/ for {seconds:g} s (--linger; "
                "Ctrl-C ends it)\n"
            )
            sys.stderr.flush()
            done.wait(seconds)
    finally:
        server.close()


def _finish(outcome: Any, report: bool, summary_export: Path | None, junit: Path | None) -> None:
    from simd.report.verdict import judge
    from simd.results.ingest import ingest

    print(outcome.run_dir, flush=True)
    if outcome.aborted_by:  # the user asked for "now": no ingest, no report
        fail(
            f"run aborted by {outcome.aborted_by} (logs readable in {outcome.run_dir}; "
            f"`simd ingest {outcome.run_dir}` reads them)",
            EXIT_RUN,
        )
    results = True
    try:
        warn_ingest(ingest(outcome.run_dir))
        if report:  # (--no-report: results.duckdb only; `simd report RUN` makes both later)
            _report_or_warn(outcome.run_dir)
        _export(outcome.run_dir, summary_export, junit)
    except UserError as exc:
        if outcome.state == "completed":
            raise
        # the run itself failed (a full disk, say): say so below, not this consequence
        sys.stderr.write(f"simd: warning: no results: {exc}\n")
        results = False
    try:
        verdict = judge(outcome.run_dir, outcome.state, outcome.problems, results)
    except (duckdb_error(), OSError) as exc:  # the SLOs could not be judged: say so, exit 1
        fail(f"could not check the SLOs: {first_line(exc)} (logs in {outcome.run_dir})", EXIT_SLO)
    for line in verdict.slo_failures:
        sys.stderr.write(f"simd: slo failed: {line}\n")
    if verdict.reason is not None:
        fail(verdict.reason, verdict.exit_code)
    raise typer.Exit(verdict.exit_code)


def _export(run_dir: Path, summary_export: Path | None, junit: Path | None) -> None:
    """--summary-export and --junit: written from the results like the report; a file that
    cannot be written is one line (exit 2), the run's results stay."""
    from simd.report.outputs import junit_xml, summary_json

    for path, make in ((summary_export, summary_json), (junit, junit_xml)):
        if path is None:
            continue
        try:
            path.write_text(make(run_dir))
        except OSError as exc:
            raise UserError(f"{path}: cannot write: {exc.strerror}") from None
        sys.stderr.write(f"simd: wrote {path}\n")


def _report_or_warn(run_dir: Path) -> None:
    """The terminal and HTML reports; one that the results file or the disk refuses is a
    one-line warning, not a traceback, and does not change how the run is judged (its results
    are in results.duckdb)."""
    from simd.report.html import write_html
    from simd.report.terminal import render_report

    try:
        render_report(run_dir, out)
        print(f"report: {write_html(run_dir)}", flush=True)
    except (duckdb_error(), OSError) as exc:
        sys.stderr.write(
            f"simd: warning: the report could not be made: {first_line(exc)}; the results "
            f"are in {run_dir / 'results.duckdb'} (`simd report {run_dir}` tries again)\n"
        )


def _warn_damaged_recordings(sc: Any) -> None:
    """A replay of a damaged recording plays what reads; say which span may be missing."""
    from simd.plan.replay import replay_plan

    for g in sc.fleet:
        if g.replay is not None:
            for d in replay_plan(g).recording.damaged:
                sys.stderr.write(f"simd: warning: recording {g.replay.recording}: {d.describe()}\n")


def check_run_id(run_id: str | None) -> None:
    if run_id is not None and ("/" in run_id or run_id in (".", "..")):
        raise UserError(f"--run-id {run_id!r}: a folder name, without '/'")


@app.command()
@guarded
def plan(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file, or - for standard input")],
    format: Annotated[str, format_option("table | json")] = "table",
    duration: Annotated[str | None, DURATION] = None,
    seed: Annotated[int | None, SEED] = None,
    shard: Annotated[
        str | None, typer.Option(help="I/N: only that shard's slice of the fleet")
    ] = None,
    set_: Annotated[list[str] | None, SET] = None,
) -> None:
    """Exact expected publishes per group and phase, peak rate and connections; runs nothing."""
    from simd.plan.inputs import load_scenario
    from simd.plan.schedule import plan_counts
    from simd.plan.shard import parse_shard

    if format not in ("table", "json"):
        raise UserError(f"--format {format!r}: use table or json")
    sc = load_scenario(scenario, overrides(None, duration, seed), set_ or [])
    devices = parse_shard(shard).devices(sc.device_count) if shard is not None else None
    p = plan_counts(sc, devices=devices)
    if format == "json":
        print(json.dumps(p.to_json(), indent=2))
        return
    t = Table(title=f"plan: {p.scenario}  ({p.duration_ns / 1e9:g}s, {p.devices:,} devices)")
    noun = "requests" if sc.target.startswith("http") else "publishes"
    for col in ("group", "phase", noun, "peak rate/s", "connections"):
        t.add_column(col, justify="left" if col in ("group", "phase") else "right")
    for g in p.groups:
        for ph in p.phases:
            t.add_row(
                g.name, ph, f"{g.per_phase[ph]:,}", f"{g.peak_rate[ph]:,.1f}", f"{g.devices:,}"
            )
    t.add_row("total", "", f"{p.total_publishes:,}", "", f"{p.devices:,}", style="bold")
    out.print(t)


@app.command()
@guarded
def replay(
    recording: Annotated[Path, typer.Argument(help="a .simrec recording or a .jsonl capture")],
    target: Annotated[
        str,
        typer.Option(
            "--target", "-T", help="where to publish: mqtt://host:port, embedded, sim:, null:"
        ),
    ] = "embedded",
    speed: Annotated[float, typer.Option(help="2 plays twice as fast")] = 1.0,
    loop: Annotated[
        int, typer.Option(min=0, help="times through the recording (0: until --duration)")
    ] = 1,
    fanout: Annotated[int, typer.Option(min=1, help="copies of every recorded device")] = 1,
    topic_map: Annotated[
        list[str] | None,
        typer.Option(help="FROM=TO: replace the topic prefix FROM with TO (repeat)"),
    ] = None,
    device_level: Annotated[
        str, typer.Option(help="topic level naming the device: auto, topic, or 0, 1, ...")
    ] = "auto",
    qos: Annotated[
        int | None, typer.Option(min=0, max=2, help="instead of the recorded qos")
    ] = None,
    lead_in: Annotated[str, typer.Option(help="when the first message plays")] = "1s",
    mqtt_version: Annotated[str, typer.Option(help="5 | 3.1.1")] = "3.1.1",
    duration: Annotated[
        str | None,
        typer.Option("--duration", "-d", help="run this long (default: to the last message)"),
    ] = None,
    workers: Annotated[int | None, WORKERS] = None,
    clock: Annotated[str | None, CLOCK] = None,
    runs_dir: Annotated[Path, RUNS_DIR] = Path("runs"),
    run_id: Annotated[str | None, RUN_ID] = None,
    progress: Annotated[bool, PROGRESS] = True,
    report: Annotated[bool, REPORT] = True,
    status_port: Annotated[
        int | None, typer.Option(help="/status and /metrics port (0 a free one, -1 none)")
    ] = None,
) -> None:
    """Replay a recording: each recorded device publishes its messages at their recorded times
    (scaled by --speed), logged like any run, with replay fidelity in the report."""
    from simd.runtime.preload import preload_workers

    preload_workers()
    from simd.clock import parse_clock
    from simd.runtime import supervisor

    if clock is not None:
        parse_clock(clock)
    check_run_id(run_id)
    source: dict[str, Any] = {
        "recording": str(recording),
        "speed": speed,
        "loop": loop,
        "fanout": fanout,
        "topic_map": _topic_mapping(topic_map or []),
        "device_level": int(device_level) if device_level.isdigit() else device_level,
        "lead_in": lead_in,
    }
    if qos is not None:
        source["qos"] = qos
    sc = _replay_scenario(recording, target, source, mqtt_version, duration)
    _warn_damaged_recordings(sc)
    outcome = supervisor.run(
        sc,
        scenario_path=recording.resolve(),
        runs_dir=runs_dir,
        run_id=run_id,
        workers=workers,
        clock=clock,
        progress=progress,
        status_port=status_port,
    )
    finish_run(outcome, report)


def _topic_mapping(items: list[str]) -> dict[str, str]:
    """--topic-map FROM=TO flags as a mapping."""
    mapping: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old:
            raise UserError(
                f"--topic-map {item!r}: expected FROM=TO (a topic prefix and its new one)"
            )
        mapping[old] = new
    return mapping


def _replay_scenario(
    recording: Path, target: str, source: dict[str, Any], version: str, duration: str | None
) -> Any:
    """The one-group scenario `simd replay` runs, resolved against the recording; its errors
    name the flags, not the scenario keys they became."""
    import re

    from simd.model.scenario import parse_scenario
    from simd.plan.replay import expand_replays

    data: dict[str, Any] = {
        "name": "replay-" + re.sub(r"[^\w.-]", "_", recording.stem),
        "target": target,
        "fleet": [{"name": "replay", "replay": source, "mqtt": {"version": version}}],
    }
    if duration is not None:
        data["duration"] = duration
    try:
        return expand_replays(parse_scenario(data, str(recording)), Path.cwd(), str(recording))
    except ScenarioError as exc:
        lines = []
        for p in exc.problems:
            p = re.sub(r"^fleet\[0\]\.replay\.recording: ('[^']*' )?", "", p)
            p = re.sub(r"^fleet\[0\]\.replay\.(\w+)", lambda m: "--" + m[1].replace("_", "-"), p)
            lines.append(p)
        raise ScenarioError(str(recording), lines) from None


@app.command()
@guarded
def capacity(
    scenario: Annotated[
        Path, typer.Argument(help="scenario TOML file, or - (its \\[slo] is the limit)")
    ],
    start: Annotated[
        float | None, typer.Option(min=0.001, help="first step, msg/s (default: the scenario's)")
    ] = None,
    factor: Annotated[float, typer.Option(min=1.01, help="each coarse step x this")] = 1.25,
    steps: Annotated[int, typer.Option(min=2, max=200, help="coarse steps at most")] = 16,
    step: Annotated[str, typer.Option(help="time per step")] = "30s",
    refine: Annotated[
        int, typer.Option(min=0, max=50, help="fine steps between the last held and the knee")
    ] = 4,
    target: Annotated[str | None, TARGET] = None,
    workers: Annotated[int | None, WORKERS] = None,
    clock: Annotated[str | None, CLOCK] = None,
    runs_dir: Annotated[Path, RUNS_DIR] = Path("runs"),
    run_id: Annotated[str | None, typer.Option(help="the search's folder name")] = None,
    progress: Annotated[bool, PROGRESS] = True,
    set_: Annotated[list[str] | None, SET] = None,
) -> None:
    """Find the highest rate that holds the scenario's SLOs: load steps up to the knee, then
    finer ones below it; each step is a phase of the run's log. Writes capacity.json and
    capacity.html (rate vs latency, knee marked); says whether the generator or the target
    was the limit. Exit 1 if even the first step broke an SLO."""
    from simd.model.durations import parse_duration_ns
    from simd.ops.capacity import SearchOptions, describe, run_search, verdict, write_outputs
    from simd.plan.inputs import load_scenario
    from simd.runtime.supervisor import new_run_id

    try:
        step_ns = parse_duration_ns(step)
    except ValueError as exc:
        raise UserError(f"--step {step!r}: {exc}") from None
    check_run_id(run_id)
    sc = load_scenario(scenario, overrides(target, None, None), set_ or [])
    opts = SearchOptions(start, factor, steps, step_ns, refine)
    folder, search = run_search(
        sc,
        scenario_path=scenario,
        runs_dir=runs_dir,
        run_id=run_id or new_run_id(f"{sc.name}-capacity"),
        opts=opts,
        workers=workers,
        clock=clock,
        progress=progress,
    )
    print(folder, flush=True)
    t = Table(title="capacity search: one phase per step")
    cols = ("pass", "step", "offered/s", "achieved/s", "p99 ms", "p99 sent ms", "lag p99 ms")
    for col in (*cols, "errors", "verdict"):
        t.add_column(col, justify="left" if col in ("pass", "step", "verdict") else "right")
    for name, ps in search.passes.items():
        for st in ps:
            t.add_row(
                name, st.name, f"{st.offered_per_s:,.0f}", f"{st.achieved_per_s:,.0f}",
                *[figure(v, "ns").removesuffix(" ms") for v in
                  (st.latency_p99_ns, st.latency_p99_sent_ns, st.lag_p99_ns)],
                f"{st.error_rate:.3%}", verdict(st),
            )  # fmt: skip
    out.print(t)
    print(describe(search))
    j, h = write_outputs(folder, search)
    print(f"capacity: {j}  {h}")
    if search.sustainable_per_s is None and search.knee is not None:
        raise typer.Exit(EXIT_SLO)
