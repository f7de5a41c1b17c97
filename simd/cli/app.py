"""The `simd` command line: thin. Parses, calls library functions, renders; maps errors to exits.

Exit codes (the README's contract): 0 done and SLOs met, 1 an SLO failed, 2 bad input,
3 the run could not complete.
"""

from __future__ import annotations

import csv
import json
import signal
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from simd.errors import RunError, ScenarioError, UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Simulate fleets of IoT devices against real message systems.",
)
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_SLO, EXIT_INPUT, EXIT_RUN = 0, 1, 2, 3


def _fail(message: str, code: int) -> None:
    for line in message.splitlines():
        sys.stderr.write(f"simd: error: {line}\n")
    raise typer.Exit(code)


def guarded(fn: F) -> F:
    """User errors become one line per problem and exit 2; run failures exit 3."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ScenarioError as exc:
            _fail(str(exc), EXIT_INPUT)
        except UserError as exc:
            _fail(str(exc), EXIT_INPUT)
        except RunError as exc:
            _fail(str(exc), EXIT_RUN)
        except duckdb_error() as exc:  # a results file that cannot answer: one line, not a trace
            _fail(f"results: {_first_line(exc)}", EXIT_RUN)
        except KeyboardInterrupt as exc:
            by = f" by {exc.args[0]}" if exc.args else ""
            _fail(f"interrupted{by}; what was written so far is kept", EXIT_RUN)

    return wrapper  # type: ignore[return-value]


def _overrides(target: str | None, duration: str | None, seed: int | None) -> dict[str, Any]:
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
        Path | None, typer.Argument(help="scenario TOML file (not with --resume)")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="worker processes (default: one per core)")
    ] = None,
    clock: Annotated[str | None, typer.Option(help="real | scaled:N | virtual")] = None,
    target: Annotated[str | None, typer.Option(help="override the scenario's target URL")] = None,
    duration: Annotated[str | None, typer.Option(help="override the duration, e.g. 30s")] = None,
    seed: Annotated[int | None, typer.Option(help="override the seed")] = None,
    runs_dir: Annotated[Path, typer.Option(help="where run folders go")] = Path("runs"),
    run_id: Annotated[str | None, typer.Option(help="the run folder's name")] = None,
    progress: Annotated[bool, typer.Option(help="live progress on stderr")] = True,
    report: Annotated[
        bool, typer.Option(help="print the report at the end and write RUN/report.html")
    ] = True,
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
) -> None:
    """Run a scenario: workers publish, every event is logged, then ingest, report and check.

    With --shard I/N --start-at T the run is one shard of a distributed run: it writes its
    logs only; `simd ingest RUNS/ID` merges the shards and reports on the whole fleet."""
    from simd.clock import parse_clock
    from simd.model.scenario import load_scenario
    from simd.plan.shard import default_run_id, parse_shard, parse_start_at
    from simd.runtime import supervisor

    if resume is not None:
        if scenario is not None or any(
            v is not None for v in (workers, clock, target, duration, seed, run_id, shard, start_at)
        ):
            raise UserError("--resume RUN continues a run as it was: give no scenario or overrides")
        outcome = supervisor.resume(
            resume, progress=progress, status_port=status_port, status_host=status_host
        )
    else:
        if scenario is None:
            raise UserError("give a scenario file (or --resume RUN)")
        if clock is not None:
            parse_clock(clock)
        the_shard = parse_shard(shard) if shard is not None else None
        start_ns = parse_start_at(start_at) if start_at is not None else None
        _check_run_id(run_id)
        sc = load_scenario(scenario, _overrides(target, duration, seed))
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
            progress=progress,
            status_port=status_port,
            status_host=status_host,
            shard=the_shard,
            start_at_ns=start_ns,
        )
    if "shard" in outcome.manifest:
        _finish_shard(outcome)
    else:
        _finish(outcome, report)


def _finish_shard(outcome: Any) -> None:
    """After one shard: its folder, how it ended; results come from merging all shards."""
    shard = outcome.manifest["shard"]
    print(outcome.run_dir, flush=True)
    if outcome.state == "completed":
        sys.stderr.write(
            f"simd: shard {shard['index']}/{shard['count']} completed; merge the shards with "
            f"`simd ingest {outcome.run_dir.parent}`\n"
        )
        raise typer.Exit(EXIT_OK)
    _fail(
        f"shard {shard['index']}/{shard['count']} {outcome.state}"
        + (f": {outcome.problems}" if outcome.problems else "")
        + f" (logs in {outcome.run_dir})",
        EXIT_RUN,
    )


def _finish(outcome: Any, report: bool) -> None:
    """After a run: print its folder, ingest, report, and exit as the contract says."""
    from simd.report.html import write_html
    from simd.report.terminal import check, render_report
    from simd.results.ingest import ingest

    print(outcome.run_dir, flush=True)
    if outcome.aborted_by:  # the user asked for "now": no ingest, no report
        _fail(
            f"run aborted by {outcome.aborted_by} (logs readable in {outcome.run_dir}; "
            f"`simd ingest {outcome.run_dir}` reads them)",
            EXIT_RUN,
        )
    try:
        result = ingest(outcome.run_dir)
        _warn_ingest(result)
        if report:  # (--no-report: results.duckdb only; `simd report RUN` makes both later)
            _report_or_warn(outcome.run_dir, render_report, write_html)
    except UserError as exc:
        if outcome.state == "completed":
            raise
        # the run itself failed (a full disk, say): say so below, not this consequence
        sys.stderr.write(f"simd: warning: no results: {exc}\n")
    else:
        _fail_if_never_connected(outcome.run_dir)
        _fail_if_nothing_completed(outcome.run_dir)
    if outcome.state == "stopped":
        _fail(
            f"run stopped by a signal before its end (logs and report in {outcome.run_dir})",
            EXIT_RUN,
        )
    if outcome.state in ("failed", "aborted"):
        _fail(
            f"run {outcome.state}: {outcome.problems or 'interrupted'} (logs in {outcome.run_dir})",
            EXIT_RUN,
        )
    try:
        failed = [s for s in check(outcome.run_dir) if not s.passed]
    except (duckdb_error(), OSError) as exc:  # the SLOs could not be judged: say so, exit 1
        _fail(f"could not check the SLOs: {_first_line(exc)} (logs in {outcome.run_dir})", 1)
    if failed:
        for s in failed:
            sys.stderr.write(f"simd: slo failed: {s.describe()}\n")
        raise typer.Exit(EXIT_SLO)


def duckdb_error() -> type[Exception]:
    import duckdb

    return duckdb.Error


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _report_or_warn(run_dir: Path, render: Any, write_html: Any) -> None:
    """The terminal and HTML reports; one that fails is a one-line warning, not a traceback,
    and does not change how the run is judged (its results are in results.duckdb)."""
    try:
        render(run_dir, out)
        print(f"report: {write_html(run_dir)}", flush=True)
    except (duckdb_error(), OSError, ValueError, KeyError, TypeError) as exc:
        sys.stderr.write(
            f"simd: warning: the report could not be made: {_first_line(exc)}; the results "
            f"are in {run_dir / 'results.duckdb'} (`simd report {run_dir}` tries again)\n"
        )


def _warn_damaged_recordings(sc: Any) -> None:
    """A replay of a damaged recording plays what reads; say which span may be missing."""
    from simd.plan.replay import replay_plan

    for g in sc.fleet:
        if g.replay is not None:
            for d in replay_plan(g).recording.damaged:
                sys.stderr.write(f"simd: warning: recording {g.replay.recording}: {d.describe()}\n")


def _warn_ingest(r: Any) -> None:
    """What ingest could not read, on stderr: damage loudly, torn tails and unreadable files."""
    for d in r.damaged:
        sys.stderr.write(f"simd: warning: LOG DAMAGED: {d}; every frame after it was read\n")
    for t in r.torn:
        sys.stderr.write(f"simd: warning: {t}\n")
    for u in r.unreadable:
        sys.stderr.write(f"simd: warning: {u}\n")


def _check_run_id(run_id: str | None) -> None:
    if run_id is not None and ("/" in run_id or run_id in (".", "..")):
        raise UserError(f"--run-id {run_id!r}: a folder name, without '/'")


def _fail_if_never_connected(run_dir: Path) -> None:
    """A real target none of whose devices ever connected: the run could not go on (exit 3)."""
    from simd.model.manifest import read_manifest
    from simd.results.ingest import query
    from simd.transports import does_real_io

    manifest = read_manifest(run_dir)
    if not does_real_io(manifest["target"]):
        return
    _, rows = query(
        run_dir,
        "SELECT count(*) FILTER (WHERE kind = 1 AND status = 7), "
        "count(*) FILTER (WHERE kind = 1) FROM status_totals",
    )
    ok, attempts = rows[0]
    if attempts and not ok:
        _, err = query(run_dir, "SELECT error FROM errors_by_kind WHERE kind = 'connect' LIMIT 1")
        why = err[0][0] if err else "no connection"
        _fail(
            f"no device could connect to {manifest['target_url']}: {why} (logs in {run_dir})",
            EXIT_RUN,
        )


def _fail_if_nothing_completed(run_dir: Path) -> None:
    """Publishes were logged and not one completed (every one refused, timed out, errored):
    the run did not do what it was asked, whatever its SLOs say (exit 3, the main reason)."""
    from simd.results.ingest import query

    _, rows = query(run_dir, "SELECT logged, completed FROM run_summary")
    logged, completed = rows[0]
    if not logged or completed:
        return
    _, top = query(
        run_dir,
        "SELECT status, error, count FROM errors_by_kind WHERE kind = 'publish' "
        "ORDER BY count DESC LIMIT 1",
    )
    why = f"{top[0][2]:,} {top[0][0]}" + (f": {top[0][1]}" if top[0][1] else "") if top else "?"
    _fail(
        f"no publish completed ({logged:,} logged; most: {why}) (logs in {run_dir})",
        EXIT_RUN,
    )


@app.command()
@guarded
def plan(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
    format: Annotated[str, typer.Option("--format", help="table | json")] = "table",
    duration: Annotated[str | None, typer.Option(help="override the duration")] = None,
    seed: Annotated[int | None, typer.Option(help="override the seed")] = None,
    shard: Annotated[
        str | None, typer.Option(help="I/N: only that shard's slice of the fleet")
    ] = None,
) -> None:
    """Exact expected publishes per group and phase, peak rate and connections; runs nothing."""
    from simd.model.scenario import load_scenario
    from simd.plan.schedule import plan_counts
    from simd.plan.shard import parse_shard

    if format not in ("table", "json"):
        raise UserError(f"--format {format!r}: use table or json")
    sc = load_scenario(scenario, _overrides(None, duration, seed))
    devices = parse_shard(shard).devices(sc.device_count) if shard is not None else None
    p = plan_counts(sc, devices=devices)
    if format == "json":
        print(json.dumps(p.to_json(), indent=2))
        return
    t = Table(title=f"plan: {p.scenario}  ({p.duration_ns / 1e9:g}s, {p.devices:,} devices)")
    for col in ("group", "phase", "publishes", "peak rate/s", "connections"):
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
def broker(
    kind: Annotated[
        str | None, typer.Option(help="mosquitto | amqtt (default: the best here)")
    ] = None,
    port: Annotated[int, typer.Option(help="loopback port (0: a free one)")] = 0,
) -> None:
    """Run the embedded MQTT broker on loopback until Ctrl-C; prints its URL first."""
    import signal
    import time

    from simd.runtime.broker import EmbeddedBroker

    stop = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with EmbeddedBroker(kind, port=port) as b:
        print(b.url, flush=True)
        sys.stderr.write(f"simd: {b.kind} listening on {b.url}; Ctrl-C stops it\n")
        while not stop:
            if b.proc is not None and b.proc.poll() is not None:
                raise RunError(f"broker exited: {b.log_tail()}")
            time.sleep(0.2)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editors)."""
    from simd.model.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))


