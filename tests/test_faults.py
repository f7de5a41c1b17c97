"""What goes wrong around a long run, each with what simd must do about it: a target that is
down at the start, a disk that fills, a signal during the connect ramp, a slow target."""

from __future__ import annotations

import contextlib
import json
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simd.runtime.broker import EmbeddedBroker, free_port
from tests.conftest import (
    live_counts,
    need_mosquitto,
    run_state,
    simd,
    sql,
    start_run,
    wait_until,
    write_scenario,
)


def _mqtt_scenario(tmp: Path, target: str, duration: str, extra: str = "", **fleet: object) -> Path:
    body = f"""
    name = "faults"
    seed = 3
    duration = "{duration}"
    target = "{target}"

    [[fleet]]
    name = "g"
    count = {fleet.get("count", 20)}
    rate = {fleet.get("rate", 5.0)}
    qos = 1

    [fleet.mqtt]
    reconnect_min = "200ms"
    reconnect_max = "1s"
    connect_timeout = "2s"
    {extra}
    """
    return write_scenario(tmp, body)


def _wait_running(run_dir: Path, timeout: float = 30) -> None:
    wait_until(lambda: run_state(run_dir) == "running", timeout)


def test_target_down_at_start_then_up(tmp_path: Path, runs: Path) -> None:
    """Nothing listens when the run starts: connect errors are logged, devices retry with
    backoff, and once the broker is up the run goes on and publishes are acked."""
    need_mosquitto()
    port = free_port("127.0.0.1")
    path = _mqtt_scenario(tmp_path, f"mqtt://127.0.0.1:{port}", "6s")
    proc = start_run(path, runs, "down", "--no-report")
    # down for 2 s of publishes (of 6 s: a third), however long the run took to start
    wait_until(lambda: live_counts(runs / "down").get("errors", 0) >= 200, timeout=60)
    with EmbeddedBroker("mosquitto", port=port):
        _, err = proc.communicate(timeout=60)
    # done, but a third of the publishes were due while nothing listened: the default
    # error_rate SLO fails it (exit 1)
    assert proc.returncode == 1 and "error_rate (default): FAILED" in err, err
    run_dir = runs / "down"
    refused = sql(
        run_dir, "SELECT count(*) FROM events WHERE kind = 'connect' AND status = 'error'"
    )[0][0]
    connected = sql(
        run_dir,
        "SELECT count(DISTINCT device) FROM events WHERE kind = 'connect' AND status = 'ok'",
    )[0][0]
    assert refused >= 20 and connected == 20
    acked, dropped = sql(
        run_dir,
        "SELECT count(*) FILTER (WHERE status = 'acked'), count(*) FILTER (WHERE status = "
        "'dropped') FROM events WHERE kind = 'publish'",
    )[0]
    assert acked > 0 and dropped > 0  # due while nothing listened: dropped, not connected
    assert sql(run_dir, "SELECT planned = logged FROM run_summary")[0][0]
    findings = [r[0] for r in sql(run_dir, "SELECT finding FROM recommendations")]
    assert "connection problems" in findings


@contextlib.contextmanager
def _small_disk(tmp: Path, size: str) -> Iterator[tuple[Path, dict[str, object]]]:
    """A folder on a file system `size` big (tmpfs, where this user may mount one); elsewhere
    a per-process file size limit that fails writes the same way (EFBIG instead of ENOSPC)."""
    mnt = tmp / "small"
    mnt.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
            capture_output=True,
        ).returncode
        == 0
    )
    limit = {"m": 2**20, "k": 2**10}[size[-1]] * int(size[:-1])

    def cap() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit: EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    try:
        yield mnt, ({} if mounted else {"preexec_fn": cap})
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_full_stops_the_run_cleanly(tmp_path: Path) -> None:
    """The log's disk fills: the run stops (exit 3) with one line naming the file system
    problem and where, no traceback; what was written reads back, and ingests elsewhere."""
    body = """
    name = "full"
    duration = "60s"
    target = "sim:"
    [[fleet]]
    name = "g"
    count = 500
    rate = 20.0
    [run]
    flush_interval = "50ms"
    """
    path = write_scenario(tmp_path, body)
    with _small_disk(tmp_path, "1m") as (disk, popen_kw):
        proc = simd(
            "run", str(path), "--runs-dir", str(disk), "--run-id", "full", "--no-progress",
            "--no-report", timeout=120, check=3, **popen_kw,
        )  # fmt: skip
        assert "Traceback" not in proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("simd: error: run failed: worker ")
        assert "disk full writing " in last and str(disk / "full") in last
        ins = simd("inspect", str(disk / "full"), check=0)
        assert "segment(s)" in ins.stdout
        copy = tmp_path / "copy"
        subprocess.run(["cp", "-r", str(disk / "full"), str(copy)], check=True)
    (copy / "results.duckdb").unlink(missing_ok=True)
    simd("ingest", str(copy), check=0)
    logged, last_ns = sql(
        copy, "SELECT count(*), max(t_intended_ns) FROM events WHERE kind = 'publish'"
    )[0]
    assert logged > 10_000 and last_ns < 30 * 10**9  # stopped long before the 60 s scenario's end
    assert json.loads((copy / "run.json").read_text())["state"] == "failed"


