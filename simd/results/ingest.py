"""Results: ingest event logs into DuckDB and answer questions with the SQL in analysis/.

`ingest` is idempotent and incremental: per segment it remembers the byte offset it has read,
so running it again (during or after a run) reads only new frames, in one transaction each.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from simd.errors import LogFormatError, TornAtCreation, UserError
from simd.log.eventlog import DamagedRange, SegmentInfo, read_segment, segment_paths
from simd.log.events import NULL_NS
from simd.model.manifest import FINAL_STATES, RunManifest, Shards
from simd.model.scenario import DEFAULT_ERROR_RATE, DURATION_SLOS, Scenario
from simd.model.secrets import redact
from simd.plan.inputs import resolved
from simd.plan.replay import ReplayPlan
from simd.plan.schedule import device_ids, expected_series, layout_groups, series_window_ns
from simd.plan.shape import compile_shape
from simd.plan.shard import WORKER_STRIDE
from simd.results.fidelity import ReplayTallies
from simd.results.histograms import Histograms, HistRows, frame_metrics
from simd.results.merge import RunSources, Source, resolve, save_merged, shard_summary
from simd.results.series import Tallies

RESULTS = "results.duckdb"
SCHEMA_VERSION = 10  # analysis/schema.sql's layout; an older file is rebuilt from the logs
LOCK_WAIT_S = 30.0  # another simd process (ingest --follow, a run's last ingest) holds the file
FRAMES_PER_INSERT = 64  # up to 64 x 65,536 rows per INSERT: bounds memory for big segments


def analysis_dir() -> Path:
    """analysis/*.sql: inside the installed package, or beside it in a source checkout."""
    here = Path(__file__).resolve().parent.parent  # simd/
    for cand in (here / "analysis", here.parent / "analysis"):
        if (cand / "schema.sql").is_file():
            return cand
    raise FileNotFoundError("analysis/*.sql not found next to the simd package")


def sql_file(name: str) -> str:
    return (analysis_dir() / name).read_text()


def run_dir_of(path: str | Path) -> Path:
    p = Path(path)
    if not (p / "run.json").is_file():
        raise UserError(f"{p}: not a run folder (no run.json)")
    return p


@dataclass
class IngestResult:
    rows: int = 0
    frames: int = 0
    segments: int = 0
    torn: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)  # ranges found by this ingest, described
    unreadable: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)  # shards missing from a sharded run
    state: str = ""  # the run's state as ingested


def _open(db: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, waiting while another process holds the file (up to LOCK_WAIT_S)."""
    deadline = time.monotonic() + LOCK_WAIT_S
    pause = 0.02
    while True:
        try:
            return duckdb.connect(str(db), read_only=read_only)
        except duckdb.IOException as exc:
            locked = "lock" in str(exc).lower()
            if not locked:
                raise
            if time.monotonic() > deadline:
                raise UserError(
                    f"{db}: in use by another process for over {LOCK_WAIT_S:.0f} s"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def views_hash() -> str:
    """Identifies this simd's views.sql: a file whose views differ gets them re-created."""
    import hashlib

    return hashlib.sha256(sql_file("views.sql").encode()).hexdigest()[:16]


def _stored_versions(con: duckdb.DuckDBPyConnection) -> tuple[int | None, str | None]:
    try:
        row = con.execute("SELECT max(version), max(views_hash) FROM schema_info").fetchone()
    except duckdb.Error:  # no schema_info, or an older one without views_hash
        return None, None
    return (row[0], row[1]) if row else (None, None)


def read_views(run_dir: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection for simd's own views (reports, checks, comparisons, the finished
    dashboard). DuckDB's join-order search is most of such a query's time on simd's nested
    views: without it slo_results takes 70 ms instead of 193 ms on a 20 s quickstart run and
    237 ms instead of 398 ms on 7.2M events, with the same rows in every view (decision 0018).
    User SQL (`simd query`) keeps it."""
    con = connect(run_dir, read_only=True)
    con.execute("SET disabled_optimizers = 'join_order'")
    return con


def connect(run_dir: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a run's results.duckdb. DuckDB lets one process write a file and nobody else open
    it meanwhile; `simd ingest --follow` holds it only for each short pass, so wait for it.

    Read-only opens check that the file's views are this simd's: if only views.sql changed,
    they are re-created (briefly opening the file for writing); a file of another table layout
    is an error that says to run `simd ingest`, which rebuilds it from the logs.
    """
    db = run_dir / RESULTS
    if not read_only:
        return _open(db, False)
    if not db.exists():
        raise UserError(f"{run_dir}: no {RESULTS} yet (run `simd ingest {run_dir}` first)")
    con = _open(db, True)
    version, vhash = _stored_versions(con)
    if version == SCHEMA_VERSION and vhash == views_hash():
        return con
    con.close()
    if version != SCHEMA_VERSION:
        raise UserError(
            f"{db}: written by another simd version (run `simd ingest {run_dir}` to rebuild it)"
        )
    rw = _open(db, False)
    try:
        rw.execute(sql_file("views.sql"))
        rw.execute("UPDATE schema_info SET views_hash = ?", [views_hash()])
    finally:
        rw.close()
    return _open(db, True)


def _open_current(run_dir: Path) -> duckdb.DuckDBPyConnection:
    """Open for ingest; a file written by an older layout is removed, to be rebuilt."""
    con = connect(run_dir)
    version, _ = _stored_versions(con)
    fresh = not con.execute("SELECT count(*) FROM information_schema.tables").fetchone()[0]
    if fresh or version == SCHEMA_VERSION:
        return con
    con.close()
    for p in (run_dir / RESULTS, run_dir / (RESULTS + ".wal")):
        p.unlink(missing_ok=True)
    return connect(run_dir)


def _write_metadata(con: duckdb.DuckDBPyConnection, manifest: RunManifest) -> np.ndarray:
    """(Re)write the tables that come from run.json; return each device's group index."""
    scenario = resolved(manifest.scenario_model, "run.json")
    shape = compile_shape(scenario)
    plan = manifest.plan
    con.execute("DELETE FROM runs")
    con.execute(
        "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            manifest.run_id,
            scenario.name,
            manifest.scenario_hash,
            scenario.seed,
            manifest.target,
            manifest.clock,
            manifest.workers,
            manifest.t0_epoch_ns,
            manifest.duration_ns,
            manifest.state,
            manifest.planned_publishes,
            manifest.stopped_at_ns,
            json.dumps(redact(manifest.to_json())),
        ],
    )
    tables = ("groups", "devices", "messages", "phases", "planned", "slo", "schema_info", "shards")
    tables += ("probes",)
    tables += ("replay_groups", "replay_sources", "recorded_messages")
    for table in (*tables, "analysis_settings", "planned_series"):
        con.execute(f"DELETE FROM {table}")
    con.execute("INSERT INTO schema_info VALUES (?, ?)", [SCHEMA_VERSION, views_hash()])
    window = series_window_ns(manifest.duration_ns)
    con.execute(
        "INSERT INTO analysis_settings VALUES (?, ?)", [window, scenario.slo.burst_error_rate]
    )
    expected = expected_series(scenario, window, shape)
    con.execute(
        "INSERT INTO planned_series SELECT unnest(range(len($1))), unnest($1)", [expected.tolist()]
    )
    worker_of = np.full(scenario.device_count, -1, dtype=np.int32)  # -1: a missing shard's
    for w, lo, hi in manifest.slices_by_worker():
        worker_of[lo:hi] = w
    group_of = np.zeros(scenario.device_count, dtype=np.int16)
    offset = 0
    for gi, g in enumerate(scenario.fleet):
        con.execute(
            "INSERT INTO groups VALUES (?, ?, ?, ?, ?, ?)",
            [gi, g.name, g.count, offset, g.rate_per_s, g.steps],
        )
        group_of[offset : offset + g.count] = gi
        con.execute(
            "INSERT INTO devices SELECT unnest($1), unnest($2), $3, unnest($4)",
            [
                list(range(offset, offset + g.count)),
                device_ids(g, range(g.count)),
                gi,
                [None if w < 0 else w for w in worker_of[offset : offset + g.count].tolist()],
            ],
        )
        for mi, m in enumerate(g.resolved_messages()):
            con.execute(
                "INSERT INTO messages VALUES (?, ?, ?, ?, ?)", [gi, mi, m.name, m.topic, m.qos]
            )
        offset += g.count
    for gi, layout in enumerate(layout_groups(scenario)):
        if layout.replay is not None:
            _write_replay(con, gi, layout.replay, shape.duration_ns)
    _write_shards(con, manifest)
    for pi, probe in enumerate(scenario.probe):
        con.execute(
            "INSERT INTO probes VALUES (?, ?, ?, ?, ?)",
            [pi, probe.name, probe.topic, probe.qos, probe.clean],
        )
    for pi, name in enumerate(shape.phase_names):
        a, b = shape.phase_span(pi)
        con.execute("INSERT INTO phases VALUES (?, ?, ?, ?)", [pi, name, a, b])
    for g in plan["groups"]:
        for phase, n in g["per_phase"].items():
            con.execute("INSERT INTO planned VALUES (?, ?, ?)", [g["name"], phase, n])
    _write_slos(con, scenario)
    return group_of


def _write_slos(con: duckdb.DuckDBPyConnection, scenario: Scenario) -> None:
    """The scenario's [slo], the default error_rate when it sets none, and log_integrity."""
    rows = []
    for name, value in scenario.slo.model_dump().items():
        if value is None or name == "burst_error_rate":
            continue
        unit = "ns" if name in DURATION_SLOS else "count" if name == "error_bursts" else "ratio"
        rows.append((name, float(value), unit, name == "throughput_ratio", "scenario"))
    if scenario.slo.error_rate is None:
        rows.append(("error_rate", DEFAULT_ERROR_RATE, "ratio", False, "default"))
    rows.append(("log_integrity", 0.0, "count", False, "built-in"))
    con.executemany("INSERT INTO slo VALUES (?, ?, ?, ?, ?)", rows)


def _write_shards(con: duckdb.DuckDBPyConnection, manifest: RunManifest) -> None:
    """One row per shard of the run (a run that was not sharded is shard 0 of 1)."""
    sharded = manifest.shards is not None
    shards = manifest.shards or Shards(count=1, present={"0": shard_summary(manifest)}, missing={})
    rows = []
    for i, s in shards.present.items():
        sync = s.clock_sync or {}
        at_t0 = s.clock_at_t0 or {}
        rows.append(
            (int(i), shards.count, True, s.state, *s.devices, s.planned_publishes,
             s.workers, int(i) * WORKER_STRIDE if sharded else 0, s.host,
             s.start_at_ns, s.ready_wall_ns, sync.get("synced"),
             sync.get("est_error_us"), sync.get("max_error_us"), at_t0.get("wall_ns"),
             at_t0.get("monotonic_ns"))
        )  # fmt: skip
    for i, g in shards.missing.items():
        rows.append(
            (int(i), shards.count, False, "missing", *g.devices, g.planned_publishes,
             *[None] * 10)
        )  # fmt: skip
    con.executemany(f"INSERT INTO shards VALUES ({', '.join('?' * 17)})", sorted(rows))


def _write_replay(
    con: duckdb.DuckDBPyConnection, gi: int, plan: ReplayPlan, duration_ns: int
) -> None:
    """A replay group's recording, as the replay_* tables (analysis/schema.sql)."""
    o = plan.options
    con.execute(
        "INSERT INTO replay_groups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            gi,
            o.recording,
            o.recording_sha256,
            plan.recording.header.get("source"),
            plan.sources,
            o.fanout,
            len(plan.passes(duration_ns)),
            o.speed,
            o.lead_in,
            plan.period_ns,
            len(plan.offset),
            "; ".join(d.describe() for d in plan.recording.damaged) or None,
        ],
    )
    n = plan.sources
    con.execute(
        "INSERT INTO replay_sources SELECT $1, unnest(range($2)), unnest($3), unnest($4)",
        [gi, n, plan.ids, plan.per_source.tolist()],
    )
    table = pa.table(
        {
            "group_index": pa.array(np.full(len(plan.offset), gi, dtype=np.int16)),
            "source": pa.array(plan.source),
            "rank": pa.array(plan.rank),
            "offset_ns": pa.array(plan.offset),
            "topic": pa.array(plan.recording.topic),
            "bytes": pa.array(plan.recording.payload.lengths.astype(np.int32)),
        }
    )
    con.register("_recorded", table)
    con.execute("INSERT INTO recorded_messages SELECT * FROM _recorded")
    con.unregister("_recorded")


@dataclass
class _Tallied:
    """One segment's resource samples and its tallies (simd.results.series), by table."""

    worker: int
    samples: list[tuple[int, int, int, int]]
    tables: dict[str, dict[str, np.ndarray]]


@dataclass
class _Unreadable:
    """A segment whose header cannot be read: kept, reported as damage of all its bytes."""

    key: str
    worker: int
    path: Path
    reason: str


def _worker_of(path: Path) -> int:
    """The worker number in a segment's name (w003-000001.simlog: 3)."""
    try:
        return int(path.name[1:].split("-", 1)[0])
    except ValueError:
        return -1


@dataclass
class _SegmentDone:
    key: str
    worker: int
    info: SegmentInfo
    frames: int
    rows: int
    errors: dict[int, str]


def _prepare(
    sources: list[Source],
    done: dict[str, int],
    group_of: np.ndarray,
    window_ns: int,
    replays: list[tuple[int, int, ReplayPlan]],
    out: queue.Queue[Any],
) -> None:
    """Reader thread: decode new frames, build columns and histograms, hand them over in order."""
    n_dev = len(group_of) - 1
    segments = [(src, path) for src in sources for path in segment_paths(src.run_dir / "events")]
    try:
        for src, path in segments:
            key = src.key + path.name
            try:
                info, batches = read_segment(path, start=done.get(key))
            except TornAtCreation as exc:  # mid-run: a segment whose header is being written
                out.put(exc)
                continue
            except LogFormatError as exc:
                out.put(_Unreadable(key, src.worker_base + _worker_of(path), path, str(exc)))
                continue
            worker = src.worker_base + int(info.header["worker"])
            errors: dict[int, str] = {}
            hist = Histograms()
            tallies = Tallies(window_ns, worker)
            replay = ReplayTallies(replays)
            samples: list[tuple[int, int, int, int]] = []
            for start in range(0, len(batches), FRAMES_PER_INSERT):
                frames = []
                for b in batches[start : start + FRAMES_PER_INSERT]:
                    dev = b.cols["device"]
                    grp = np.where(dev >= 0, group_of[np.clip(dev, 0, n_dev)], -1)
                    fm = frame_metrics(b.cols)
                    hist.add(b.cols, grp, fm)
                    tallies.add(b.cols, grp, fm)
                    if replays:
                        replay.add(b.cols)
                    frames.append(_record_batch(b.cols))
                    errors.update(b.errors)
                    samples.extend(b.samples)
                out.put(pa.Table.from_batches(frames))
            out.put(hist.rows())
            tables = tallies.rows()
            if replays:
                tables.update(replay.rows())
            out.put(_Tallied(worker, samples, tables))
            out.put(
                _SegmentDone(
                    key,
                    worker,
                    info,
                    len(batches),
                    sum(b.n for b in batches),
                    errors,
                )
            )
    except BaseException as exc:  # surfaced in the main thread
        out.put(exc)
    finally:
        out.put(None)


def ingest(run: str | Path | list[str | Path], out: Path | None = None) -> IngestResult:
    """Load new frames of every segment into results.duckdb; return what was read (a file
    system that refuses the writes is a UserError naming it).

    `run`: a run folder, or shard folders of one run (globs, or the run's folder holding its
    shard-* folders), merged into `out` (default: the folder that holds the shards)."""
    sources = resolve(run if isinstance(run, list) else [run], out)
    try:
        return _ingest(sources)
    except (duckdb.IOException, duckdb.TransactionException, OSError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{sources.out / RESULTS}: cannot write results ({text})") from None


def _ingest(run: RunSources) -> IngestResult:
    """Load new frames of every segment into results.duckdb; return what was read.

    A reader thread decodes frames while DuckDB inserts the previous batch (both release the
    GIL for their heavy parts). Each segment's new rows commit in one transaction, together with
    its new read offset, so an interrupted ingest never counts a row twice.
    """
    save_merged(run)
    con = _open_current(run.out)
    result = IngestResult(gaps=[g.describe() for g in run.gaps], state=run.manifest.state)
    try:
        con.execute(sql_file("schema.sql"))
        # rows carry their own order (device, seq, times); letting DuckDB append in parallel
        # is worth ~2x on ingest (docs/decisions/0002-ingest.md)
        con.execute("SET preserve_insertion_order = false")
        con.execute("BEGIN")
        group_of = _write_metadata(con, run.manifest)
        con.execute("COMMIT")
        handoff: queue.Queue[Any] = queue.Queue(maxsize=2)
        reader = _start_reader(con, run, group_of, handoff)
        in_tx = False
        while (item := handoff.get()) is not None:
            if isinstance(item, LogFormatError):
                result.unreadable.append(str(item))
                continue
            if isinstance(item, _Unreadable):
                _record_unreadable(con, item)
                result.unreadable.append(item.reason)
                continue
            if isinstance(item, BaseException):
                raise item
            if not in_tx:
                con.execute("BEGIN")
                in_tx = True
            if isinstance(item, _SegmentDone):
                _commit_segment(con, item, result)  # ends the transaction
                in_tx = False
            else:
                _insert(con, item)
        reader.join()
        con.execute(sql_file("views.sql"))
    finally:
        con.close()
    return result


def _start_reader(
    con: duckdb.DuckDBPyConnection, run: RunSources, group_of: np.ndarray, handoff: queue.Queue[Any]
) -> threading.Thread:
    """The thread that reads every segment from its committed offset into `handoff`."""
    done = dict(con.execute("SELECT segment, offset_bytes FROM ingested").fetchall())
    scenario = resolved(run.manifest.scenario_model, "run.json")
    replays = [
        (lay.index, lay.offset, lay.replay)
        for lay in layout_groups(scenario)
        if lay.replay is not None
    ]
    window_ns = series_window_ns(run.manifest.duration_ns)
    reader = threading.Thread(
        target=_prepare,
        args=(run.sources, done, group_of, window_ns, replays, handoff),
        daemon=True,
    )
    reader.start()
    return reader


def _insert(con: duckdb.DuckDBPyConnection, item: pa.Table | HistRows | _Tallied) -> None:
    """One prepared part of a segment's new frames: rows, histograms, or tallies and samples."""
    if isinstance(item, pa.Table):
        rows = item  # noqa: F841 - read by name in the SQL (replacement scan)
        con.execute(_INSERT)
    elif isinstance(item, HistRows):
        hist, maxima, status = item.hist, item.maxima, item.status  # noqa: F841
        con.execute("INSERT INTO latency_hist SELECT grp, phase, metric, bucket, count FROM hist")
        con.execute("INSERT INTO latency_max SELECT grp, phase, metric, max_ns FROM maxima")
        con.execute("INSERT INTO status_totals SELECT grp, phase, kind, status, count FROM status")
    else:
        for table, tally in item.tables.items():  # noqa: B007 - read by name in the SQL
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM tally")
        if item.samples:
            _insert_samples(con, item.worker, item.samples)


def _insert_samples(con: duckdb.DuckDBPyConnection, worker: int, samples: list[Any]) -> None:
    """Resource samples in one columnar insert: executemany takes ~0.4 ms a row (a week of
    samples every 5 s from two workers, 241,922 rows, took 97 s that way)."""
    cols = np.array(samples, dtype=np.int64).reshape(-1, 4)
    sampled = pa.table(  # noqa: F841 - read by name in the SQL
        {
            "worker": pa.array(np.full(len(cols), worker, dtype=np.int32)),
            "t_ns": pa.array(cols[:, 0]),
            "rss_bytes": pa.array(cols[:, 1]),
            "cpu_ns": pa.array(cols[:, 2]),
            "open_fds": pa.array(cols[:, 3].astype(np.int32)),
        }
    )
    con.execute("INSERT INTO samples BY NAME SELECT * FROM sampled")


def _commit_segment(
    con: duckdb.DuckDBPyConnection, seg: _SegmentDone, result: IngestResult
) -> None:
    """A segment's error texts, damage and new read offset; then the transaction commits."""
    for code, text in seg.errors.items():
        con.execute("INSERT INTO error_texts VALUES (?, ?, ?)", [seg.worker, code, text])
    torn = seg.info.torn
    for d in seg.info.damaged:
        _record_damage(con, seg, d)
        result.damaged.append(f"{seg.info.path}: {d.describe()}")
    con.execute("DELETE FROM ingested WHERE segment = ?", [seg.key])
    con.execute(
        "INSERT INTO ingested VALUES (?, ?, ?, ?, ?, ?, ?)",
        [seg.key, seg.worker, seg.info.valid_bytes, seg.frames, seg.rows,
         torn.reason if torn else None, torn.offset if torn else None],
    )  # fmt: skip
    con.execute("COMMIT")
    result.segments += 1
    result.rows += seg.rows
    result.frames += seg.frames
    if torn is not None:
        result.torn.append(
            f"{seg.info.path}: torn tail at byte {torn.offset} ({torn.size} bytes: {torn.reason})"
        )


def _record_damage(con: duckdb.DuckDBPyConnection, seg: _SegmentDone, d: DamagedRange) -> None:
    """One damaged range as a log_damage row (once, whatever the number of passes)."""
    r = d.damage
    con.execute(
        "DELETE FROM log_damage WHERE segment = ? AND offset_start = ?", [seg.key, r.offset]
    )
    con.execute(
        "INSERT INTO log_damage VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [seg.key, seg.worker, r.offset, r.end, r.size, r.reason, d.first_row, d.rows_lost],
    )


def _record_unreadable(con: duckdb.DuckDBPyConnection, u: _Unreadable) -> None:
    """A segment no frame of which can be read: all its bytes, rows lost unknown."""
    size = u.path.stat().st_size if u.path.exists() else 0
    con.execute("BEGIN")
    con.execute("DELETE FROM log_damage WHERE segment = ?", [u.key])
    con.execute(
        "INSERT INTO log_damage VALUES (?, ?, 0, ?, ?, ?, NULL, NULL)",
        [u.key, u.worker, size, size, f"unreadable: {u.reason.split(': ', 1)[-1]}"],
    )
    con.execute("COMMIT")


def follow(
    run: str | Path | list[str | Path],
    interval_s: float = 1.0,
    on_pass: Any = None,
    out: Path | None = None,
    timeout_s: float | None = None,
) -> IngestResult:
    """Keep results.duckdb current while a run writes its logs: ingest the new frames every
    `interval_s`, until the run's manifest says it ended and one last pass has read the rest.
    A sharded run has ended when all its shards are there and have ended; until then missing
    shards (or, before the first appears, the whole run) are waited for, up to `timeout_s`
    (then the last pass reports the missing shards as gaps).

    Each pass holds the file only while it writes, so `simd query` and `simd report` can open it
    between passes. Offsets are committed with the rows, so a follower that is killed and
    started again continues where it stopped. `on_pass(result, state)` is called after each
    pass.
    """
    paths = run if isinstance(run, list) else [run]
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    total = IngestResult()
    while True:
        late = deadline is not None and time.monotonic() > deadline
        try:
            sources = resolve(paths, out)
        except UserError:
            if late:
                raise
            time.sleep(interval_s)  # the run (or its first shard) has not written run.json yet
            continue
        state = sources.manifest.state
        r = ingest(paths, out)
        total.rows += r.rows
        total.frames += r.frames
        total.segments = max(total.segments, r.segments)
        total.unreadable = r.unreadable
        total.damaged += r.damaged
        total.torn = r.torn  # only the last pass's: mid-run a frame being written looks torn
        total.gaps, total.state = r.gaps, r.state
        if on_pass is not None:
            on_pass(r, state)
        if state in FINAL_STATES or (late and state == "incomplete"):
            return total
        if late:
            raise UserError(
                f"{sources.out}: still {state} after the --timeout; what was read is kept"
            )
        time.sleep(interval_s)


def _record_batch(cols: dict[str, np.ndarray]) -> pa.RecordBatch:
    """One frame as arrow: zero-copy over the frame's buffers, the four codes packed in one."""
    code = cols["kind"].astype(np.uint32)
    code |= cols["status"].astype(np.uint32) << 8
    code |= cols["phase"].astype(np.uint32) << 16
    code |= cols["message"].astype(np.uint32) << 24
    arrays = [pa.array(cols[n]) for n in _STORED]
    return pa.RecordBatch.from_arrays(
        [*arrays[:2], pa.array(code), *arrays[2:]], names=[*_STORED[:2], "code", *_STORED[2:]]
    )


_STORED = ("device", "seq", "t_intended", "t_sent", "t_done", "bytes", "error")
_INSERT = """
INSERT INTO event_rows (device, seq, code, t_intended_ns, t_sent_ns, t_done_ns, bytes, error)
SELECT device, seq, code,
       nullif(t_intended, -9223372036854775808), nullif(t_sent, -9223372036854775808),
       nullif(t_done, -9223372036854775808), bytes, error
FROM rows
"""
assert int(NULL_NS) == -9223372036854775808


def query(run: str | Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run SQL on a run's results.duckdb; (column names, rows)."""
    con = connect(run_dir_of(run), read_only=True)
    try:
        try:
            cur = con.execute(sql)
        except duckdb.Error as exc:
            raise UserError(f"query failed: {str(exc).splitlines()[0]}") from None
        names = [d[0] for d in cur.description] if cur.description else []
        return names, cur.fetchall()
    finally:
        con.close()