@app.command()
@guarded
def inspect(
    path: Annotated[Path, typer.Argument(help="a run folder, its events/ folder or a .simlog")],
) -> None:
    """Segments, frames, rows and any torn tail of an event log, or what a recording holds."""
    from simd.errors import LogFormatError
    from simd.log.eventlog import read_segment, segment_paths
    from simd.log.recording import MAGIC

    if path.is_file() and (path.suffix in (".jsonl", ".ndjson") or _starts_with(path, MAGIC)):
        _inspect_recording(path)
        return
    if path.is_file():
        paths = [path]
    elif (path / "events").is_dir():
        paths = segment_paths(path / "events")
    elif path.is_dir():
        paths = segment_paths(path)
    else:
        raise UserError(f"{path}: no such file or folder")
    if not paths:
        raise UserError(f"{path}: no event log segments found")
    t = Table()
    for col in ("segment", "run", "worker", "frames", "rows", "bytes", "damage", "torn tail"):
        t.add_column(col)
    total = 0
    torn_any = False
    damaged: list[str] = []
    for p in paths:
        try:
            info, _ = read_segment(p)
        except LogFormatError as exc:
            t.add_row(p.name, "-", "-", "-", "-", str(p.stat().st_size), f"unreadable: {exc}", "-")
            damaged.append(f"{p.name}: unreadable")
            continue
        total += info.rows
        torn = "-"
        if info.torn:
            torn_any = True
            torn = f"at byte {info.torn.offset}: {info.torn.size} bytes, {info.torn.reason}"
        damaged += [f"{p.name}: {d.describe()}" for d in info.damaged]
        t.add_row(
            p.name,
            str(info.header["run"]),
            str(info.header["worker"]),
            f"{info.frames:,}",
            f"{info.rows:,}",
            f"{info.valid_bytes:,}",
            "; ".join(d.describe() for d in info.damaged) or "-",
            torn,
        )
    out.print(t)
    out.print(
        f"{len(paths)} segment(s), {total:,} rows"
        + ("; torn tail(s) reported above" if torn_any else "")
    )
    for d in damaged:
        sys.stderr.write(f"simd: warning: LOG DAMAGED: {d}; every frame after it was read\n")
    if damaged:
        raise typer.Exit(EXIT_SLO)


