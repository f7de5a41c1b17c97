"""MQTT benchmark against one local mosquitto: the machine's ceiling first, then simd, with ratios.

    python benchmarks/bench_mqtt.py [--seconds 10] [--connections 19000] [--skip-aiomqtt]

1. ceiling: a minimal trio publisher (this file, ~40 lines) holding 1,000 connections and
   writing pre-encoded PUBLISH packets in batches of 20 per connection, as fast as it can:
   QoS 0 (packets written/s) and QoS 1 (PUBACKs received/s, 100 in flight per connection).
2. simd, one worker, 1,000 devices, rate-scheduled: QoS 0 at 100 msg/s each (100k/s offered;
   target >= 100k/s sustained, schedule lag p99 <= 10 ms, every event logged) and QoS 1 at
   50 msg/s each (50k/s offered; target >= 50k/s with ack latency per message).
3. aiomqtt (asyncio, the reference client) on the same broker: 100 connections, QoS 0 and QoS 1,
   for docs/decisions/0004-mqtt-on-trio.md.
4. --connections N: N devices at 1 msg/min from one run (all workers): connect ramp held,
   memory per device (sum of worker RSS / N), every publish acked.
Nothing here is asserted by the test suite; read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb
import trio

from simd.runtime.broker import EmbeddedBroker
from simd.transports.mqtt import codec as c


def line(label: str, value: str, note: str = "") -> None:
    print(f"{label:<46} {value:>20}  {note}", flush=True)


async def _ceiling(host: str, port: int, qos: int, seconds: float, conns: int = 1000) -> float:
    batch = 20
    packets = [
        c.encode(c.Publish(f"bench/{i}", b"x" * 60, qos, packet_id=(k + 1) if qos else None))
        for i in range(conns)
        for k in range(batch)
    ]
    count = 0

    async def one(i: int) -> None:
        nonlocal count
        s = await trio.open_tcp_stream(host, port)
        await s.send_all(c.encode(c.Connect(f"ceiling-{qos}-{i}")))
        d = c.Decoder()
        while not d.feed(await s.receive_some(1024)):
            pass
        payload = b"".join(packets[i * batch : (i + 1) * batch])
        deadline = trio.current_time() + seconds
        while trio.current_time() < deadline:
            await s.send_all(payload)
            if qos:
                acks = 0
                while acks < batch:
                    acks += sum(
                        isinstance(p, c.PubAck) for p in d.feed(await s.receive_some(65536))
                    )
            count += batch
        await s.aclose()

    async with trio.open_nursery() as n:
        for i in range(conns):
            n.start_soon(one, i)
    return count / seconds


def simd_argv(path: Path, url: str, runs: Path, run_id: str, *extra: str) -> list[str]:
    """`python -m simd run` for one benchmark scenario, quiet."""
    return [
        sys.executable,
        "-m",
        "simd",
        "run",
        str(path),
        "--target",
        url,
        "--runs-dir",
        str(runs),
        "--run-id",
        run_id,
        "--no-progress",
        "--no-report",
        *extra,
    ]


def run_simd(tmp: Path, url: str, name: str, body: str, *extra: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(textwrap.dedent(body))
    runs = tmp / "runs"
    subprocess.run(
        simd_argv(path, url, runs, name, *extra),
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return runs / name


def one(run: Path, sql: str) -> tuple:
    con = duckdb.connect(str(run / "results.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchone()
    finally:
        con.close()


def fleet(
    name: str, count: int, rate: float, qos: int, seconds: int, workers: int = 1, extra: str = ""
) -> str:
    return f"""
        name = "{name}"
        duration = "{seconds}s"
        target = "embedded"
        [[fleet]]
        name = "g"
        count = {count}
        rate = {rate}
        qos = {qos}
        topic = "bench/{{device_id}}"
        payload = {{ kind = "random", size = 60 }}
        {extra}
        [run]
        workers = {workers}
    """


def bench_simd(tmp: Path, url: str, seconds: int, ceilings: dict[int, float]) -> None:
    for qos, rate in ((0, 100.0), (1, 50.0)):
        run = run_simd(tmp, url, f"simd-q{qos}", fleet(f"q{qos}", 1000, rate, qos, seconds))
        logged, planned, completed = one(run, "SELECT logged, planned, completed FROM run_summary")
        lag = one(run, "SELECT lag_p99_ns FROM schedule_lag WHERE group_name = '*'")[0]
        achieved = completed / seconds
        target = 100_000 if qos == 0 else 50_000
        line(
            f"simd qos {qos}, 1 worker, 1,000 devices",
            f"{achieved:,.0f} msg/s",
            f"target >= {target:,}; ratio to ceiling {achieved / ceilings[qos]:.2f}",
        )
        line("  logged / planned", f"{logged:,} / {planned:,}")
        line("  schedule lag p99", f"{lag / 1e6:.2f} ms", "target <= 10 ms")
        if qos:
            p50, p99 = one(
                run,
                "SELECT p50_sent_ns, p99_sent_ns FROM latency_percentiles WHERE group_name = '*'",
            )
            line("  ack latency p50 / p99 (from sent)", f"{p50 / 1e6:.2f} / {p99 / 1e6:.2f} ms")


def bench_aiomqtt(host: str, port: int, seconds: float) -> None:
    import logging

    import aiomqtt

    logging.getLogger("mqtt").setLevel(logging.CRITICAL)  # "pending publish calls" warnings

    async def main(qos: int) -> float:
        count = 0

        async def one(i: int) -> None:
            nonlocal count
            async with aiomqtt.Client(
                host, port, identifier=f"aio-{qos}-{i}", max_queued_outgoing_messages=10000
            ) as cl:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    await asyncio.gather(
                        *(cl.publish(f"bench/aio/{i}", b"x" * 60, qos=qos) for _ in range(20))
                    )
                    count += 20

        await asyncio.gather(*(one(i) for i in range(100)))
        return count / seconds

    for qos in (0, 1):
        line(f"aiomqtt qos {qos}, 100 connections", f"{asyncio.run(main(qos)):,.0f} msg/s")


def worker_rss_kib(root_pid: int) -> int:
    """Sum of RSS of the supervisor's worker children (KiB)."""
    out = subprocess.run(["pgrep", "-P", str(root_pid)], capture_output=True, text=True).stdout
    total = 0
    for pid in out.split():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"mosquitto" in cmd or b"resource_tracker" in cmd:
            continue
        for ln in status.splitlines():
            if ln.startswith("VmRSS:"):
                total += int(ln.split()[1])
    return total


