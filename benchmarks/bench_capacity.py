"""`simd capacity` against a known limit and against a real broker, with figures.

    python benchmarks/bench_capacity.py [--step 20s] [--mqtt-step 3s]

1. the sim target that serves 20,000 msg/s (scenarios/capacity.toml), virtual clock, twice:
   the sustainable rate and the knee (target: within 10 % of 20k, the same both times), the
   bound, and the wall time of a whole search.
2. one local mosquitto on this 2-core machine, real clock, one worker, at qos 0 and at qos 1
   (SLOs: latency p99 from intended 20 ms, schedule lag p99 20 ms, errors 0.1 %): the limit
   each search reports and which side bound it.
Nothing here is asserted by the test suite; read the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MQTT = """
name = "bench-capacity"
seed = 5
target = "embedded"
duration = "1m"

[[fleet]]
name = "meters"
count = 200
rate = 10.0
qos = {qos}

[slo]
latency_p99 = "20ms"
schedule_lag_p99 = "20ms"
error_rate = 0.001
"""


def search(scenario: Path, runs: Path, run_id: str, *flags: str) -> tuple[dict, float]:
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "simd", "capacity", str(scenario), "--runs-dir", str(runs),
         "--run-id", run_id, "--no-progress", *flags],
        capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t
    if r.returncode not in (0, 1):
        raise SystemExit(f"simd capacity failed ({r.returncode}):\n{r.stderr}")
    return json.loads((runs / run_id / "capacity.json").read_text()), wall


def line(name: str, res: dict, wall: float) -> str:
    knee = res["knee"] or {}
    return (
        f"   {name}: sustainable {res['sustainable_per_s'] or 0:,.0f} msg/s, knee "
        f"{res['knee_per_s'] or 0:,.0f} msg/s ({', '.join(knee.get('breached', []))}), bound by "
        f"the {res['bound']}; {wall:.1f} s wall"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--step", default="20s", help="virtual time per step (sim)")
    ap.add_argument("--mqtt-step", default="3s", help="real time per step (mosquitto)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="simd-bench-capacity-") as d:
        runs = Path(d) / "runs"
        sim = REPO / "scenarios" / "capacity.toml"
        print("1. sim: capacity 20,000 msg/s, virtual clock")
        first, w1 = search(sim, runs, "sim-a", "--clock", "virtual", "--step", args.step)
        second, w2 = search(sim, runs, "sim-b", "--clock", "virtual", "--step", args.step)
        print(line("search 1", first, w1))
        print(line("search 2", second, w2))
        err = (first["sustainable_per_s"] - 20_000) / 20_000
        same = (first["sustainable_per_s"], first["knee_per_s"]) == (
            second["sustainable_per_s"],
            second["knee_per_s"],
        )
        print(f"   sustainable vs 20,000: {err:+.2%}; the same both times: {same}")
        print("2. mosquitto on loopback, real clock, 1 worker, 200 devices")
        for qos in (0, 1):
            path = Path(d) / f"mqtt{qos}.toml"
            path.write_text(MQTT.format(qos=qos))
            res, wall = search(path, runs, f"mqtt-{qos}", "--start", "8000", "--factor", "2",
                               "--steps", "10", "--step", args.mqtt_step, "--refine", "3",
                               "--workers", "1")  # fmt: skip
            print(line(f"qos {qos}", res, wall))


if __name__ == "__main__":
    main()