@app.command()
@guarded
def record(
    url: Annotated[str, typer.Argument(help="broker URL: mqtt://, mqtts://, ws://, wss://")],
    topic: Annotated[
        list[str], typer.Option("--topic", "-t", help="a topic filter to subscribe to (repeat)")
    ],
    out: Annotated[Path, typer.Option(help="the recording to write, e.g. recordings/x.simrec")],
    duration: Annotated[
        str | None, typer.Option(help="stop after this long (default: until Ctrl-C)")
    ] = None,
    qos: Annotated[int, typer.Option(min=0, max=2, help="subscription qos")] = 1,
    mqtt_version: Annotated[str, typer.Option(help="5 | 3.1.1")] = "5",
    client_id: Annotated[str | None, typer.Option(help="default: simd-record-<pid>-<n>")] = None,
    username: Annotated[str | None, typer.Option(help="user name")] = None,
    password_env: Annotated[
        str | None, typer.Option(help="environment variable holding the password")
    ] = None,
    ca_file: Annotated[Path | None, typer.Option(help="CA certificates (mqtts://)")] = None,
    insecure: Annotated[bool, typer.Option(help="do not verify TLS certificates")] = False,
) -> None:
    """Subscribe to a broker and write every message it delivers to a recording."""
    import os

    from simd.model.durations import parse_duration_ns
    from simd.model.scenario import TlsOptions
    from simd.transports.mqtt.recorder import RecordOptions
    from simd.transports.mqtt.recorder import record as do_record

    if mqtt_version not in ("5", "3.1.1"):
        raise UserError(f"--mqtt-version {mqtt_version!r}: 5 or 3.1.1")
    password = None
    if password_env is not None:
        value = os.environ.get(password_env)
        if value is None:
            raise UserError(f"--password-env: environment variable {password_env} is not set")
        password = value.encode()
    if out.exists() and out.is_dir():
        raise UserError(f"--out {out}: is a folder; give a file name such as {out}/x.simrec")
    opts = RecordOptions(
        url=url,
        filters=topic,
        out=out,
        duration_s=parse_duration_ns(duration) / 1e9 if duration is not None else None,
        qos=qos,
        version=mqtt_version,
        client_id=client_id,
        username=username,
        password=password,
        tls=TlsOptions(ca_file=str(ca_file) if ca_file else None, verify=not insecure),
    )

    def say(line: str) -> None:
        sys.stderr.write(f"simd: record: {line}\n")
        sys.stderr.flush()

    say(f"recording {', '.join(topic)} to {out} ({duration or 'until Ctrl-C'})")
    r = do_record(opts, say)
    print(
        f"recorded {r.messages:,} messages ({r.bytes:,} payload bytes) on {r.topics:,} topics "
        f"in {r.duration_s:.1f}s, {r.reconnects} reconnect(s), stopped by {r.stopped_by}: "
        f"{r.path}",
        flush=True,
    )