def bench_connections(tmp: Path, url: str, n: int) -> None:
    seconds = 150
    rate_conn = 500.0
    body = fleet(
        "conns",
        n,
        1 / 60,
        1,
        seconds,
        workers=2,
        extra=f'[fleet.mqtt]\nconnect_rate = {rate_conn}\nkeepalive = "120s"',
    )
    path = tmp / "conns.toml"
    path.write_text(textwrap.dedent(body))
    proc = subprocess.Popen(
        simd_argv(path, url, tmp / "runs", "conns"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    while proc.poll() is None:
        peak = max(peak, worker_rss_kib(proc.pid))
        time.sleep(1)
    run = tmp / "runs" / "conns"
    ok, first, last = one(
        run,
        "SELECT count(*), min(t_done_ns), max(t_done_ns) FROM events "
        "WHERE kind = 'connect' AND status = 'ok'",
    )
    acked, planned = one(run, "SELECT completed, planned FROM run_summary")
    ramp_s = (last - first) / 1e9
    want_s = n / rate_conn
    line(f"{n:,} connections, one run (2 workers)", f"{ok:,} connected")
    line(
        "  connect ramp",
        f"{ramp_s:.1f} s",
        f"planned {want_s:.1f} s at {rate_conn:g}/s: "
        f"{100 * (ramp_s - want_s) / want_s:+.1f}% (target within 5%)",
    )
    line(
        "  worker RSS peak / device",
        f"{peak / n:.1f} KiB",
        f"{peak / 1024:.0f} MiB in all; target <= 16 KiB",
    )
    line("  publishes acked / planned", f"{acked:,} / {planned:,}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=0)
    ap.add_argument("--skip-aiomqtt", action="store_true")
    ap.add_argument("--only-connections", action="store_true", help="just the --connections run")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="simd-bench-mqtt-"))
    with EmbeddedBroker("mosquitto") as broker:
        host, port = broker.host, broker.port
        print(f"simd MQTT benchmark against mosquitto at {broker.url} ({os.cpu_count()} cores)")
        ceilings = {}
        for qos in () if args.only_connections else (0, 1):
            ceilings[qos] = trio.run(_ceiling, host, port, qos, float(args.seconds))
            line(f"ceiling qos {qos}: trio, pre-encoded, batches", f"{ceilings[qos]:,.0f} msg/s")
        if not args.only_connections:
            bench_simd(tmp, broker.url, args.seconds, ceilings)
        if not args.skip_aiomqtt and not args.only_connections:
            bench_aiomqtt(host, port, float(min(args.seconds, 5)))
        if args.connections:
            bench_connections(tmp, broker.url, args.connections)
    print(json.dumps({"tmp": str(tmp)}))


if __name__ == "__main__":
    main()
