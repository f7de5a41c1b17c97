"""A worker's checkpoint (simd.runtime.checkpoint): a restart takes up the schedule where the
checkpoint left it, reads only the log after it, and logs exactly what a walk from t=0 would."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from simd.log.eventlog import read_segment
from simd.log.events import KINDS, STATUSES
from simd.model.scenario import parse_scenario
from simd.plan.schedule import plan_counts
from simd.runtime import checkpoint
from simd.runtime.messages import Done, Resumed, WorkerSpec
from simd.runtime.worker import run_worker
from tests.conftest import slice_spec, sql, start_run, wait_until, worker_pids, write_scenario

FLEET = {
    "name": "cursor",
    "seed": 5,
    "duration": "3m",
    "target": "sim:",
    "sim": {"latency_p50": "20ms", "latency_p99": "3s", "timeout": "10s"},
    "fleet": [
        {"name": "meters", "count": 400, "rate": 2.0, "qos": 1},
        {"name": "trackers", "count": 12, "interval": "1500ms", "arrival": "poisson"},
        {"name": "bursty", "count": 6, "rate": 0.5, "arrival": "zipf", "zipf_exponent": 1.6},
    ],
    "phase": [
        {"name": "ramp", "duration": "1m", "shape": "ramp", "start": 0.5, "end": 2.0},
        {"name": "hold", "duration": "2m", "level": 2.0},
    ],
}


def _spec(run_dir: Path) -> WorkerSpec:
    return slice_spec(run_dir, FLEET, 0, parse_scenario(FLEET).device_count)


def _publishes(run_dir: Path) -> Counter[tuple[int, int, int, str]]:
    out: Counter[tuple[int, int, int, str]] = Counter()
    for seg in sorted((run_dir / "events").glob("w000-*.simlog")):
        for b in read_segment(seg)[1]:
            c = b.cols
            for d, s, t, k, st in zip(
                c["device"].tolist(), c["seq"].tolist(), c["t_intended"].tolist(),
                c["kind"].tolist(), c["status"].tolist(), strict=True,
            ):  # fmt: skip
                if KINDS[k] == "publish":
                    out[(d, s, t, STATUSES[st])] += 1
    return out


def _resume(run_dir: Path) -> tuple[Done, Resumed]:
    """Run the slice again on its log (a restart), and what it told its supervisor."""
    ours, theirs = multiprocessing.Pipe()
    done = run_worker(_spec(run_dir), time.time_ns(), theirs)
    told = []
    while ours.poll():
        told.append(ours.recv())
    resumed = [m for m in told if isinstance(m, Resumed)]
    assert len(resumed) == 1, told
    return done, resumed[0]


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One full slice run on the virtual clock whose every cursor is kept with the log's
    size when it was written; then two copies of the log cut where the run stood when its
    middle cursor was written (a crash right after it), one with that cursor, one without."""
    tmp = tmp_path_factory.mktemp("cursor")
    whole = tmp / "whole"
    kept: list[tuple[bytes, dict[str, int]]] = []
    original = checkpoint.write_cursor

    def keeping(path: Path, *args: object) -> None:
        original(path, *args)  # type: ignore[arg-type]
        sizes = {p.name: p.stat().st_size for p in path.parent.glob("*.simlog")}
        kept.append((path.read_bytes(), sizes))

    mp = pytest.MonkeyPatch()
    mp.setattr(checkpoint, "write_cursor", keeping)
    try:
        run_worker(_spec(whole), time.time_ns())
    finally:
        mp.undo()
    assert len(kept) >= 5  # 3 minutes, a candidate every chunk (~25 s here)
    cursor_bytes, sizes = kept[len(kept) // 2]
    out = {"whole": whole}
    for name in ("with", "without"):
        d = tmp / name / "events"
        d.mkdir(parents=True)
        for seg, size in sizes.items():
            data = (whole / "events" / seg).read_bytes()[:size]
            (d / seg).write_bytes(data)
        if name == "with":
            (d / "w000.cursor").write_bytes(cursor_bytes)
        out[name] = d.parent
    return out


def test_a_restart_from_the_checkpoint_logs_what_a_walk_from_zero_logs(
    crashed: dict[str, Path],
) -> None:
    """Resumed from its cursor, the worker logs exactly the rows (device, seq, intended time,
    status) a resume walking from t=0 logs, every planned publish once, its counters agree, and
    it read a part of the log only."""
    done, told = {}, {}
    for name in ("with", "without"):
        done[name], told[name] = _resume(crashed[name])
    with_cp, without = _publishes(crashed["with"]), _publishes(crashed["without"])
    assert with_cp == without
    planned = plan_counts(parse_scenario(FLEET)).total_publishes
    assert sum(with_cp.values()) == len({(d, s) for d, s, _, _ in with_cp}) == planned
    a, b = done["with"], done["without"]
    assert (a.sent, a.completed, a.errors, a.unsent) == (b.sent, b.completed, b.errors, b.unsent)
    assert told["with"].checkpoint_ns is not None and told["without"].checkpoint_ns is None
    assert told["with"].at_ns == told["without"].at_ns
    assert 0 < told["with"].rows_read < told["without"].rows_read / 3


@pytest.mark.parametrize("damage", ["flipped byte", "cut short", "another slice", "past the log"])
def test_a_cursor_that_does_not_fit_is_ignored(
    crashed: dict[str, Path], tmp_path: Path, damage: str
) -> None:
    """A damaged cursor, one of another slice or one pointing past the end of the log: the
    worker walks from t=0 and the log is still exact."""
    run_dir = tmp_path / "run"
    shutil.copytree(crashed["with"], run_dir)
    cursor = run_dir / "events" / "w000.cursor"
    data = bytearray(cursor.read_bytes())
    if damage == "flipped byte":
        data[len(data) // 2] ^= 0xFF
    elif damage == "cut short":
        data = data[: len(data) - 7]
    elif damage == "another slice":
        body = checkpoint.read_cursor(cursor, "cursor", 0, 0, 418)
        assert body is not None
        checkpoint.write_cursor(cursor, "cursor", 0, 0, 417, body)
        data = bytearray(cursor.read_bytes())
    else:  # the log lost its tail (a machine crash), to before the cursor's position
        body = checkpoint.read_cursor(cursor, "cursor", 0, 0, 418)
        assert body is not None
        seg = run_dir / "events" / f"w000-{body.position.segment:06d}.simlog"
        with open(seg, "r+b") as f:
            f.truncate(body.position.offset // 2)
    cursor.write_bytes(bytes(data))
    _, told = _resume(run_dir)
    assert told.checkpoint_ns is None
    got = _publishes(run_dir)
    planned = plan_counts(parse_scenario(FLEET)).total_publishes
    assert sum(got.values()) == len({(d, s) for d, s, _, _ in got}) == planned


KILLED = """
name = "killed"
seed = 3
duration = "40s"
target = "sim:"

[sim]
latency_p50 = "5ms"
latency_p99 = "50ms"

[[fleet]]
name = "g"
count = 200
rate = 20.0
qos = 1

[slo]
error_rate = 0.5
"""


def test_a_killed_worker_resumes_from_its_checkpoint(tmp_path: Path, runs: Path) -> None:
    """kill -9 of a worker once its cursor exists (real clock): the supervisor says it resumed
    from its checkpoint, the run completes and every planned publish has exactly one row."""
    proc = start_run(write_scenario(tmp_path, KILLED), runs, "killed", "--workers", "2",
                     "--no-report")  # fmt: skip
    cursor = runs / "killed" / "events" / "w000.cursor"
    wait_until(cursor.exists, timeout=60)
    os.kill(worker_pids(proc.pid)[0], signal.SIGKILL)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "worker 0 resumed at t=" in err and "from its checkpoint at t=" in err, err
    planned, logged = sql(runs / "killed", "SELECT planned, logged FROM run_summary")[0]
    distinct = sql(
        runs / "killed", "SELECT count(DISTINCT (device, seq)) FROM events WHERE kind = 'publish'"
    )[0][0]
    assert planned == logged == distinct == 40 * 200 * 20
