"""Commands on logs and recordings: `inspect`, `record`, `import`, `ingest`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from simd.cli.app import app, guarded, out
from simd.cli.options import out_option
from simd.errors import EXIT_SLO, UserError


def warn_ingest(r: Any) -> None:
    """What ingest could not read, on stderr: damage loudly, torn tails and unreadable files."""
    for d in r.damaged:
        sys.stderr.write(f"simd: warning: LOG DAMAGED: {d}; every frame after it was read\n")
    for t in r.torn:
        sys.stderr.write(f"simd: warning: {t}\n")
    for u in r.unreadable:
        sys.stderr.write(f"simd: warning: {u}\n")


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
    out: Annotated[Path, out_option("the recording to write, e.g. recordings/x.simrec")],
    duration: Annotated[
        str | None,
        typer.Option("--duration", "-d", help="stop after this long (default: until Ctrl-C)"),
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
    out: Annotated[Path, out_option("the recording to write")],
) -> None:
    """Convert a JSON-lines capture made by another tool into a recording."""
    from simd.log.recording import import_jsonl, write_recording

    rec = import_jsonl(capture)
    path = write_recording(rec, out)
    print(
        f"imported {len(rec):,} messages on {len(set(rec.topic)):,} topics spanning "
        f"{rec.duration_ns / 1e9:.3f}s: {path}",
        flush=True,
    )


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
    warn_ingest(r)
    for g in r.gaps:
        sys.stderr.write(f"simd: warning: {g}\n")
    print(
        f"ingested {r.rows:,} new rows from {r.frames:,} frames in {r.segments} segment(s)"
        + (f" (run {r.state})" if r.state and r.state != "completed" else "")
    )