@app.command("import")
@guarded
def import_cmd(
    capture: Annotated[Path, typer.Argument(help="a JSON-lines capture (one message per line)")],
    out: Annotated[Path, typer.Option(help="the recording to write")],
) -> None:
    """Convert a JSON-lines capture made by another tool into a recording."""
    from simd.log.capture import import_jsonl
    from simd.log.recording import write_recording

    rec = import_jsonl(capture)
    path = write_recording(rec, out)
    print(
        f"imported {len(rec):,} messages on {len(set(rec.topic)):,} topics spanning "
        f"{rec.duration_ns / 1e9:.3f}s: {path}",
        flush=True,
    )


@app.command()
@guarded
def replay(
    recording: Annotated[Path, typer.Argument(help="a .simrec recording or a .jsonl capture")],
    target: Annotated[
        str, typer.Option(help="where to publish: mqtt://host:port, embedded, sim:, null:")
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
        str | None, typer.Option(help="run this long (default: to the last message)")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="worker processes")] = None,
    clock: Annotated[str | None, typer.Option(help="real | scaled:N | virtual")] = None,
    runs_dir: Annotated[Path, typer.Option(help="where run folders go")] = Path("runs"),
    run_id: Annotated[str | None, typer.Option(help="the run folder's name")] = None,
    progress: Annotated[bool, typer.Option(help="live progress on stderr")] = True,
    report: Annotated[
        bool, typer.Option(help="print the report at the end and write RUN/report.html")
    ] = True,
    status_port: Annotated[
        int | None, typer.Option(help="/status and /metrics port (0 a free one, -1 none)")
    ] = None,
) -> None:
    """Replay a recording: each recorded device publishes its messages at their recorded times
    (scaled by --speed), logged like any run, with replay fidelity in the report."""
    import re

    from simd.clock import parse_clock
    from simd.model.scenario import parse_scenario
    from simd.plan.replay import expand_replays
    from simd.runtime import supervisor

    if clock is not None:
        parse_clock(clock)
    _check_run_id(run_id)
    mapping: dict[str, str] = {}
    for item in topic_map or []:
        old, sep, new = item.partition("=")
        if not sep or not old:
            raise UserError(
                f"--topic-map {item!r}: expected FROM=TO (a topic prefix and its new one)"
            )
        mapping[old] = new
    level: int | str = int(device_level) if device_level.isdigit() else device_level
    source: dict[str, Any] = {
        "recording": str(recording),
        "speed": speed,
        "loop": loop,
        "fanout": fanout,
        "topic_map": mapping,
        "device_level": level,
        "lead_in": lead_in,
    }
    if qos is not None:
        source["qos"] = qos
    data: dict[str, Any] = {
        "name": "replay-" + re.sub(r"[^\w.-]", "_", recording.stem),
        "target": target,
        "fleet": [{"name": "replay", "replay": source, "mqtt": {"version": mqtt_version}}],
    }
    if duration is not None:
        data["duration"] = duration
    try:
        sc = expand_replays(parse_scenario(data, str(recording)), Path.cwd(), str(recording))
    except ScenarioError as exc:  # name the flags, not the scenario keys they became
        lines = []
        for p in exc.problems:
            p = re.sub(r"^fleet\[0\]\.replay\.recording: ('[^']*' )?", "", p)
            p = re.sub(r"^fleet\[0\]\.replay\.(\w+)", lambda m: "--" + m[1].replace("_", "-"), p)
            lines.append(p)
        raise ScenarioError(str(recording), lines) from None
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
    _finish(outcome, report)


