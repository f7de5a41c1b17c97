"""Start and stop: from `simd run` to t=0, from the schedule's end to the process's exit, and
the quickstart's wall time against its duration.

    python benchmarks/bench_start.py [--skip-19k] [--skip-quickstart]

1. 1,000 MQTT devices (one worker, QoS 1, 5 s) and 19,000 (two workers, 10 s) against the
   embedded mosquitto: launch -> t=0 (run.json's t0 against the launch's wall clock), launch ->
   workers ready, t=0 -> the last device connected (from the log), the schedule's end -> exit,
   and of that the part `simd run` spends ingesting (its own "ingested" line is timed by the
   log of the run: results.duckdb's mtime). Targets: t=0 <= 1 s after launch for 1,000,
   <= 3 s for 19,000; exit <= 1 s after the schedule's end plus ingest.
2. The README's quickstart command on an installed simd (`simd run scenarios/quickstart.toml`,
   20 s, report included): wall time against duration + 3 s.
Nothing here is asserted by the test suite; read the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

from simd.runtime.broker import EmbeddedBroker

ROOT = Path(__file__).resolve().parent.parent


def line(label: str, value: str, note: str = "") -> None:
    print(f"{label:<44} {value:>14}  {note}", flush=True)


def scenario(devices: int, seconds: int, workers: int) -> str:
    return textwrap.dedent(f"""
        name = "start{devices}"
        duration = "{seconds}s"
        target = "embedded"
        [[fleet]]
        name = "g"
        count = {devices}
        rate = 1.0
        qos = 1
        [fleet.mqtt]
        keepalive = "120s"
        [run]
        workers = {workers}
    """)


def timed_run(tmp: Path, url: str, devices: int, seconds: int, workers: int) -> None:
    path = tmp / f"start{devices}.toml"
    path.write_text(scenario(devices, seconds, workers))
    runs = tmp / "runs"
    name = f"start{devices}"
    launch = time.time_ns()
    subprocess.run(
        [sys.executable, "-m", "simd", "run", str(path), "-T", url, "-o", str(runs),
         "--run-id", name, "--no-progress", "--no-report"],
        check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    exited = time.time_ns()
    run = runs / name
    m = json.loads((run / "run.json").read_text())
    t0 = m["t0_epoch_ns"]
    end = t0 + seconds * 10**9
    con = duckdb.connect(str(run / "results.duckdb"), read_only=True)
    last_connect, connected = con.execute(
        "SELECT max(t_done_ns), count(DISTINCT device) FROM events "
        "WHERE kind = 'connect' AND status = 'ok'"
    ).fetchone()
    logged, planned = con.execute("SELECT logged, planned FROM run_summary").fetchone()
    con.close()
    ingested = (run / "results.duckdb").stat().st_mtime_ns
    target = 1.0 if devices <= 1000 else 3.0
    ready = (m["ready_wall_ns"] - launch) / 1e9
    line(
        f"{devices:,} devices: launch -> t=0",
        f"{(t0 - launch) / 1e9:.2f} s",
        f"target <= {target:g} s; workers ready at {ready:.2f} s",
    )
    line(
        "  last device connected",
        f"{last_connect / 1e9:+.2f} s",
        f"from t=0; {connected:,} connected",
    )
    line(
        "  schedule end -> exit",
        f"{(exited - end) / 1e9:.2f} s",
        f"results written {(ingested - end) / 1e9:.2f} s after the end; target <= 1 s + ingest",
    )
    line("  logged / planned", f"{logged:,} / {planned:,}")


def quickstart(tmp: Path) -> None:
    simd = Path(sys.executable).parent / "simd"
    t = time.monotonic()
    subprocess.run(
        [str(simd), "run", "scenarios/quickstart.toml", "-o", str(tmp / "qs")],
        cwd=ROOT, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wall = time.monotonic() - t
    line(
        "quickstart (20 s, report included)",
        f"{wall:.1f} s",
        f"target <= 23 s ({wall - 20:+.1f} s)",
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-19k", action="store_true")
    ap.add_argument("--skip-quickstart", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="simd-bench-start-"))
    with EmbeddedBroker("mosquitto") as broker:
        timed_run(tmp, broker.url, 1000, 5, 1)
        if not args.skip_19k:
            timed_run(tmp, broker.url, 19000, 10, 2)
    if not args.skip_quickstart:
        quickstart(tmp)


if __name__ == "__main__":
    main()
