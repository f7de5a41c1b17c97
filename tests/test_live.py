"""While a run is on: /status and /metrics, live SLO alerts, and workers that die and come back."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from simd.runtime.live import Status
from tests.conftest import (
    REPO,
    kill_run,
    raw_get,
    sql,
    start_run,
    status_url,
    wait_until,
    write_scenario,
)

LIVE = """
name = "live"
seed = 9
duration = "{duration}"
target = "sim:"

[[fleet]]
name = "sensors"
count = 100
rate = 5.0
qos = 1

[[fleet]]
name = "meters"
count = 20
rate = 2.0

[sim]
latency_p50 = "3ms"
latency_p99 = "30ms"

[run]
flush_interval = "50ms"

[slo]
latency_p99 = "10ms"
"""


def _scenario(tmp: Path, duration: str) -> Path:
    return write_scenario(tmp, LIVE.replace("{duration}", duration))


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:  # loopback only
        return r.read()


def status(url: str) -> Status:
    return Status.model_validate_json(_get(url + "/status"))


def test_status_metrics_and_alerts_while_running(tmp_path: Path, runs: Path) -> None:
    """/status validates against its model and grows; /metrics parses with prometheus-client's
    parser and has per-group counters and latency histograms; a p99 SLO tighter than the
    target's latency is reported as a breach on stderr and in /status while the run goes;
    every metric the Grafana dashboard (deploy/grafana/simd.json) queries is served."""
    proc = start_run(_scenario(tmp_path, "6s"), runs, "live", "--no-report")
    url = status_url(runs / "live")
    first = wait_until(lambda: (s := status(url)).sent > 0 and s)
    time.sleep(2.5)
    later = status(url)
    assert later.state == "running" and later.run_id == "live"
    assert later.sent > first.sent and later.planned_total == 6 * (100 * 5 + 20 * 2)
    assert 0 < later.planned_so_far <= later.planned_total
    assert [w.worker for w in later.workers] == [0, 1]
    assert all(w.state == "running" and w.pid and w.rss_bytes > 0 for w in later.workers)
    assert later.interval.latency_p99_ms is not None and later.interval.latency_p99_ms > 10
    assert [a.slo for a in later.alerts if a.active] == ["latency_p99"]
    # the dashboard's feed: every point so far, then only the new ones
    feed = json.loads(_get(url + "/api/dashboard"))
    assert feed["start"] == 0 and feed["fields"][0] == "t_s" and len(feed["points"]) >= 1
    pts = [dict(zip(feed["fields"], p, strict=True)) for p in feed["points"]]
    assert any(p["sent_per_s"] > 0 for p in pts) and any((p["p99_ms"] or 0) > 10 for p in pts)
    assert [p["t_s"] for p in pts] == sorted(p["t_s"] for p in pts)
    assert feed["status"]["phases"][0]["name"] == "main"
    assert feed["status"]["phases"][0]["end_s"] == 6.0
    n, epoch = len(feed["points"]), feed["epoch"]
    more = json.loads(_get(url + f"/api/dashboard?start={n}&epoch={epoch}"))
    assert more["start"] == n and all(p[0] >= pts[-1]["t_s"] for p in more["points"])

    host = url.split("://", 1)[1]
    assert raw_get(url, "/status", {"Host": host}) == 200
    assert raw_get(url, "/metrics", {"Host": "rebound.example"}) == 403  # DNS rebinding
    assert raw_get(url, "/status", {"Host": host, "Origin": "https://evil.example"}) == 403
    text = _get(url + "/metrics").decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    pubs = {
        (s.labels["group"], s.labels["status"]): s.value
        for s in fams["simd_publishes"].samples
        if s.name == "simd_publishes_total"
    }
    assert pubs[("sensors", "acked")] > 0 and pubs[("meters", "acked")] > 0
    hist = [s for s in fams["simd_publish_latency_seconds"].samples if s.name.endswith("_count")]
    assert {s.labels["group"] for s in hist} == {"sensors", "meters"}
    assert all(s.value > 0 for s in hist)
    assert fams["simd_slo_breached"].samples[0].value == 1.0
    assert {s.labels["worker"] for s in fams["simd_worker_up"].samples} == {"0", "1"}
    # the Grafana dashboard queries only what a live run serves
    dashboard = json.loads((REPO / "deploy" / "grafana" / "simd.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    queried = {m for e in exprs for m in re.findall(r"\bsimd_[a-z0-9_]+", e)}
    served = {sample.name for f in fams.values() for sample in f.samples}
    assert len(queried) >= 9 and queried <= served, queried - served

    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err  # the p99 SLO fails at the end too
    assert "simd: slo breach: latency_p99" in err
    assert "simd: live status on http://127.0.0.1:" in err


def _worker_pid(url: str, w: int, restarts: int) -> int:
    """The pid of worker w once it runs after `restarts` restarts and has reported progress."""

    def ready() -> int | None:
        s = status(url)
        wk = s.workers[w]
        fresh = wk.seconds_since_progress is not None and wk.seconds_since_progress < 0.6
        if wk.state == "running" and wk.restarts == restarts and fresh and wk.pid:
            return wk.pid
        return None

    return wait_until(ready, timeout=30)


def test_fifty_kill_9_and_every_planned_publish_once(tmp_path: Path, runs: Path) -> None:
    """Workers killed with SIGKILL 50 times come back from their own logs: ingest finds every
    publish due before the run was stopped exactly once with a final status, the lost ones
    marked missed, no device's sequence with a gap or cut short.

    The run is long and stopped (SIGTERM) after the 50th kill: 50 restarts took 28.6-30.2 s on
    a quiet machine and more than 55 s beside a busy suite, so no fixed run length fits them."""
    proc = start_run(_scenario(tmp_path, "600s"), runs, "kills", "--no-report")
    run_dir = runs / "kills"
    url = status_url(run_dir)
    killed = [0, 0]  # per worker
    while sum(killed) < 50:
        w = sum(killed) % 2
        os.kill(_worker_pid(url, w, killed[w]), signal.SIGKILL)
        killed[w] += 1
    _worker_pid(url, 1, 25)  # the last one is back and has logged again
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3 and "run stopped by a signal" in err, err
    assert sql(run_dir, "SELECT state FROM runs")[0][0] == "stopped"
    manifest = json.loads((run_dir / "run.json").read_text())
    restarts = manifest["worker_results"]
    assert restarts["0"]["restarts"] == 25 and restarts["1"]["restarts"] == 25
    total, distinct, final, devices = sql(
        run_dir,
        "SELECT count(*), count(DISTINCT (device, seq)), count(*) FILTER (WHERE status IN "
        "('acked', 'sent', 'timeout', 'error', 'dropped', 'missed', 'unsent')), "
        "count(DISTINCT device) FROM events WHERE kind = 'publish'",
    )[0]
    assert total == distinct == final and devices == 120
    missed = sql(run_dir, "SELECT count(*) FROM events WHERE status = 'missed'")[0][0]
    assert 0 < missed < total * 3 // 4  # down about a second per kill
    # every device's seqs are exactly 0..n-1, and each went on to the stop (2 msg/s at least)
    gaps, cut_short = sql(
        run_dir,
        "SELECT count(*) FILTER (WHERE gap <> 0), count(*) FILTER (WHERE last_ns < ?) FROM "
        "(SELECT device, max(seq) + 1 - count(*) AS gap, max(t_intended_ns) AS last_ns "
        "FROM events WHERE kind = 'publish' GROUP BY device)".replace(
            "?", str(manifest["stopped_at_ns"] - 10**9)
        ),
    )[0]
    assert gaps == 0 and cut_short == 0


def test_resume_after_the_whole_run_was_killed(tmp_path: Path, runs: Path) -> None:
    """SIGKILL to the supervisor and every worker (a reboot); `simd run --resume RUN` continues
    on the run's own timeline: every planned publish gets exactly one row, those due while it
    was down are missed, and the manifest records the resume."""

    from tests.conftest import simd

    body = LIVE.replace("{duration}", "8s").replace('latency_p99 = "10ms"', "")
    proc = start_run(write_scenario(tmp_path, body), runs, "reboot", "--no-report")
    run_dir = runs / "reboot"
    url = status_url(run_dir)
    wait_until(lambda: status(url).sent > 500)
    kill_run(proc)
    time.sleep(1.5)
    assert json.loads((run_dir / "run.json").read_text())["state"] == "running"
    # the publishes due while it was down are missed: over the default error_rate, exit 1
    r = simd("run", "--resume", str(run_dir), "--no-progress", "--no-report", check=1)
    assert "error_rate (default): FAILED" in r.stderr
    assert str(run_dir) in r.stdout
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["state"] == "completed" and manifest["resumes"][0]["from_state"] == "running"
    planned, logged = sql(run_dir, "SELECT planned, logged FROM run_summary")[0]
    distinct = sql(
        run_dir, "SELECT count(DISTINCT (device, seq)) FROM events WHERE kind = 'publish'"
    )[0][0]
    assert planned == logged == distinct == 8 * (100 * 5 + 20 * 2)
    missed = sql(run_dir, "SELECT count(*) FROM events WHERE status = 'missed'")[0][0]
    assert missed >= 1.0 * (100 * 5 + 20 * 2)  # at least the 1.5 s it was down, about

    again = simd("run", "--resume", str(run_dir), check=2)
    assert "completed already; nothing to resume" in again.stderr


def test_stop_while_a_worker_restarts(tmp_path: Path, runs: Path) -> None:
    """SIGTERM right after a worker was killed: the restarted worker first logs what it owes,
    then stops with the rest; the run ends stopped and no device has a gap in its rows."""
    proc = start_run(_scenario(tmp_path, "30s"), runs, "stop", "--no-report")
    run_dir = runs / "stop"
    url = status_url(run_dir)
    os.kill(_worker_pid(url, 0, 0), signal.SIGKILL)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3 and "run stopped by a signal" in err, err
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["state"] == "stopped"
    assert manifest["worker_results"]["0"]["restarts"] == 1
    total, distinct, gaps = sql(
        run_dir,
        "SELECT sum(n), sum(d), count(*) FILTER (WHERE m + 1 <> n) FROM (SELECT device, "
        "count(*) AS n, count(DISTINCT seq) AS d, max(seq) AS m FROM events "
        "WHERE kind = 'publish' GROUP BY device)",
    )[0]
    assert total == distinct and gaps == 0
    assert sql(run_dir, "SELECT count(*) FROM events WHERE status = 'missed'")[0][0] > 0
