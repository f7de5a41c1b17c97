"""Soak: a real-clock run against the embedded broker; each worker's memory must stay flat.

    python benchmarks/bench_soak.py [--minutes 10] [--devices 2000] [--rate 5] [--keep DIR]

Runs `simd run` (QoS 1, the embedded broker: mosquitto where installed) for --minutes, then
reads every worker's resource samples from the run's own log (the `samples` table, one every
5 s) and prints, per worker, the RSS at minute 2 (after the connect ramp and warm-up), the
highest and the last RSS after it, and their ratio to the minute-2 value.
Target: every worker within 10 % of its minute-2 RSS for the rest of the run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=5.0, help="msg/s per device")
    ap.add_argument("--keep", type=Path, help="keep the run in this folder")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="simd-soak-"))
    runs = args.keep or tmp / "runs"
    scenario = tmp / "soak.toml"
    scenario.write_text(
        textwrap.dedent(
            f"""
            name = "soak"
            seed = 1
            duration = "{args.minutes * 60:g}s"
            target = "embedded"
            [[fleet]]
            name = "g"
            count = {args.devices}
            rate = {args.rate}
            qos = 1
            [fleet.mqtt]
            connect_rate = 500
            [run]
            resource_samples = "5s"
            """
        )
    )
    print(
        f"soak: {args.devices:,} devices x {args.rate:g} msg/s QoS 1 = "
        f"{args.devices * args.rate:,.0f} msg/s for {args.minutes:g} min, embedded broker"
    )
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "simd", "run", str(scenario), "--runs-dir", str(runs),
         "--run-id", "soak", "--no-progress", "--no-report"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        print(proc.stderr)
        sys.exit(proc.returncode)
    con = duckdb.connect(str(runs / "soak" / "results.duckdb"), read_only=True)
    planned, logged, completed, err, lag = con.execute(
        "SELECT planned, logged, completed, error_rate, schedule_lag_p99_ns FROM run_summary"
    ).fetchone()
    print(
        f"run: {wall:.0f} s wall, planned {planned:,}, logged {logged:,}, completed "
        f"{completed:,}, error rate {err:.4%}, schedule lag p99 {lag / 1e6:.2f} ms"
    )
    rows = con.execute(
        """
        WITH base AS (
            SELECT worker, arg_min(rss_bytes, abs(t_ns - 120e9)) AS rss2
            FROM samples GROUP BY worker
        )
        SELECT s.worker, b.rss2, max(s.rss_bytes), arg_max(s.rss_bytes, s.t_ns), count(*)
        FROM samples s JOIN base b USING (worker)
        WHERE s.t_ns >= 120e9
        GROUP BY s.worker, b.rss2 ORDER BY s.worker
        """
    ).fetchall()
    worst = 0.0
    for w, rss2, peak, last, n in rows:
        ratio = peak / rss2
        worst = max(worst, ratio)
        print(
            f"worker {w}: RSS at 2 min {rss2 / 2**20:.1f} MiB, highest after "
            f"{peak / 2**20:.1f} MiB ({ratio:.3f}x), last {last / 2**20:.1f} MiB, {n} samples"
        )
    verdict = "within" if worst <= 1.10 else "NOT within"
    print(f"worst worker: {worst:.3f}x its minute-2 RSS: {verdict} the 10 % target")
    con.close()
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