def test_sigterm_during_the_connect_ramp(tmp_path: Path, runs: Path) -> None:
    """SIGTERM while devices are still connecting (a 5 s ramp): the run stops within the
    drain time, exit 3, run.json stopped; every publish row has a final status."""
    need_mosquitto()
    with EmbeddedBroker("mosquitto") as b:
        path = _mqtt_scenario(
            tmp_path, b.url, "20s", extra="connect_rate = 40", count=200, rate=1.0
        )
        proc = start_run(path, runs, "ramp", "--no-report")
        run_dir = runs / "ramp"
        _wait_running(run_dir)
        time.sleep(2.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3 and "Traceback" not in err
    assert "run stopped by a signal" in err
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["state"] == "stopped" and manifest["stopped_at_ns"] < 10 * 10**9
    connected = sql(
        run_dir,
        "SELECT count(DISTINCT device) FROM events WHERE kind = 'connect' AND status = 'ok'",
    )[0][0]
    assert 20 < connected < 200  # stopped mid-ramp
    statuses = {
        r[0] for r in sql(run_dir, "SELECT DISTINCT status FROM events WHERE kind = 'publish'")
    }
    assert statuses <= {"acked", "timeout", "error", "dropped", "unsent"}


@pytest.mark.skipif(sys.platform != "linux", reason="SIGSTOP of a broker process")
def test_slow_target_back_pressure_is_lag_not_memory(tmp_path: Path, runs: Path) -> None:
    """A target that stops acking (frozen) fills each connection's in-flight window; with
    window_full = "wait" the generator waits, so the delay shows as schedule lag, nothing is
    dropped for a full window, and the worker's memory stays flat."""
    need_mosquitto()
    with EmbeddedBroker("mosquitto") as b:
        extra = 'inflight = 20\nwindow_full = "wait"\npublish_timeout = "3s"'
        path = _mqtt_scenario(tmp_path, b.url, "8s", extra=extra, count=50, rate=20.0)
        proc = start_run(path, runs, "slow", "--no-report")
        run_dir = runs / "slow"
        # freeze it once it is publishing (2 s of its 8 s), however long it took to start
        wait_until(lambda: live_counts(run_dir).get("completed", 0) >= 1000, timeout=60)
        assert b.proc is not None
        b.proc.send_signal(signal.SIGSTOP)
        time.sleep(2.0)
        b.proc.send_signal(signal.SIGCONT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 1), err
    full = sql(run_dir, "SELECT count(*) FROM events WHERE error = 'in-flight window full'")[0][0]
    assert full == 0
    lag_max = sql(
        run_dir, "SELECT max(t_sent_ns - t_intended_ns) FROM events WHERE kind = 'publish'"
    )[0][0]
    assert lag_max > 1e9  # the freeze shows as lag
    assert sql(run_dir, "SELECT planned = logged FROM run_summary")[0][0]
    rss = sql(run_dir, "SELECT max(rss_bytes) / min(rss_bytes) FROM samples")[0][0]
    assert rss < 1.5


def test_close_against_a_broker_that_stopped_reading(tmp_path: Path, runs: Path) -> None:
    """A broker frozen (SIGSTOP) while 30 devices fill their sockets: at the end every
    connection is closed at once within one bound, and a DISCONNECT that could not be written
    is an error row saying so, not `ok`."""
    need_mosquitto()
    body = """
    name = "stalled"
    duration = "5s"
    target = "mqtt://127.0.0.1:1"
    [[fleet]]
    name = "g"
    count = 30
    rate = 100.0
    qos = 0
    payload = { kind = "random", size = 16384 }
    [fleet.mqtt]
    keepalive = "60s"
    """
    path = write_scenario(tmp_path, body)
    with EmbeddedBroker("mosquitto") as b:
        assert b.proc is not None
        proc = start_run(path, runs, "stalled", "--target", b.url, "--no-report")
        run_dir = runs / "stalled"
        _wait_running(run_dir)
        time.sleep(1.5)
        b.proc.send_signal(signal.SIGSTOP)
        try:
            _, err = proc.communicate(timeout=120)
        finally:
            b.proc.send_signal(signal.SIGCONT)
    assert "Traceback" not in err
    rows = sql(
        run_dir,
        "SELECT status, error, count(*) FROM events WHERE kind = 'disconnect' GROUP BY ALL",
    )
    assert sum(r[2] for r in rows) == 30, rows  # one disconnect row per connection
    # the blocked ones say so; only the close's one overall bound writes this text (a bound per
    # connection, in turn, cannot)
    assert ("error", "disconnect not written within 2 s") in {(r[0], r[1]) for r in rows}, rows
    assert all(r[1].startswith("disconnect not written") for r in rows if r[0] == "error")