def _starts_with(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read(len(magic)) == magic


def _inspect_recording(path: Path) -> None:
    """A recording's header, messages, topics, gaps, torn tail, and how a replay maps it."""
    from datetime import UTC, datetime

    import numpy as np

    from simd.log.recording import read_recording
    from simd.model.scenario import ReplaySource
    from simd.plan.replay import build_plan

    rec = read_recording(path)
    h = rec.header
    t0 = datetime.fromtimestamp((h.get("t0_epoch_ns") or 0) / 1e9, UTC)
    out.print(f"recording {path}")
    out.print(
        f"  source {h.get('source')}  filters {', '.join(h.get('filters') or []) or '-'}"
        f"  mqtt {h.get('mqtt_version') or '-'}  t0 {t0.isoformat(timespec='milliseconds')}"
    )
    qos = np.bincount(rec.qos, minlength=3) if len(rec) else np.zeros(3, dtype=np.int64)
    end = "closed cleanly" if rec.end_ns is not None else "no clean close"
    out.print(
        f"  {len(rec):,} messages in {rec.frames:,} frames, {int(rec.payload.lengths.sum()):,} "
        f"payload bytes, {len(set(rec.topic)):,} topics, {rec.duration_ns / 1e9:.3f}s ({end}); "
        f"qos 0/1/2: {qos[0]:,}/{qos[1]:,}/{qos[2]:,}, retained {int(rec.retain.sum()):,}, "
        f"with properties {len(rec.properties):,}"
    )
    for lost, back, why in rec.gaps:
        out.print(f"  gap {lost / 1e9:.3f}s .. {back / 1e9:.3f}s: {why}")
    if rec.torn is not None:
        out.print(
            f"  torn tail at byte {rec.torn.offset}: {rec.torn.size} bytes, {rec.torn.reason} "
            "(the messages before it read and replay)"
        )
    for d in rec.damaged:
        out.print(f"  {d.describe()} (every frame after it read and replays)")
    if len(rec):
        plan = build_plan(rec, ReplaySource(recording=str(path)), str(path))
        out.print(
            f"  replay (device_level auto): {plan.sources:,} devices, "
            f"{plan.mean_rate_per_device:.3g} msg/s each on average, topics:"
        )
        for t, q in zip(plan.templates, plan.template_qos, strict=True):
            out.print(f"    {t}  (qos {q})")
    for d in rec.damaged:
        sys.stderr.write(f"simd: warning: RECORDING DAMAGED: {path}: {d.describe()}\n")
    if rec.damaged:
        raise typer.Exit(EXIT_SLO)


@app.command()
@guarded
def capacity(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file (its [slo] is the limit)")],
    start: Annotated[
        float | None, typer.Option(min=0.001, help="first step, msg/s (default: the scenario's)")
    ] = None,
    factor: Annotated[float, typer.Option(min=1.01, help="each coarse step x this")] = 1.25,
    steps: Annotated[int, typer.Option(min=2, max=200, help="coarse steps at most")] = 16,
    step: Annotated[str, typer.Option(help="time per step")] = "30s",
    refine: Annotated[
        int, typer.Option(min=0, max=50, help="fine steps between the last held and the knee")
    ] = 4,
    target: Annotated[str | None, typer.Option(help="override the scenario's target URL")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="worker processes")] = None,
    clock: Annotated[str | None, typer.Option(help="real | scaled:N | virtual")] = None,
    runs_dir: Annotated[Path, typer.Option(help="where run folders go")] = Path("runs"),
    run_id: Annotated[str | None, typer.Option(help="the search's folder name")] = None,
    progress: Annotated[bool, typer.Option(help="live progress on stderr")] = True,
) -> None:
    """Find the highest rate that holds the scenario's SLOs: load steps up to the knee, then
    finer ones below it; each step is a phase of the run's log. Writes capacity.json and
    capacity.html (rate vs latency, knee marked); says whether the generator or the target
    was the limit. Exit 1 if even the first step broke an SLO."""
    from simd.model.durations import parse_duration_ns
    from simd.model.scenario import load_scenario
    from simd.ops.capacity import SearchOptions, describe, run_search, verdict, write_outputs
    from simd.runtime.supervisor import new_run_id

    try:
        step_ns = parse_duration_ns(step)
    except ValueError as exc:
        raise UserError(f"--step {step!r}: {exc}") from None
    _check_run_id(run_id)
    sc = load_scenario(scenario, _overrides(target, None, None))
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
                *[_figure(v, "ns").removesuffix(" ms") for v in
                  (st.latency_p99_ns, st.latency_p99_sent_ns, st.lag_p99_ns)],
                f"{st.error_rate:.3%}", verdict(st),
            )  # fmt: skip
    out.print(t)
    print(describe(search))
    j, h = write_outputs(folder, search)
    print(f"capacity: {j}  {h}")
    if search.sustainable_per_s is None and search.knee is not None:
        raise typer.Exit(EXIT_SLO)


