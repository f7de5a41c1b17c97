"""Record and replay against one local mosquitto: the issue's acceptance run, with figures.

    python benchmarks/bench_replay.py [--seconds 60] [--devices 200]

1. record: `simd record` subscribes to bench/# while a simd fleet (DEVICES devices at 1 msg/s
   on average: a ramp, a 2x burst, a quiet stretch, a sine) publishes for SECONDS; SIGINT ends
   the recording.
2. replay at --speed 1 against the same mosquitto with the reference client (aiomqtt)
   subscribed: send offset p50/p99/max from the recorded time (target p99 <= 5 ms), per-second
   count correlation (target >= 0.99), and whether every (topic, payload) arrived byte for
   byte, as often as it was recorded.
3. replay at --speed 10 --fanout 10 (100x the recorded rate) against mosquitto: correlation
   after scaling (target >= 0.99) and send offsets, with the recorded qos (1) and with --qos 0.
4. the replay scheduler's own rate on the virtual clock (null target, 100 passes x fanout 10)
   against a periodic fleet of the same size and event count: the ratio says what replaying
   from a recording costs beside computing a schedule; then `simd report` over that run.
Nothing here is asserted by the test suite; read the figures.
"""

from __future__ import annotations

import argparse
import collections
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from simd.log.recording import read_recording  # noqa: E402
from simd.runtime.broker import EmbeddedBroker  # noqa: E402
from tests.conftest import subscribe_in_thread  # noqa: E402

FLEET = """
name = "bench-source"
seed = 11
duration = "{seconds}s"
target = "{url}"

[[fleet]]
name = "dev"
count = {devices}
id = "dev-{{index:04d}}"
rate = 1.0
qos = 1
topic = "bench/{{device_id}}/data"

[[phase]]
name = "ramp"
duration = "{q}s"
shape = "ramp"
start = 0.2
end = 1.5

[[phase]]
name = "burst"
duration = "{q}s"
shape = "burst"
level = 1.0
peak = 2.0
burst_at = "{b}s"
burst_length = "{b}s"

[[phase]]
name = "quiet"
duration = "{q}s"
level = 0.4

[[phase]]
name = "wave"
duration = "{q}s"
shape = "sine"
level = 1.0
amplitude = 0.6
period = "{b}s"
"""


def line(label: str, value: str, note: str = "") -> None:
    print(f"{label:<52} {value:>16}  {note}", flush=True)


