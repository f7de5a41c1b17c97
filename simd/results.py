"""Results: ingest event logs into DuckDB and answer questions with the SQL in analysis/.

`ingest` is idempotent and incremental: per segment it remembers the byte offset it has read,
so running it again (during or after a run) reads only new frames, in one transaction each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from simd.errors import LogFormatError, UserError
from simd.eventlog import read_segment, segment_paths
from simd.events import NULL_NS
from simd.manifest import read_manifest
from simd.scenario import Scenario
from simd.schedule import device_ids
from simd.shape import compile_shape

RESULTS = "results.duckdb"
FRAMES_PER_INSERT = 64  # up to 64 x 65,536 rows per INSERT: bounds memory for big segments


def analysis_dir() -> Path:
    """analysis/*.sql: inside the installed package, or beside it in a source checkout."""
    here = Path(__file__).resolve().parent
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
    unreadable: list[str] = field(default_factory=list)


def connect(run_dir: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    db = run_dir / RESULTS
    if read_only and not db.exists():
        raise UserError(f"{run_dir}: no {RESULTS} yet (run `simd ingest {run_dir}` first)")
    return duckdb.connect(str(db), read_only=read_only)


def _write_metadata(con: duckdb.DuckDBPyConnection, manifest: dict[str, Any]) -> None:
    scenario = Scenario.model_validate(manifest["scenario"])
    shape = compile_shape(scenario)
    plan = manifest["plan"]
    con.execute("DELETE FROM runs")
    con.execute(
        "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            manifest["run_id"],
            scenario.name,
            manifest.get("scenario_hash"),
            scenario.seed,
            manifest["target"],
            manifest["clock"],
            manifest["workers"],
            manifest.get("t0_epoch_ns"),
            manifest["duration_ns"],
            manifest["state"],
            plan["total_publishes"],
            manifest.get("stopped_at_ns"),
            json.dumps(manifest),
        ],
    )
    con.execute("DELETE FROM groups")
    con.execute("DELETE FROM devices")
    con.execute("DELETE FROM messages")
    offset = 0
    for gi, g in enumerate(scenario.fleet):
        con.execute(
            "INSERT INTO groups VALUES (?, ?, ?, ?, ?)", [gi, g.name, g.count, offset, g.rate_per_s]
        )
        ids = device_ids(g, range(g.count))
        {
            "device": np.arange(offset, offset + g.count, dtype=np.int64),
            "device_id": np.array(ids, dtype=object),
            "group_index": np.full(g.count, gi, dtype=np.int16),
        }
        con.execute("INSERT INTO devices SELECT * FROM dev")
        for mi, m in enumerate(g.resolved_messages()):
            con.execute(
                "INSERT INTO messages VALUES (?, ?, ?, ?, ?)", [gi, mi, m.name, m.topic, m.qos]
            )
        offset += g.count
    con.execute("DELETE FROM phases")
    for pi, name in enumerate(shape.phase_names):
        a, b = shape.phase_span(pi)
        con.execute("INSERT INTO phases VALUES (?, ?, ?, ?)", [pi, name, a, b])
    con.execute("DELETE FROM planned")
    for g in plan["groups"]:
        for phase, n in g["per_phase"].items():
            con.execute("INSERT INTO planned VALUES (?, ?, ?)", [g["name"], phase, n])
    con.execute("DELETE FROM slo")
    for name, value in scenario.slo.model_dump().items():
        if value is None:
            continue
        unit = "ns" if name.startswith(("latency", "schedule")) else "ratio"
        con.execute(
            "INSERT INTO slo VALUES (?, ?, ?, ?)",
            [name, float(value), unit, name == "throughput_ratio"],
        )


def ingest(run: str | Path) -> IngestResult:
    """Load new frames of every segment into results.duckdb; return what was read."""
    run_dir = run_dir_of(run)
    manifest = read_manifest(run_dir)
    con = connect(run_dir)
    result = IngestResult()
    try:
        con.execute(sql_file("schema.sql"))
        con.execute("BEGIN")
        _write_metadata(con, manifest)
        con.execute("COMMIT")
        first_device = con.execute(
            "SELECT first_device FROM groups ORDER BY group_index"
        ).fetchnumpy()["first_device"]
        done = {
            r[0]: r[1] for r in con.execute("SELECT segment, offset_bytes FROM ingested").fetchall()
        }
        for path in segment_paths(run_dir / "events"):
            key = path.name
            try:
                info, batches = read_segment(path, start=done.get(key))
            except LogFormatError as exc:
                result.unreadable.append(str(exc))
                continue
            result.segments += 1
            if info.torn is not None:
                result.torn.append(
                    f"{path}: torn tail at byte {info.torn.offset} "
                    f"({info.torn.size} bytes: {info.torn.reason})"
                )
            worker = int(info.header["worker"])
            con.execute("BEGIN")
            for start in range(0, len(batches), FRAMES_PER_INSERT):
                group = batches[start : start + FRAMES_PER_INSERT]
                rows = _columns(group, worker, first_device)
                if rows is not None:
                    con.execute(_INSERT)  # reads the local `rows` (duckdb replacement scan)
            for b in batches:
                for code, text in b.errors.items():
                    con.execute("INSERT INTO error_texts VALUES (?, ?, ?)", [worker, code, text])
            new_rows = sum(b.n for b in batches)
            con.execute("DELETE FROM ingested WHERE segment = ?", [key])
            con.execute(
                "INSERT INTO ingested VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    key,
                    worker,
                    info.valid_bytes,
                    len(batches),
                    new_rows,
                    info.torn.reason if info.torn else None,
                    info.torn.offset if info.torn else None,
                ],
            )
            con.execute("COMMIT")
            result.rows += new_rows
            result.frames += len(batches)
        con.execute(sql_file("views.sql"))
    finally:
        con.close()
    return result


_INSERT = """
INSERT INTO event_rows
SELECT worker, device, grp, seq, kind, status, phase, message,
       nullif(t_intended, -9223372036854775808), nullif(t_sent, -9223372036854775808),
       nullif(t_done, -9223372036854775808), bytes, qos, error
FROM rows
"""
assert int(NULL_NS) == -9223372036854775808


def _columns(
    batches: list[Any], worker: int, first_device: np.ndarray
) -> dict[str, np.ndarray] | None:
    if not batches:
        return None
    cols = {name: np.concatenate([b.cols[name] for b in batches]) for name in batches[0].cols}
    n = len(cols["device"])
    cols["worker"] = np.full(n, worker, dtype=np.uint16)
    grp = np.searchsorted(first_device, cols["device"], side="right") - 1
    cols["grp"] = np.where(cols["device"] >= 0, grp, -1).astype(np.int16)
    return cols


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