k8s_app = typer.Typer(no_args_is_help=True, help="Kubernetes: run a scenario as N shards.")
app.add_typer(k8s_app, name="k8s")


@k8s_app.command("render")
@guarded
def k8s_render(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
    shards: Annotated[int, typer.Option(min=1, help="shard pods (an Indexed Job's completions)")],
    image: Annotated[str, typer.Option(help="the simd image (built from the Containerfile)")],
    run_id: Annotated[str | None, typer.Option(help="default: <name>-<start time, UTC>")] = None,
    start_at: Annotated[
        str, typer.Option(help="shared t=0: epoch seconds, ISO 8601, or +DURATION from now")
    ] = "+5m",
    namespace: Annotated[str | None, typer.Option(help="namespace of every object")] = None,
    storage_class: Annotated[
        str | None, typer.Option(help="for the logs volume (ReadWriteMany)")
    ] = None,
    storage_size: Annotated[str, typer.Option(help="logs volume size")] = "10Gi",
    cpu: Annotated[int, typer.Option(min=1, help="cores per shard pod (= its workers)")] = 2,
    memory: Annotated[str, typer.Option(help="memory per shard pod")] = "2Gi",
    target: Annotated[str | None, typer.Option(help="override the scenario's target URL")] = None,
    out: Annotated[Path | None, typer.Option(help="write here (default: stdout)")] = None,
) -> None:
    """Kubernetes manifests for a sharded run: ConfigMap (scenario, start), logs volume, an
    Indexed Job of shards and the ingest Job that merges them (see deploy/README.md)."""
    import time

    from simd.model.durations import parse_duration_ns
    from simd.model.scenario import load_scenario
    from simd.ops.k8s import RenderOptions, render, scenario_files, secret_command, to_yaml
    from simd.plan.shard import check_start_at, parse_start_at

    now = time.time_ns()
    if start_at.startswith("+"):
        try:
            start_ns = now + parse_duration_ns(start_at[1:])
        except ValueError as exc:
            raise UserError(f"--start-at {start_at!r}: {exc}") from None
    else:
        start_ns = parse_start_at(start_at)
    check_start_at(start_ns, now)
    _check_run_id(run_id)
    raw = load_scenario(scenario, _overrides(target, None, None), expand=False)
    loaded = load_scenario(scenario, _overrides(target, None, None))
    opts = RenderOptions(
        shards=shards,
        image=image,
        run_id=run_id,
        start_at_ns=start_ns,
        lead_s=(start_ns - now) / 1e9,
        namespace=namespace,
        storage_class=storage_class,
        storage_size=storage_size,
        cpu=cpu,
        memory=memory,
        target=target,
    )
    manifests = render(scenario, raw, loaded, opts)
    text = to_yaml(manifests)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        sys.stderr.write(f"simd: wrote {len(manifests)} objects to {out}\n")
    cmd = secret_command(manifests, scenario_files(scenario, raw))
    if cmd:
        sys.stderr.write(f"simd: the pods read secrets from a Secret; create it first:\n  {cmd}\n")