def simd(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "simd", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode not in (0, 1):
        sys.exit(f"simd {args[0]} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def fidelity(run_dir: Path) -> dict:
    con = duckdb.connect(str(run_dir / "results.duckdb"), read_only=True)
    try:
        cur = con.execute("SELECT * FROM replay_fidelity")
        names = [d[0] for d in cur.description]
        return dict(zip(names, cur.fetchone(), strict=True))
    finally:
        con.close()


def replay(recording: Path, url: str, runs: Path, *extra: str) -> dict:
    proc = simd(
        "replay", str(recording), "--target", url, "--runs-dir", str(runs),
        "--no-progress", "--no-report", *extra,
    )  # fmt: skip
    return fidelity(Path(proc.stdout.splitlines()[0]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--devices", type=int, default=200)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="simd-bench-replay-"))
    runs = tmp / "runs"
    q = args.seconds / 4
    with EmbeddedBroker("mosquitto") as broker:
        scenario = tmp / "source.toml"
        scenario.write_text(
            textwrap.dedent(
                FLEET.format(
                    seconds=args.seconds, url=broker.url, devices=args.devices, q=q, b=q / 3
                )
            )
        )
        out = tmp / "fleet.simrec"
        recorder = subprocess.Popen(
            [sys.executable, "-m", "simd", "record", broker.url, "-t", "bench/#", "--out",
             str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(1.5)
        simd("run", str(scenario), "--runs-dir", str(runs), "--no-progress", "--no-report")
        time.sleep(0.5)
        recorder.send_signal(signal.SIGINT)
        recorder.communicate(timeout=30)
        rec = read_recording(out)
        line(
            f"recorded ({args.devices} devices, {args.seconds} s)",
            f"{len(rec):,} msgs",
            f"{out.stat().st_size:,} bytes, {len(rec.gaps)} gaps, clean close: "
            f"{rec.end_ns is not None}",
        )

        got: list = []
        ready, stop = threading.Event(), threading.Event()
        t = subscribe_in_thread(broker.url, "bench/#", "3.1.1", got, ready, stop)
        ready.wait(10)
        f1 = replay(out, broker.url, runs)
        deadline = time.monotonic() + 15
        while len(got) < len(rec) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        t.join(5)
        same = collections.Counter((tp, p) for tp, p, *_ in got) == collections.Counter(
            zip(rec.topic, rec.payload.to_list(), strict=True)
        )
        line("speed 1: sent / planned", f"{f1['sent']:,} / {f1['planned']:,}")
        for k in ("p50", "p99", "max"):
            note = "target <= 5 ms" if k == "p99" else ""
            line(f"speed 1: send offset {k}", f"{f1[f'send_offset_{k}_ms']:.3f} ms", note)
        line("speed 1: per-second correlation (sent)", f"{f1['correlation_sent']:.5f}",
             f"target >= 0.99, over {f1['seconds']} s")  # fmt: skip
        line("speed 1: payloads byte-identical at a subscriber", str(same),
             f"{len(got):,} received")  # fmt: skip

        f10 = replay(out, broker.url, runs, "--speed", "10", "--fanout", "10")
        line("speed 10 x fanout 10: sent / planned", f"{f10['sent']:,} / {f10['planned']:,}")
        line("speed 10 x fanout 10: correlation (sent)", f"{f10['correlation_sent']:.5f}",
             f"target >= 0.99, over {f10['seconds']} tenths of a second")  # fmt: skip
        line("speed 10 x fanout 10: send offset p99", f"{f10['send_offset_p99_ms']:.3f} ms")
        f0 = replay(out, broker.url, runs, "--speed", "10", "--fanout", "10", "--qos", "0")
        line("same, --qos 0: correlation (sent)", f"{f0['correlation_sent']:.5f}",
             "target >= 0.99")  # fmt: skip
        line("same, --qos 0: send offset p99", f"{f0['send_offset_p99_ms']:.3f} ms")

    # the scheduler alone: replay vs a periodic fleet with the same devices and events
    t0 = time.perf_counter()
    fv = replay(out, "null:", runs, "--clock", "virtual", "--loop", "100", "--fanout", "10")
    replay_s = time.perf_counter() - t0
    n = fv["planned"]
    periodic = tmp / "periodic.toml"
    rate = n / (args.devices * 10) / (fv["passes"] * (rec.duration_ns / 1e9))
    periodic.write_text(
        f'name = "periodic"\nduration = "{fv["passes"] * rec.duration_ns / 1e9 + 1:.0f}s"\n'
        f'target = "null:"\n[[fleet]]\nname = "dev"\ncount = {args.devices * 10}\n'
        f"rate = {rate:.6f}\n"
    )
    t0 = time.perf_counter()
    simd("run", str(periodic), "--clock", "virtual", "--runs-dir", str(runs), "--no-progress",
         "--no-report")  # fmt: skip
    periodic_s = time.perf_counter() - t0
    line("virtual clock, null: replay run+ingest", f"{n / replay_s:,.0f} ev/s", f"{n:,} events")
    line("virtual clock, null: periodic fleet run+ingest", f"{n / periodic_s:,.0f} ev/s",
         f"ratio replay/periodic {periodic_s / replay_s:.2f}")  # fmt: skip
    replay_dir = sorted(runs.glob("*-replay-*"), key=lambda p: p.stat().st_mtime)[-1]
    t0 = time.perf_counter()
    simd("report", str(replay_dir))
    line("simd report (terminal + HTML) over that replay run", f"{time.perf_counter() - t0:.2f} s",
         f"{n:,} events, fidelity from the ingest tallies")  # fmt: skip
    print(f"(work folder: {tmp})")


if __name__ == "__main__":
    main()
