"""Transport plugin benchmark: the cost per publish of the plugin adapter (docs/plugins.md),
against ceilings measured in the same run.

    python benchmarks/bench_plugin.py [--quick]

1. adapter: one worker, 1,000 devices, a plugin whose publish returns at once
   (`confirms = False`), offered 10k / 30k / 60k publishes/s for 8 s; completed per second and
   schedule lag p99. Ceiling: the null transport (the generator alone) at the same offered rate.
2. redis: the Redis Streams example (examples/plugins) against redis-server, 100 devices,
   offered 5k / 10k / 20k XADDs/s; acked per second, latency p50/p99 from the actual send.
   Ceiling: a raw trio client in this process, 100 connections, one XADD round trip at a time
   each (what `concurrency = 1` allows), as fast as it goes.
The generator runs on core 0 (taskset), redis-server on core 1. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import trio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "examples" / "plugins"))

NOOP = """
class Noop:
    confirms = False

    def __init__(self, target, device):
        pass

    async def connect(self):
        pass

    async def publish(self, message):
        pass

    async def close(self):
        pass
"""

SCENARIO = """
name = "bench-plugin"
duration = "{seconds}s"
target = "{target}"
[run]
resource_samples = "0s"
[[fleet]]
name = "g"
count = {devices}
rate = {rate_per_device}
topic = "bench/{{device_id}}"
"""


def pinned(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() > 1 else []


def line(label: str, value: str, note: str = "") -> None:
    print(f"{label:<56} {value:>16}  {note}", flush=True)


def simd_run(folder: Path, target: str, devices: int, rate: float, seconds: int) -> dict:
    path = folder / "bench.toml"
    path.write_text(
        SCENARIO.format(
            seconds=seconds, target=target, devices=devices, rate_per_device=rate / devices
        )
    )
    proc = subprocess.run(
        [*pinned(0), sys.executable, "-m", "simd", "run", str(path), "--workers", "1",
         "--runs-dir", str(folder / "runs"), "--no-progress", "--no-report"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode not in (0, 1):
        sys.exit(f"simd run failed ({proc.returncode}):\n{proc.stderr}")
    run_dir = Path(proc.stdout.splitlines()[0])
    con = duckdb.connect(str(run_dir / "results.duckdb"), read_only=True)
    try:
        planned, done, first, last = con.execute(
            "SELECT (SELECT planned_publishes FROM runs), "
            "count(*) FILTER (WHERE status IN ('acked', 'sent')), min(t_sent_ns), max(t_done_ns) "
            "FROM events WHERE kind = 'publish'"
        ).fetchone()
        lag = con.execute("SELECT lag_p99_ns FROM schedule_lag WHERE group_name = '*'").fetchone()
        lat = con.execute(
            "SELECT p50_sent_ns, p99_sent_ns FROM latency_percentiles WHERE group_name = '*'"
        ).fetchone()
    finally:
        con.close()
    return {
        "planned": planned,
        "done": done,
        "rate": done / ((last - first) / 1e9),
        "lag_ms": lag[0] / 1e6,
        "p50_ms": (lat[0] or 0) / 1e6,
        "p99_ms": (lat[1] or 0) / 1e6,
    }


async def raw_redis(port: int, connections: int, seconds: float) -> float:
    """XADDs per second from `connections` trio clients, one round trip at a time each."""
    from redis_streams import Replies, command

    done = 0
    deadline = trio.current_time() + seconds

    async def client(i: int) -> None:
        nonlocal done
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        replies = Replies(stream)
        key = f"raw/{i}".encode()
        while trio.current_time() < deadline:
            await stream.send_all(command(b"XADD", key, b"*", b"payload", b"x" * 40))
            await replies.read()
            done += 1
        await stream.aclose()

    async with trio.open_nursery() as n:
        for i in range(connections):
            n.start_soon(client, i)
    return done / seconds


def adapter(folder: Path, rates: list[int], seconds: int) -> None:
    (folder / "noop.py").write_text(NOOP)
    print("1. adapter: 1 worker, 1,000 devices, a publish that returns at once")
    for rate in rates:
        ceiling = simd_run(folder, "null:", 1000, rate, seconds)
        got = simd_run(folder, "plugin:noop:Noop", 1000, rate, seconds)
        line(
            f"   offered {rate:,}/s: plugin completed/s (lag p99)",
            f"{got['rate']:,.0f}",
            f"lag p99 {got['lag_ms']:.1f} ms; null {ceiling['rate']:,.0f}/s lag p99 "
            f"{ceiling['lag_ms']:.1f} ms; ratio {got['rate'] / ceiling['rate']:.2f}; "
            f"{got['done']:,} of {got['planned']:,} completed",
        )


def redis(folder: Path, rates: list[int], seconds: int) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        print("2. redis: skipped (redis-server not installed)")
        return
    from simd.runtime.broker import free_port

    port = free_port()
    server = subprocess.Popen(
        [*pinned(1), binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        shutil.copy(REPO / "examples" / "plugins" / "redis_streams.py", folder)
        os.sched_setaffinity(0, {0})
        ceiling = trio.run(raw_redis, port, 100, float(seconds))
        print(f"2. redis: 100 devices; raw trio client ceiling {ceiling:,.0f} XADD/s")
        for rate in rates:
            got = simd_run(
                folder, f"plugin:redis_streams:RedisStreams?port={port}", 100, rate, seconds
            )
            line(
                f"   offered {rate:,}/s: acked/s",
                f"{got['rate']:,.0f}",
                f"ratio to raw {got['rate'] / ceiling:.2f}; lag p99 {got['lag_ms']:.1f} ms; "
                f"latency p50 {got['p50_ms']:.2f} ms p99 {got['p99_ms']:.2f} ms; "
                f"{got['done']:,} of {got['planned']:,} acked",
            )
    finally:
        server.kill()
        server.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    seconds = 4 if args.quick else 8
    with tempfile.TemporaryDirectory(prefix="simd-bench-plugin-") as tmp:
        folder = Path(tmp)
        adapter(folder, [10_000] if args.quick else [10_000, 30_000, 60_000], seconds)
        redis(folder, [5_000] if args.quick else [5_000, 10_000, 20_000], seconds)


if __name__ == "__main__":
    main()
