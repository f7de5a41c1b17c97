"""HTTP benchmark against one local nginx: the machine's ceiling (wrk), then simd, with ratios.

    python benchmarks/bench_http.py [--seconds 10] [--devices 200] [--rate 20000]

nginx (one worker process) answers GET /v1/users with a small JSON body from memory, pinned to
the second core; the clients run on the first. Needs the Debian packages nginx(-light) and wrk.
1. ceiling: wrk, one thread, as many keep-alive connections as simd's devices, as fast as it can.
2. simd, one worker, open model: DEVICES devices with one keep-alive connection each, RATE
   requests/s offered in total (target: >= 20k requests/s per worker with schedule lag p99
   <= 10 ms, every request logged).
3. simd with a 3-step journey at the same offered request rate, for its cost beside single
   requests.
4. the codec alone against h11 (installed with trio-websocket): one request encoded and one
   nginx-like response parsed, 100,000 times each (docs/decisions/0008-http-transport.md).
Nothing here is asserted by the test suite; read the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from simd.runtime.broker import free_port  # noqa: E402

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type application/json; return 200 '{{"users":[1,2,3]}}'; }}
    }}
}}
"""

SCENARIO = """
name = "bench-http"
duration = "{seconds}s"
target = "http://127.0.0.1:{port}"
[run]
resource_samples = "0s"
[[fleet]]
name = "api"
count = {devices}
rate = {rate_per_device}
{requests}
"""

REQUESTS = """
[[fleet.requests]]
name = "list"
path = "/v1/users"
expect_status = [200]
"""

JOURNEY = """
[[fleet.journey]]
name = "one"
path = "/v1/users?step=1"
[[fleet.journey]]
name = "two"
path = "/v1/users/{seq}"
[[fleet.journey]]
name = "three"
path = "/v1/users?step=3"
"""


def line(label: str, value: str, note: str = "") -> None:
    print(f"{label:<52} {value:>18}  {note}", flush=True)


def pinned(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() > 1 else []


def simd_run(path: Path, runs: Path) -> dict:
    proc = subprocess.run(
        [*pinned(0), sys.executable, "-m", "simd", "run", str(path), "--workers", "1",
         "--runs-dir", str(runs), "--no-progress", "--no-report"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode not in (0, 1):
        sys.exit(f"simd run failed ({proc.returncode}):\n{proc.stderr}")
    run_dir = Path(proc.stdout.splitlines()[0])
    con = duckdb.connect(str(run_dir / "results.duckdb"), read_only=True)
    try:
        planned, logged, acked, first, last = con.execute(
            "SELECT (SELECT planned_publishes FROM runs), count(*), "
            "count(*) FILTER (WHERE status = 'acked'), min(t_sent_ns), max(t_done_ns) "
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
        "logged": logged,
        "acked": acked,
        "rate": acked / ((last - first) / 1e9),
        "lag_p99_ms": lag[0] / 1e6,
        "p50_ms": lat[0] / 1e6,
        "p99_ms": lat[1] / 1e6,
    }


RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 23 Nov 2026 14:00:00 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: 17\r\nConnection: keep-alive\r\n\r\n"
    b'{"users":[1,2,3]}'
)


def codec_vs_h11(n: int = 100_000) -> None:
    import h11

    from simd.transports.http.codec import ResponseReader, encode_request, request_head

    head = request_head("GET", "/v1/users", "127.0.0.1:8080", {"Accept": "application/json"})
    t = time.perf_counter()
    reader = ResponseReader()
    for _ in range(n):
        encode_request(head, b"")
        reader.sent(False, False)
        reader.feed(RESPONSE)
    ours = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    conn = h11.Connection(h11.CLIENT)
    headers = [("Host", "127.0.0.1:8080"), ("Accept", "application/json"), ("Content-Length", "0")]
    for _ in range(n):
        conn.send(h11.Request(method="GET", target="/v1/users", headers=headers))
        conn.send(h11.EndOfMessage())
        conn.receive_data(RESPONSE)
        while not isinstance(ev := conn.next_event(), h11.EndOfMessage) and ev is not h11.NEED_DATA:
            pass
        conn.start_next_cycle()
    theirs = (time.perf_counter() - t) / n * 1e6
    line("codec: request + response, simd", f"{ours:.2f} us")
    line("codec: request + response, h11", f"{theirs:.2f} us", f"{theirs / ours:.1f}x simd's")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--rate", type=float, default=20000.0)
    args = ap.parse_args()
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} is not installed (apt-get install nginx-light wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="simd-bench-http-"))
    port = free_port()
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(dir=tmp, port=port))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    server = subprocess.Popen([*pinned(1), nginx, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)])
    time.sleep(0.5)
    try:
        wrk = subprocess.run(
            [*pinned(0), "wrk", "-t1", f"-c{args.devices}", f"-d{args.seconds}s",
             f"http://127.0.0.1:{port}/v1/users"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        ceiling = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
        line(f"ceiling: wrk, 1 thread, {args.devices} keep-alive connections", f"{ceiling:,.0f}/s")
        runs = tmp / "runs"
        for label, body, per_arrival in (("requests", REQUESTS, 1), ("3-step journey", JOURNEY, 3)):
            path = tmp / f"{label[:3]}.toml"
            path.write_text(
                textwrap.dedent(
                    SCENARIO.format(
                        seconds=args.seconds,
                        port=port,
                        devices=args.devices,
                        rate_per_device=args.rate / args.devices / per_arrival,
                        requests=body,
                    )
                )
            )
            r = simd_run(path, runs)
            line(
                f"simd, 1 worker, {label}: acked requests/s",
                f"{r['rate']:,.0f}/s",
                f"{args.rate:,.0f}/s offered; ratio to wrk {r['rate'] / ceiling:.2f}",
            )
            line(
                f"simd, {label}: logged / planned, acked",
                f"{r['logged']:,} / {r['planned']:,}",
                f"acked {r['acked']:,}",
            )
            line(f"simd, {label}: schedule lag p99", f"{r['lag_p99_ms']:.2f} ms", "target <= 10 ms")
            line(f"simd, {label}: response p50 / p99", f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} ms")
    finally:
        server.terminate()
        server.wait(10)
    codec_vs_h11()
    print(f"(work folder: {tmp})")


if __name__ == "__main__":
    main()
