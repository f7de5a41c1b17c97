"""Dashboard cost benchmark: the supervisor's CPU with the live page open, at 300k publishes/s.

    python benchmarks/bench_dashboard.py [--seconds 20]

One worker on the null transport offered 300k publishes/s (6,000 devices at 50/s), twice in the
same run: once with nothing reading its status server (the ceiling: what the supervisor costs
anyway), once with a client doing what the dashboard page does, GET /api/dashboard?start=N&epoch=E
once a second. The supervisor is the `simd run` process itself (its workers are children and
not counted): its user+system CPU seconds from /proc over the middle of the run (from 3 s after
its status URL appears to 2 s before its end), over the wall time between. Target: within 2 % of
a core with the page open. No timing here is asserted anywhere; read the figures against the
ceiling of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import duckdb
from bench_core import null_300k  # benchmarks/ is on the path when a script there runs

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def status_url(run_dir: Path, proc: subprocess.Popen[bytes]) -> str:
    while True:
        try:
            url = json.loads((run_dir / "run.json").read_text()).get("status_url")
            if url:
                return str(url)
        except (OSError, ValueError):
            pass
        if proc.poll() is not None:
            raise SystemExit(f"the run ended early (exit {proc.returncode})")
        time.sleep(0.05)


class Page(threading.Thread):
    """What the dashboard page does: its feed once a second, asking only for new points."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop = url, threading.Event()
        self.times: list[float] = []
        self.sizes: list[int] = []
        self.points, self.epoch = 0, -1

    def run(self) -> None:
        while not self.stop.wait(1.0):
            t = time.perf_counter()
            try:
                q = f"/api/dashboard?start={self.points}&epoch={self.epoch}"
                with urllib.request.urlopen(self.url + q, timeout=5) as r:  # loopback
                    body = r.read()
            except OSError:
                continue
            self.times.append(time.perf_counter() - t)
            self.sizes.append(len(body))
            d = json.loads(body)
            if d["epoch"] != self.epoch:
                self.points = 0
            self.epoch = d["epoch"]
            self.points = d["start"] + len(d["points"])


def one_run(tmp: Path, name: str, seconds: int, page: bool) -> dict[str, float]:
    scenario = null_300k(tmp, name, seconds)  # the core benchmark's 300k/s slice
    runs = tmp / "runs"
    cmd = [sys.executable, "-m", "simd", "run", str(scenario), "--runs-dir", str(runs),
           "--run-id", name, "--no-progress", "--no-report", "--status-port", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = status_url(runs / name, proc)
    t_url = time.monotonic()
    reader = Page(url) if page else None
    if reader is not None:
        reader.start()
    time.sleep(3)
    c0, w0 = cpu_s(proc.pid), time.monotonic()
    time.sleep(max(1.0, seconds - 5 - (time.monotonic() - t_url)))
    c1, w1 = cpu_s(proc.pid), time.monotonic()
    if reader is not None:
        reader.stop.set()
    proc.wait(timeout=seconds + 120)
    con = duckdb.connect(str(runs / name / "results.duckdb"), read_only=True)
    logged, planned = con.execute("SELECT logged, planned FROM run_summary").fetchone()
    con.close()
    out = {"cpu": (c1 - c0) / (w1 - w0), "logged": logged, "planned": planned}
    if reader is not None and reader.times:
        out["req_ms"] = 1e3 * sum(reader.times) / len(reader.times)
        out["req_n"] = len(reader.times)
        out["first_kb"] = reader.sizes[0] / 1024
        out["later_kb"] = sum(reader.sizes[1:]) / max(1, len(reader.sizes) - 1) / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="simd-bench-dash-") as tmp:
        base = one_run(Path(tmp), "nopage", args.seconds, page=False)
        with_page = one_run(Path(tmp), "page", args.seconds, page=True)
    print(f"null transport, 1 worker, 300k publishes/s offered, {args.seconds} s each")
    for label, r in (("no page (ceiling)", base), ("page open, 1 Hz", with_page)):
        print(f"  {label:<20} supervisor CPU {100 * r['cpu']:5.2f} % of a core;"
              f" {r['logged']:,} of {r['planned']:,} planned logged")  # fmt: skip
    extra = with_page["cpu"] - base["cpu"]
    print(f"  the page's own cost: {100 * extra:+.2f} % of a core; target: supervisor within 2 %"
          f" with the page open ({100 * with_page['cpu']:.2f} %)")  # fmt: skip
    if "req_ms" in with_page:
        print(f"  /api/dashboard: {with_page['req_n']:.0f} requests, {with_page['req_ms']:.1f} ms"
              f" mean; first {with_page['first_kb']:.1f} KiB, then"
              f" {with_page['later_kb']:.1f} KiB each")  # fmt: skip


if __name__ == "__main__":
    main()