@app.command("ingest")
@guarded
def ingest_cmd(
    run: Annotated[
        list[str],
        typer.Argument(help="a run folder; or shard folders of one run (globs too), or its folder"),
    ],
    out: Annotated[
        Path | None, typer.Option(help="shards: where the merged results go (default their folder)")
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="keep ingesting new frames while the run writes, until it ends"
        ),
    ] = False,
    interval: Annotated[str, typer.Option(help="--follow: time between passes")] = "1s",
    timeout: Annotated[
        str | None,
        typer.Option(help="--follow: give up waiting (for missing shards too) after this"),
    ] = None,
) -> None:
    """Load the run's event logs into results.duckdb (idempotent, incremental); shards of one
    run are merged into one results.duckdb, and missing shards reported as gaps."""
    from simd.model.durations import parse_duration_ns
    from simd.results.ingest import follow as follow_run
    from simd.results.ingest import ingest

    def seconds(flag: str, text: str) -> float:
        try:
            return parse_duration_ns(text) / 1e9
        except ValueError as exc:
            raise UserError(f"--{flag} {text!r}: {exc}") from None

    paths: list[str | Path] = list(run)
    if follow:
        every = seconds("interval", interval)
        limit = None if timeout is None else seconds("timeout", timeout)

        def show(r: Any, state: str) -> None:
            if r.rows:
                print(f"ingested {r.rows:,} new rows (run {state})", flush=True)

        try:
            r = follow_run(paths, every, on_pass=show, out=out, timeout_s=limit)
        except KeyboardInterrupt:
            print("stopped following; what was ingested is kept", flush=True)
            return
    else:
        if timeout is not None:
            raise UserError("--timeout goes with --follow")
        r = ingest(paths, out)
    _warn_ingest(r)
    for g in r.gaps:
        sys.stderr.write(f"simd: warning: {g}\n")
    print(
        f"ingested {r.rows:,} new rows from {r.frames:,} frames in {r.segments} segment(s)"
        + (f" (run {r.state})" if r.state and r.state != "completed" else "")
    )


@app.command("report")
@guarded
def report_cmd(
    run: Annotated[Path, typer.Argument(help="run folder")],
    html: Annotated[
        Path | None, typer.Option(help="write the HTML report here (default RUN/report.html)")
    ] = None,
    write_html: Annotated[
        bool, typer.Option("--write-html/--no-html", help="write the HTML report")
    ] = True,
) -> None:
    """Totals, throughput, latency percentiles, schedule lag, errors, per group and phase;
    and a self-contained HTML page with the plots."""
    from simd.report.html import write_html as write_page
    from simd.report.terminal import render_report

    render_report(run, out)
    if write_html or html is not None:
        print(f"report: {write_page(run, html)}")


@app.command("check")
@guarded
def check_cmd(run: Annotated[Path, typer.Argument(help="run folder")]) -> None:
    """Check the scenario's SLOs; exit 1 naming each failed one and by how much."""
    from simd.report.terminal import check

    results = check(run)
    if not results:
        print("no SLOs in the scenario")
        return
    for s in results:
        print(s.describe())
    if any(not s.passed for s in results):
        raise typer.Exit(EXIT_SLO)


