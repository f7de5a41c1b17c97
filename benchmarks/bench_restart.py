"""A worker restart an hour into a run: from its checkpoint, against the walk from t=0.

    python benchmarks/bench_restart.py [--at 3600] [--rate 1.0] [--devices 2000]

scenarios/endurance.toml (2,000 devices at 1 msg/s for 2 h on `sim:`, virtual clock, one
worker): the worker is killed (SIGKILL) once its checkpoint has passed `--at` seconds of run
time; the supervisor restarts it and prints how long after the restart it resumed (process
start, imports, the log read after the checkpoint, the owed rows). Then the same once more
with the worker's cursor file deleted just before the kill: the restart reads the whole log
and walks the schedule from t=0 (what every restart did before checkpoints) — the ceiling
this is measured against. Both runs complete; every planned publish has exactly one row.
Nothing here is asserted by the test suite; read the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from simd.runtime.checkpoint import cursor_path, read_cursor

ROOT = Path(__file__).resolve().parent.parent
RESUMED = re.compile(r"resumed at t=([\d,.]+) s (.*?), ([\d,]+) log rows read, ([\d.]+) s after")


def worker_pid(parent: int) -> int | None:
    """The run's worker: a child of its fork server (or its own child when spawned)."""
    for pid in children(parent):
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"forkserver" in cmd:
            return next(iter(children(pid)), None)
        if b"resource_tracker" not in cmd:
            return pid
    return None


def children(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def one(tmp: Path, name: str, at_s: float, rate: float, devices: int, keep: bool) -> None:
    runs = tmp / "runs"
    argv = [
        sys.executable, "-m", "simd", "run", str(ROOT / "scenarios" / "endurance.toml"),
        "--set", f"fleet.sensors.rate={rate}", "--set", f"fleet.sensors.count={devices}",
        "-w", "1", "-o", str(runs), "--run-id", name, "--no-progress", "--no-report",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = runs / name / "events"
    path = cursor_path(events, 0)
    while True:
        time.sleep(0.02)
        cp = read_cursor(path, name, 0, 0, devices) if path.exists() else None
        if cp is not None and cp.horizon_ns >= at_s * 1e9:
            break
        if proc.poll() is not None:
            raise SystemExit(f"{name}: the run ended before its checkpoint reached {at_s} s")
    pid = worker_pid(proc.pid)
    assert pid is not None
    if not keep:
        os.kill(pid, signal.SIGSTOP)  # the cursor goes while nothing writes a new one
        path.unlink()
    os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=1800)
    m = RESUMED.search(err)
    if m is None:
        raise SystemExit(f"{name}: no resume line in\n{err}")
    at, how, rows, took = m.groups()
    print(f"{name:<22} resumed at t={at} s {how}: {rows} log rows read, {took} s after restart")
    con = duckdb.connect(str(runs / name / "results.duckdb"), read_only=True)
    planned, logged, distinct = con.execute(
        "SELECT planned, logged, (SELECT count(DISTINCT (device, seq)) FROM events "
        "WHERE kind = 'publish') FROM run_summary"
    ).fetchone()
    con.close()
    print(f"{'':<22} planned {planned:,}, logged {logged:,}, distinct {distinct:,}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--at", type=float, default=3600.0, help="run time of the kill, s")
    ap.add_argument("--rate", type=float, default=1.0, help="msg/s per device")
    ap.add_argument("--devices", type=int, default=2000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="simd-bench-restart-"))
    print(f"worker restart at {args.at:g} s, {args.devices:,} devices at {args.rate:g} msg/s")
    one(tmp, "from-checkpoint", args.at, args.rate, args.devices, keep=True)
    one(tmp, "walk-from-zero", args.at, args.rate, args.devices, keep=False)


if __name__ == "__main__":
    main()
