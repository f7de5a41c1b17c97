"""`simd ingest --follow`: results.duckdb stays current while a run writes its logs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import simd, sql, start_run, wait_until, write_scenario

LIVE = """
name = "live"
seed = 5
duration = "25s"
target = "sim:"

[[fleet]]
name = "g"
count = 200
rate = 6.0
qos = 1

[run]
flush_interval = "50ms"
resource_samples = "1s"
"""


def _follow(run_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "simd", "ingest", "--follow", str(run_dir), "--interval", "200ms"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_follow_keeps_results_current_and_survives_its_own_restart(
    tmp_path: Path, runs: Path
) -> None:
    """Mid-run, queries and the report see a growing prefix; a follower killed with -9 and
    started again double-counts nothing; it ends by itself when the run does."""
    run = start_run(write_scenario(tmp_path, LIVE), runs, "live", "--no-report")
    run_dir = runs / "live"
    wait_until(lambda: (run_dir / "run.json").exists())
    first = _follow(run_dir)
    wait_until(lambda: (run_dir / "results.duckdb").exists())
    time.sleep(1.5)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)

    follower = _follow(run_dir)

    def published() -> int:
        q = simd("query", str(run_dir), "SELECT count(*) AS n FROM events WHERE kind = 'publish'",
                 "--format", "csv")  # fmt: skip
        assert q.returncode == 0, q.stderr
        return int(q.stdout.split()[-1])

    # facts, not the machine's pace: the follower's passes show a prefix that grows
    wait_until(lambda: published() > 0, timeout=90)
    first_seen = published()
    mid = simd("report", str(run_dir), "--html", str(tmp_path / "mid.html"), check=0)
    assert "state running" in mid.stdout
    assert (tmp_path / "mid.html").read_text().count("<svg") >= 4
    assert 0 < first_seen < 30_000  # a prefix of the 30,000 planned, seen while it runs
    # it grows; the later pass may be the run's last one, so it may hold all 30,000
    wait_until(lambda: published() > first_seen, timeout=90)

    _, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert run.wait(timeout=60) == 0, run.stderr.read() if run.stderr else ""
    rows = sql(
        run_dir,
        "SELECT count(*), count(DISTINCT (device, seq)), count(*) FILTER (WHERE status = 'acked')"
        " FROM events WHERE kind = 'publish'",
    )[0]
    assert rows == (30_000, 30_000, 30_000)
    assert sql(run_dir, "SELECT state FROM runs")[0][0] == "completed"
    assert sql(run_dir, "SELECT count(*) FROM samples")[0][0] >= 2 * 25
    # the totals kept at ingest agree with the rows: nothing was counted twice
    assert sql(run_dir, "SELECT logged FROM run_summary")[0][0] == 30_000
    assert "Traceback" not in err


def test_follow_of_a_finished_run_is_one_pass(tmp_path: Path, runs: Path) -> None:
    """On a run that has ended, --follow ingests what is left and returns."""
    body = LIVE.replace('"25s"', '"2s"')
    run = start_run(write_scenario(tmp_path, body), runs, "done", "--no-report")
    assert run.wait(timeout=60) == 0
    r = simd("ingest", "--follow", str(runs / "done"), timeout=30, check=0)
    assert "ingested 0 new rows from 0 frames" in r.stdout
