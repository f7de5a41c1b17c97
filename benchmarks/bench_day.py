"""A day of a big fleet: 100,000 devices at 1 message a minute for 24 h of virtual time.

    python benchmarks/bench_day.py [--devices 100000] [--hours 24] [--no-ceiling] [--keep DIR]

144M publishes on `sim:` (virtual clock, one worker per core, every event logged), then the
run's own ingest, then `simd report` (terminal and HTML). Prints the run and ingest times
(from the manifest's start and end and the process's exit), the workers' RSS over the day
(their own resource samples: the first hour's highest against the last hour's), the peak RSS
of any process of the run (the supervisor's ingest included), the log's size and the report's
time. The ceiling, in the same run: the same fleet on `null:` (the schedule, the log and the
ingest without the simulated target). Targets (issue 19): run + ingest <= 5 min, memory
bounded, report <= 10 s. Nothing here is asserted by the test suite; read the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
from pathlib import Path

from bench_core import one, simd  # benchmarks/ is on the path when a script there runs

SCENARIO = """
name = "day"
seed = 7
duration = "{hours}h"
target = "sim:"

[[fleet]]
name = "meters"
count = {devices}
id = "meter-{{index:06d}}"
rate = {rate!r}
qos = 1
topic = "grid/{{device_id}}/reading"

[sim]
latency_p50 = "5ms"
latency_p99 = "40ms"
error_rate = 0.0005

[run]
clock = "virtual"
"""


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def day(scenario: Path, runs: Path, name: str, target: str | None) -> dict[str, float]:
    extra = ["--target", target] if target else []
    wall = simd("run", str(scenario), "-o", str(runs), "--run-id", name, "--no-progress",
                "--no-report", *extra)  # fmt: skip
    run = runs / name
    manifest = json.loads((run / "run.json").read_text())
    ran = (manifest["ended_wall_ns"] - manifest["started_wall_ns"]) / 1e9
    db = run / "results.duckdb"
    planned, logged = one(db, "SELECT planned, logged FROM run_summary")
    assert planned == logged, (planned, logged)
    first_h, last_h = one(
        db,
        "SELECT max(rss_bytes) FILTER (WHERE t_ns < 3600e9), "
        "max(rss_bytes) FILTER (WHERE t_ns >= (SELECT max(t_ns) FROM samples) - 3600e9) "
        "FROM samples",
    )
    log_gib = size(run / "events") / 2**30
    print(f"{name}: {logged:,} publishes planned and logged; log {log_gib:.1f} "
          f"GiB, results.duckdb {db.stat().st_size / 2**30:.1f} GiB")  # fmt: skip
    print(f"  run + ingest {wall:.1f} s (target <= 300 s: {wall / 300:.2f} of it): "
          f"run {ran:.1f} s ({logged / ran:,.0f} publishes/s), ingest and exit {wall - ran:.1f} s "
          f"({logged / (wall - ran):,.0f} rows/s)")  # fmt: skip
    print(f"  worker RSS, highest: first hour {first_h / 2**20:.0f} MiB, last hour "
          f"{last_h / 2**20:.0f} MiB ({last_h / first_h:.3f}x)")  # fmt: skip
    return {"wall": wall, "ran": ran, "logged": logged}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--no-ceiling", action="store_true", help="skip the same fleet on null:")
    ap.add_argument("--keep", type=Path, help="keep the runs in this folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = args.keep or Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        scenario = tmp / "day.toml"
        rate = 1 / 60
        scenario.write_text(SCENARIO.format(hours=args.hours, devices=args.devices, rate=rate))
        runs = tmp / "runs"
        sim = day(scenario, runs, "day-sim", None)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        print(f"  peak RSS of any process of the run (the ingest's DuckDB included): "
              f"{peak / 2**30:.2f} GiB")  # fmt: skip
        t_report = simd("report", str(runs / "day-sim"))
        print(f"  simd report (terminal + HTML): {t_report:.2f} s (target <= 10 s)")
        if not args.no_ceiling:
            null = day(scenario, runs, "day-null", "null:")
            print(f"ceiling: the same fleet on null: {null['wall']:.1f} s; sim at "
                  f"{null['wall'] / sim['wall']:.2f} of its speed")  # fmt: skip


if __name__ == "__main__":
    main()
