"""Sharded runs: what splitting a run into shards costs and keeps, with figures.

    python benchmarks/bench_shards.py [--devices 20000] [--minutes 10] [--shards 4]

1. determinism and merge at scale (virtual clock, null target): the scenario in one process
   (2 workers) and as SHARDS shard processes (1 worker each, one after another so each has a
   core); the merged shards must hold the identical multiset of (device, seq, intended time)
   (compared in SQL by count and an order-free hash sum). Figures: wall time of each, and
   `simd ingest` of the one-process run vs the merged ingest of the shard folders (rows/s; the
   ratio is what merging costs).
2. one epoch on the real clock (null target): three shards started together on this 2-core
   machine with --start-at 6 s ahead: how long before t=0 each was ready, each shard's
   schedule lag p50/p99, and how far apart the shards' first sends of the first due second
   fell (shared t=0 in practice, on one host).
Nothing here is asserted by the test suite; read the figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import sql  # noqa: E402

SCENARIO = """
name = "bench-shards"
seed = 7
duration = "{minutes}m"
target = "null:"

[[fleet]]
name = "meters"
count = {periodic}
rate = 0.5
mqtt = {{ connect_rate = {ramp} }}

[[fleet]]
name = "trackers"
count = {poisson}
rate = 0.25
arrival = "poisson"

[[phase]]
name = "ramp"
duration = "{q}s"
shape = "ramp"
start = 0.5
end = 2.0

[[phase]]
name = "hold"
duration = "{rest}s"
level = 2.0
"""

FINGERPRINT = (  # kind 0: publish (simd.log.events.KINDS)
    "SELECT count(*), sum(hash(device, seq, t_intended_ns)::HUGEINT) FROM event_rows WHERE kind = 0"
)


def simd(*args: str) -> float:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "simd", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"simd {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return time.perf_counter() - t


def at_scale(tmp: Path, devices: int, minutes: float, shards: int) -> None:
    seconds = minutes * 60
    scenario = tmp / "scale.toml"
    scenario.write_text(
        textwrap.dedent(
            SCENARIO.format(
                minutes=minutes, periodic=devices * 3 // 4, poisson=devices - devices * 3 // 4,
                ramp=max(1, devices // 20), q=seconds / 4, rest=seconds - seconds / 4,
            )
        )
    )  # fmt: skip
    base = ("--clock", "virtual", "--no-progress", "--no-report", "--status-port", "-1")
    one = tmp / "one"
    t_one = simd("run", str(scenario), "--runs-dir", str(one), "--run-id", "r", "--workers", "2",
                 *base)  # fmt: skip
    start = f"{time.time() + 3600:.0f}"  # virtual clock: t=0 is when a shard starts
    t_shards = 0.0
    for i in range(shards):
        t_shards += simd("run", str(scenario), "--shard", f"{i}/{shards}", "--start-at", start,
                         "--runs-dir", str(tmp / "sh"), "--run-id", "r", "--workers", "1",
                         *base)  # fmt: skip
    (one / "r" / "results.duckdb").unlink()
    t_ingest_one = simd("ingest", str(one / "r"))
    t_ingest_merged = simd("ingest", str(tmp / "sh" / "r"))
    a = sql(one / "r", FINGERPRINT)[0]
    b = sql(tmp / "sh" / "r", FINGERPRINT)[0]
    rows_one = sql(one / "r", "SELECT count(*) FROM event_rows")[0][0]
    rows_merged = sql(tmp / "sh" / "r", "SELECT count(*) FROM event_rows")[0][0]
    print(f"1. {devices:,} devices, {minutes:g} min virtual, null target")
    print(f"   publishes: one process {a[0]:,}, {shards} shards merged {b[0]:,}; "
          f"identical multiset of (device, seq, intended): {a == b}")  # fmt: skip
    print(f"   wall: one process (2 workers) {t_one:.1f} s; {shards} shards one after another "
          f"(1 worker each) {t_shards:.1f} s in all")  # fmt: skip
    r1, r2 = rows_one / t_ingest_one, rows_merged / t_ingest_merged
    print(f"   ingest: one run {rows_one:,} rows in {t_ingest_one:.2f} s ({r1:,.0f} rows/s); "
          f"merged {shards} shards {rows_merged:,} rows in {t_ingest_merged:.2f} s "
          f"({r2:,.0f} rows/s); merged/one = {r2 / r1:.2f}")  # fmt: skip


def one_epoch(tmp: Path) -> None:
    scenario = tmp / "epoch.toml"
    scenario.write_text(
        textwrap.dedent(
            SCENARIO.format(minutes=0.25, periodic=1500, poisson=500, ramp=1000, q=3, rest=12)
        )
    )
    start = time.time() + 6
    common = ["--start-at", f"{start:.3f}", "--runs-dir", str(tmp / "ep"), "--run-id", "e",
              "--workers", "1", "--no-progress", "--status-port", "-1"]  # fmt: skip
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "simd", "run", str(scenario), "--shard", f"{i}/3", *common],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(err)
    run = tmp / "ep" / "e"
    simd("ingest", str(run))
    print("2. three shards, one epoch, real clock, null target (2,000 devices, 15 s)")
    for shard, lead, n, p50, p99 in sql(
        run,
        """
        SELECT s.shard, s.start_lead_ms, l.n, l.p50, l.p99
        FROM shard_coverage s JOIN (
            SELECT d.worker // 1000 AS shard, count(*) AS n,
                   quantile_cont(t_sent_ns - t_intended_ns, 0.5) / 1e6 AS p50,
                   quantile_cont(t_sent_ns - t_intended_ns, 0.99) / 1e6 AS p99
            FROM event_rows e JOIN devices d USING (device)
            WHERE e.kind = 0 GROUP BY ALL  -- publishes
        ) l USING (shard) ORDER BY 1
        """,
    ):
        print(f"   shard {shard}: ready {lead:,.0f} ms before t=0; {n:,} publishes, schedule "
              f"lag p50 {p50:.2f} ms, p99 {p99:.2f} ms")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=20_000)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--shards", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="simd-bench-shards-") as d:
        at_scale(Path(d), args.devices, args.minutes, args.shards)
        one_epoch(Path(d))


if __name__ == "__main__":
    main()
