"""Core pipeline benchmark: prints figures and ratios against ceilings measured in the same run.

    python benchmarks/bench_core.py [--quick] [--keep DIR]

1. virtual: the 2-hour endurance scenario (2,000 devices at 1 msg/s, 14.4M publishes) on the
   virtual clock with the sim transport, run and ingested through the CLI (target: < 180 s).
   Ceiling: the same run on the null transport (the generator alone).
2. null, real clock: one worker offered 300k, then 500k publishes/s for 15 s; rate, schedule lag
   p99 (target <= 5 ms), rows logged vs planned (target: all). Ceiling: the same slice on the
   virtual clock, i.e. as fast as the generator goes with no clock to wait for.
3. ingest: `simd ingest` of the endurance run's logs (target >= 5M events/s). Ceiling: DuckDB
   appending the same rows from memory (no decoding, no histograms).
4. report: `simd report` (terminal and HTML page) over a 100M-event run (target <= 10 s).
   Ceiling: one DuckDB scan of the 100M rows (count and sum of a latency expression).
5. follow: `simd ingest --follow` beside a real-clock run offered 300k publishes/s (1 worker,
   null transport, 20 s): rows the follower had ingested vs rows the run had logged, once a
   second, and how long after the run's end it caught up (target: keeps up, i.e. a backlog of
   about one pass and a catch-up of about one pass). Ceiling: the run's own rate.
No timing here is asserted anywhere; these machines are noisy, so read the ratios.
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent


def simd(*args: str) -> float:
    """Run the CLI; return its wall time in seconds (raises if it fails)."""
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "simd", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t


def one(db: Path, sql: str) -> tuple:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchone()
    finally:
        con.close()


def scenario(tmp: Path, name: str, body: str) -> Path:
    p = tmp / f"{name}.toml"
    p.write_text(textwrap.dedent(body))
    return p


def line(label: str, value: str, note: str = "") -> None:
    print(f"{label:<44} {value:>22}  {note}")


def bench_virtual(tmp: Path, runs: Path) -> Path:
    endurance = REPO / "scenarios" / "endurance.toml"
    t_run = simd(
        "run",
        str(endurance),
        "--runs-dir",
        str(runs),
        "--run-id",
        "endurance",
        "--no-progress",
        "--no-report",
    )
    run = runs / "endurance"
    n = one(run / "results.duckdb", "SELECT count(*) FROM event_rows WHERE kind = 0")[0]
    t_null = simd(
        "run",
        str(endurance),
        "--runs-dir",
        str(runs),
        "--run-id",
        "endurance-null",
        "--target",
        "null:",
        "--no-progress",
        "--no-report",
    )
    line("virtual 2h endurance: publishes", f"{n:,}")
    line(
        "  run + ingest wall time (sim)",
        f"{t_run:.1f} s",
        f"target < 180 s: {t_run / 180:.2f} of it",
    )
    line("  events/s, end to end", f"{n / t_run:,.0f}")
    line(
        "  ceiling: same run on null:",
        f"{t_null:.1f} s",
        f"sim run at {t_null / t_run:.2f} of the ceiling's speed",
    )
    return run


def null_300k(tmp: Path, name: str, seconds: int, total: int = 300_000) -> Path:
    """One worker offered `total` publishes/s (6,000 devices sharing it; 300k: 50/s each) on
    the null transport."""
    body = f"""
        name = "{name}"
        duration = "{seconds}s"
        target = "null:"
        [[fleet]]
        name = "g"
        count = 6000
        rate = {total / 6000}
        [run]
        workers = 1
    """
    return scenario(tmp, name, body)


def bench_null_real(tmp: Path, runs: Path, total: int = 300_000) -> None:
    k = f"{total // 1000}k"
    path = null_300k(tmp, f"null{k}", 15, total)
    simd(
        "run",
        str(path),
        "--runs-dir",
        str(runs),
        "--run-id",
        f"null-real-{k}",
        "--no-progress",
        "--no-report",
    )
    db = runs / f"null-real-{k}" / "results.duckdb"
    logged, planned = one(db, "SELECT logged, planned FROM run_summary")
    lag99, lagmax = one(
        db, "SELECT lag_p99_ns, lag_max_ns FROM schedule_lag WHERE group_name = '*'"
    )
    t_virtual = simd(
        "run",
        str(path),
        "--runs-dir",
        str(runs),
        "--run-id",
        f"null-virtual-{k}",
        "--clock",
        "virtual",
        "--no-progress",
        "--no-report",
    )
    rate = logged / 15.0
    ceiling = planned / t_virtual
    line(
        f"null transport, real clock, 1 worker, {k}/s",
        f"{rate:,.0f} /s",
        f"target >= {total:,}/s",
    )
    line("  logged / planned", f"{logged:,} / {planned:,}", "target: all")
    line(
        "  schedule lag p99 / max",
        f"{lag99 / 1e6:.2f} / {lagmax / 1e6:.2f} ms",
        "target p99 <= 5 ms",
    )
    line(
        "  ceiling: same slice, virtual clock",
        f"{ceiling:,.0f} /s",
        f"(incl. process start) real clock at {rate / ceiling:.2f} of it",
    )


def bench_ingest(run: Path) -> None:
    from simd.results.ingest import _INSERT, _prepare, sql_file  # the same code, for the ceiling

    for f in run.glob("results.duckdb*"):
        f.unlink()
    t = simd("ingest", str(run))
    n = one(run / "results.duckdb", "SELECT count(*) FROM event_rows")[0]
    import numpy as np
    import pyarrow as pa

    from simd.plan.schedule import series_window_ns
    from simd.results.merge import resolve

    group_of = np.zeros(2000, dtype=np.int16)
    q: queue.Queue = queue.Queue()
    sources = resolve([run]).sources
    _prepare(sources, {}, group_of, series_window_ns(7200 * 10**9), [], q)
    tables = []
    while (item := q.get()) is not None:
        if isinstance(item, pa.Table):
            tables.append(item)
    scratch = run / "ceiling.duckdb"
    con = duckdb.connect(str(scratch))
    con.execute(sql_file("schema.sql"))
    con.execute("SET preserve_insertion_order = false")
    t0 = time.perf_counter()
    con.execute("BEGIN")
    for rows in tables:  # noqa: B007 - read by name in the SQL
        con.execute(_INSERT)
    con.execute("COMMIT")
    con.close()
    t_ceiling = time.perf_counter() - t0
    scratch.unlink()
    line(
        "ingest (simd ingest, incl. process start)",
        f"{n / t:,.0f} ev/s",
        f"{n:,} rows in {t:.1f} s; target >= 5,000,000",
    )
    line(
        "  ceiling: DuckDB append from memory",
        f"{n / t_ceiling:,.0f} ev/s",
        f"ingest at {t_ceiling / t:.2f} of it",
    )


def bench_report(tmp: Path, runs: Path) -> None:
    body = """
        name = "big"
        duration = "1000s"
        target = "null:"
        [[fleet]]
        name = "g"
        count = 10000
        rate = 10.0
        [run]
        clock = "virtual"
    """
    path = scenario(tmp, "big", body)
    t_run = simd(
        "run", str(path), "--runs-dir", str(runs), "--run-id", "big", "--no-progress", "--no-report"
    )
    db = runs / "big" / "results.duckdb"
    n = one(db, "SELECT count(*) FROM event_rows")[0]
    t_report = simd("report", str(runs / "big"))
    t_terminal = simd("report", str(runs / "big"), "--no-html")
    t0 = time.perf_counter()
    one(db, "SELECT count(*), sum(t_done_ns - t_intended_ns) FROM event_rows WHERE kind = 0")
    t_scan = time.perf_counter() - t0
    line(
        f"report over {n / 1e6:.0f}M events (terminal + HTML)",
        f"{t_report:.2f} s",
        f"target <= 10 s (run + ingest took {t_run:.0f} s)",
    )
    line("  terminal report alone", f"{t_terminal:.2f} s")
    line(
        "  ceiling: one scan of the events",
        f"{t_scan:.2f} s",
        f"report = {t_report / t_scan:.2f} scans",
    )


def bench_follow(tmp: Path, runs: Path) -> None:
    path = null_300k(tmp, "follow300k", 20)
    run_dir = runs / "follow"
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simd",
            "run",
            str(path),
            "--runs-dir",
            str(runs),
            "--run-id",
            "follow",
            "--no-progress",
            "--no-report",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not (run_dir / "run.json").exists():
        time.sleep(0.05)
    follower = subprocess.Popen(
        [sys.executable, "-m", "simd", "ingest", "--follow", str(run_dir), "--interval", "1s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    from simd.log.eventlog import segment_paths

    backlog = []  # (logged bytes on disk, bytes the follower has committed) once a second
    while run.poll() is None:
        time.sleep(1.0)
        on_disk = sum(p.stat().st_size for p in segment_paths(run_dir / "events"))
        try:
            con = duckdb.connect(str(run_dir / "results.duckdb"), read_only=True)
            done = con.execute("SELECT coalesce(sum(offset_bytes), 0) FROM ingested").fetchone()
            con.close()
        except duckdb.Error:  # the follower is writing: try again next second
            continue
        backlog.append((on_disk - done[0]) / 43)  # 43 bytes a row in the log
    t_end = time.perf_counter()
    follower.wait()
    catch_up = time.perf_counter() - t_end
    n = one(run_dir / "results.duckdb", "SELECT count(*) FROM event_rows")[0]
    rate = n / 20
    line("follow: run logging at", f"{rate:,.0f} ev/s", "target: the follower keeps up")
    if backlog:
        line(
            "  follower backlog (rows not yet ingested)",
            f"max {max(backlog):,.0f}",
            f"median {sorted(backlog)[len(backlog) // 2]:,.0f} over {len(backlog)} samples "
            f"= {max(backlog) / rate:.2f} s of logging at most",
        )
    line("  caught up after the run ended in", f"{catch_up:.2f} s", "(one pass is 1 s apart)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 100M-event report run")
    ap.add_argument("--keep", type=Path, help="keep runs in this folder")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="simd-bench-"))
    runs = args.keep or (tmp / "runs")
    runs.mkdir(parents=True, exist_ok=True)
    print(f"simd core benchmark  ({os.cpu_count()} cores, python {sys.version.split()[0]})")
    try:
        run = bench_virtual(tmp, runs)
        bench_null_real(tmp, runs)
        bench_null_real(tmp, runs, 500_000)
        bench_ingest(run)
        bench_follow(tmp, runs)
        if not args.quick:
            bench_report(tmp, runs)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