@app.command("compare")
@guarded
def compare_cmd(
    base: Annotated[Path, typer.Argument(help="the baseline run folder")],
    candidate: Annotated[Path, typer.Argument(help="the run to judge against it")],
    threshold: Annotated[
        str, typer.Option(help="change that counts, e.g. 10% or 0.1 (relative to the base)")
    ] = "10%",
    format: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Two runs side by side: throughput, percentiles, error rate, SLOs, the change in % and a
    verdict per metric; exit 1 when anything regressed beyond the threshold."""
    from simd.report.compare import compare

    if format not in ("table", "json"):
        raise UserError(f"--format {format!r}: use table or json")
    try:
        thr = float(threshold[:-1]) / 100 if threshold.endswith("%") else float(threshold)
    except ValueError:
        raise UserError(f"--threshold {threshold!r}: write it like 10% or 0.1") from None
    if not 0 <= thr < 100:
        raise UserError(f"--threshold {threshold!r}: must be between 0% and 10000%")
    cmp = compare(base, candidate, thr)
    for n in cmp.notes:
        sys.stderr.write(f"simd: note: {n}\n")
    if format == "json":
        print(
            json.dumps(
                {
                    "base": cmp.base,
                    "candidate": cmp.candidate,
                    "threshold": thr,
                    "regressed": len(cmp.regressions),
                    "metrics": [m.__dict__ for m in cmp.metrics],
                }
            )
        )
    else:
        t = Table(title=f"{cmp.base} -> {cmp.candidate} (threshold {thr:.0%})")
        for n in ("metric", "base", "candidate", "change", "verdict"):
            t.add_column(n, justify="left" if n in ("metric", "verdict") else "right")
        style = {"regressed": "bold red", "improved": "green"}
        for m in cmp.metrics:
            t.add_row(
                m.metric,
                _figure(m.base, m.unit),
                _figure(m.candidate, m.unit),
                "-" if m.change is None else f"{m.change:+.1%}",
                m.verdict,
                style=style.get(m.verdict),
            )
        out.print(t)
        print(f"{len(cmp.regressions)} regression(s) beyond {thr:.0%}")
    if cmp.regressions:
        raise typer.Exit(EXIT_SLO)


def _figure(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "ns":
        return f"{v / 1e6:,.3f} ms"
    if unit == "bool":
        return "ok" if v else "FAILED"
    if unit == "ratio":
        return f"{v:.4%}"
    return f"{v:,.1f}"


@app.command("daemon")
@guarded
def daemon_cmd(
    runs_dir: Annotated[Path, typer.Option(help="where run folders go")] = Path("runs"),
    host: Annotated[str, typer.Option(help="address to listen on (loopback by default)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="port (0: a free one)")] = 7878,
    allow_remote: Annotated[
        bool, typer.Option(help="allow a non-loopback --host (needs --tls-cert/--tls-key)")
    ] = False,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM)")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM)")] = None,
) -> None:
    """A long-lived supervisor with an HTTP control API: start runs, list, stop, status.
    Its token is written to SIMD_HOME/daemon.token (0600; SIMD_HOME defaults to ~/.simd)."""
    from simd.ops.daemon import serve

    def ready(url: str, token_file: Path) -> None:
        sys.stderr.write(f"simd: daemon on {url} (token in {token_file}); Ctrl-C stops it\n")

    serve(runs_dir, host, port, allow_remote, tls_cert, tls_key, ready=ready)


@app.command("submit")
@guarded
def submit_cmd(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
    run_id: Annotated[str | None, typer.Option(help="the run folder's name")] = None,
) -> None:
    """Start a run on the daemon; prints its id."""
    from simd.ops.daemon import Client

    body: dict[str, Any] = {"scenario": str(scenario.resolve())}
    if run_id:
        body["run_id"] = run_id
    r = Client().call("POST", "/runs", body)
    print(r["run_id"])


@app.command("status")
@guarded
def status_cmd(
    run: Annotated[
        str | None, typer.Argument(help="a run id (on the daemon) or a run folder")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Runs on the daemon, or one run's live status (also a run folder's, without a daemon)."""
    from simd.ops.daemon import Client, folder_status

    if run is not None and (Path(run) / "run.json").is_file():
        data = folder_status(Path(run))
        if data is None:
            raise UserError(f"{run}/run.json: not readable")
    elif run is None:
        data = Client().call("GET", "/runs")
    else:
        data = Client().call("GET", f"/runs/{run}")
    if format == "json":
        print(json.dumps(data))
        return
    rows = data.get("runs", [data])
    t = Table()
    for n in ("run", "state", "scenario", "sent", "errors", "elapsed", "status"):
        t.add_column(n)
    for r in rows:
        st = r.get("status") or {}
        t.add_row(
            r["run_id"],
            str(r["state"]),
            str(r.get("scenario") or "-"),
            f"{st['sent']:,}" if st else "-",
            f"{st['errors']:,}" if st else "-",
            f"{st['elapsed_s']:.1f}s" if st else "-",
            str(r.get("status_url") or "-"),
        )
    out.print(t)


@app.command("stop")
@guarded
def stop_cmd(run: Annotated[str, typer.Argument(help="a run id on the daemon")]) -> None:
    """Stop a daemon's run: it drains, flushes and ends as stopped."""
    from simd.ops.daemon import Client

    r = Client().call("POST", f"/runs/{run}/stop")
    print(f"{r['run_id']}: {'stopping' if r['stopping'] else 'already ended'}")


@app.command("query")
@guarded
def query_cmd(
    run: Annotated[Path, typer.Argument(help="run folder")],
    sql: Annotated[str, typer.Argument(help="SQL over the run's tables and views")],
    format: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
) -> None:
    """Run SQL on RUN/results.duckdb."""
    from simd.results.ingest import query

    if format not in ("table", "csv", "json"):
        raise UserError(f"--format {format!r}: use table, csv or json")
    names, rows = query(run, sql)
    if format == "json":
        print(json.dumps([dict(zip(names, r, strict=True)) for r in rows], default=str))
    elif format == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(names)
        w.writerows(rows)
    else:
        t = Table()
        for n in names:
            t.add_column(n)
        for r in rows:
            t.add_row(*["NULL" if v is None else str(v) for v in r])
        out.print(t)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    # SIGTERM ends a command as Ctrl-C does (one line, exit 3; logs are kept), not silently;
    # `simd run` handles both itself while workers run (simd.runtime.supervisor)
    signal.signal(signal.SIGTERM, _interrupt)
    app()


if __name__ == "__main__":
    main()
