"""The live dashboard (GET / of a run's status server) in real headless Chromium: it loads with
no error and no request leaving the machine, its numbers move and agree with /status, it
keeps going across a worker restart, and once the run ends it shows the log's final counts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import trio

from tests.browser import Evaluate, open_page
from tests.conftest import simd, sql, start_run, status_url, virtual_run, write_scenario

SCENARIO = """
name = "dash"
seed = 4
duration = "16s"
target = "sim:"

[[phase]]
name = "ramp"
duration = "4s"
shape = "ramp"
start = 0.2
end = 1.0

[[phase]]
name = "steady"
duration = "12s"

[[fleet]]
name = "sensors"
count = 100
rate = 5.0
qos = 1

[[fleet.messages]]
name = "telemetry"
topic = "d/{device_id}/t"
weight = 3

[[fleet.messages]]
name = "state"
topic = "d/{device_id}/s"
weight = 1

[sim]
latency_p50 = "2ms"
latency_p99 = "20ms"
error_rate = 0.01

[run]
flush_interval = "100ms"

[slo]
latency_p99 = "500ms"
# the killed worker's missed rows (how many depends on how fast the machine restarts it) are not
# the subject here; the default error_rate SLO would judge the restart's speed
error_rate = 0.5
"""

STATUS = "window.simdDashboard.status"


def _status(url: str) -> dict:
    with urllib.request.urlopen(url + "/status", timeout=10) as r:  # loopback only
        return json.loads(r.read())


def _code(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:  # loopback only
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _pid_of(url: str, worker: int) -> int:
    return next(w["pid"] for w in _status(url)["workers"] if w["worker"] == worker)


async def _until(evaluate: Evaluate, expr: str, timeout: float = 60) -> None:
    with trio.fail_after(timeout):
        while not await evaluate(expr):
            await trio.sleep(0.2)


@pytest.mark.trio
async def test_the_page_of_a_running_run_and_of_its_end(tmp_path: Path, runs: Path) -> None:
    proc = start_run(write_scenario(tmp_path, SCENARIO), runs, "dash", "--no-report",
                     "--linger", "120s")  # fmt: skip
    run_dir = runs / "dash"
    try:
        url = await trio.to_thread.run_sync(status_url, run_dir)
        seen: dict[str, object] = {}

        async def watch(evaluate: Evaluate) -> None:
            # the counts move between two reads, and agree with /status read at that moment
            first = await evaluate(f"{STATUS}.completed")
            await _until(evaluate, f"{STATUS}.completed > {first}")
            page = await evaluate(f"JSON.stringify({STATUS})")
            now = await trio.to_thread.run_sync(_status, url)
            page_st = json.loads(str(page))
            assert page_st["completed"] <= now["completed"] <= page_st["completed"] + 1500
            seen["points_before_kill"] = await evaluate("window.simdDashboard.points.length")
            # a worker killed: the page goes on and shows the restart
            os.kill(await trio.to_thread.run_sync(_pid_of, url, 0), signal.SIGKILL)
            await _until(evaluate, f"{STATUS}.workers[0].restarts === 1")
            await _until(evaluate, f"{STATUS}.workers[0].state === 'running'")
            n = await evaluate("window.simdDashboard.points.length")
            await _until(evaluate, f"window.simdDashboard.points.length > {n}")
            # the end: the banner says so and the final numbers stay
            await _until(evaluate, "window.simdDashboard.ended === true", timeout=90)
            seen["final"] = json.loads(str(await evaluate(f"JSON.stringify({STATUS})")))
            seen["banner"] = await evaluate("document.getElementById('banner').textContent")
            seen["sent_text"] = await evaluate("document.querySelector('#fig-sent b').textContent")

        run = await open_page(
            url + "/",
            {
                "charts": "document.querySelectorAll('.uplot').length",
                "title": "document.title",
                "phases": f"{STATUS}.phases.map(p => p.name).join(',')",
            },
            timeout=150,
            until="window.simdDashboard && window.simdDashboard.updates > 1",
            then=watch,
        )
    finally:
        proc.send_signal(signal.SIGINT)  # ends the lingering
        _, err = await trio.to_thread.run_sync(lambda: proc.communicate(timeout=60))
    assert proc.returncode == 0, err
    assert run.errors == [], run.errors
    assert [u for u in run.requests if not u.startswith(url)] == []
    assert run.values["charts"] == 5 and run.values["phases"] == "ramp,steady"
    assert "dash" in str(run.values["title"])
    assert int(seen["points_before_kill"]) >= 1  # type: ignore[call-overload]
    final = seen["final"]
    assert isinstance(final, dict) and final["state"] == "completed"
    assert "The run has ended (completed)" in str(seen["banner"])
    # the page's last numbers are the log's
    logged, completed, failed = sql(run_dir, "SELECT logged, completed, failed FROM run_summary")[0]
    not_sent = sql(run_dir, "SELECT count(*) FROM events WHERE status IN ('missed', 'unsent')")[0][
        0
    ]
    assert not_sent > 0  # the killed worker's
    assert final["sent"] == logged - not_sent and f"{final['sent']:,}" == seen["sent_text"]
    assert final["completed"] == completed and final["errors"] == failed
    not_sent = "status NOT IN ('missed', 'unsent')"
    for key, rows in (("phases", "phase"), ("messages", "message")):
        q = f"SELECT {rows}, count(*) FILTER (WHERE {not_sent}) FROM events WHERE kind = 'publish'"
        logged_by = dict(sql(run_dir, q + " GROUP BY ALL"))
        assert {p["name"]: p["sent"] for p in final[key]} == logged_by, key
    # the other rows (connections here; probes' receives, commands, replies) as the log has them
    others = sql(run_dir, "SELECT kind, status, count(*) FROM events WHERE kind <> 'publish' "
                          "GROUP BY ALL")  # fmt: skip
    assert {(r["kind"], r["status"]): r["count"] for r in final["other_rows"]} == {
        (k, s): n for k, s, n in others
    }
    assert ("connect", "ok") in {(k, s) for k, s, _ in others}


def test_the_page_and_its_files_are_served_with_a_strict_policy(runs: Path, tmp_path: Path) -> None:
    """GET / is the page, its script and uPlot come from the server itself, under a CSP that
    allows nothing else; an unknown path is 404."""
    proc = start_run(write_scenario(tmp_path, SCENARIO.replace('"16s"', '"3s"')), runs, "p",
                     "--no-report")  # fmt: skip
    try:
        url = status_url(runs / "p")
        with urllib.request.urlopen(url + "/", timeout=10) as r:
            page = r.read().decode()
            assert r.headers["Content-Type"].startswith("text/html")
            csp = r.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "<script>" not in page and "http" not in page.split("<body>")[1]
        for path in ("dashboard/dashboard.js", "dashboard/vendor/uPlot.iife.min.js"):
            with urllib.request.urlopen(f"{url}/{path}", timeout=10) as r:
                assert r.headers["Content-Type"].startswith("text/javascript") and r.read()
        assert _code(url + "/dashboard/../run.json") == 404
        # a hostile query gets the whole feed, not an error
        assert _code(url + "/api/dashboard?start=%C2%B2&epoch=-x&start=99999999999999999999") == 200
    finally:
        proc.communicate(timeout=60)


@pytest.mark.trio
async def test_finished_runs_are_served_one_by_one_and_side_by_side(
    tmp_path: Path, runs: Path
) -> None:
    """`simd serve A B`: the index lists both, run 0's page shows the numbers `simd report
    --format json` has (read from results.duckdb), and the compare page frames both pages."""
    path = write_scenario(tmp_path, SCENARIO)
    a = virtual_run(path, runs, "--run-id", "a")
    b = virtual_run(path, runs, "--run-id", "b", "--seed", "5")
    proc = subprocess.Popen(
        [sys.executable, "-m", "simd", "serve", str(a), str(b)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = await trio.to_thread.run_sync(proc.stdout.readline)  # type: ignore[union-attr]
        url = url.strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read()  # type: ignore[union-attr]
        one = await open_page(
            url + "runs/0/",
            {
                "status": f"JSON.stringify({STATUS})",
                "points": "window.simdDashboard.points.length",
                "banner": "document.getElementById('banner').textContent",
            },
            until="window.simdDashboard && window.simdDashboard.updates >= 1",
        )
        both = await open_page(
            url + "compare?a=0&b=1",
            {"frames": "Array.from(document.querySelectorAll('iframe')).map(f => f.src)"},
        )
        index = await open_page(url, {"runs": "document.querySelectorAll('#runs a').length"})
        for path in ("runs/%C2%B2/api/dashboard", "runs/2/", "runs/0/../../etc/passwd",
                     "compare?a=0&b=x", "compare?a=0&b=9"):  # fmt: skip
            assert await trio.to_thread.run_sync(_code, url + path) == 404, path
    finally:
        proc.send_signal(signal.SIGINT)
        await trio.to_thread.run_sync(lambda: proc.communicate(timeout=30))
    assert proc.returncode == 0
    for page in (one, both, index):
        assert page.errors == [], page.errors
        assert [u for u in page.requests if not u.startswith(url)] == []
    st = json.loads(str(one.values["status"]))
    summary = json.loads(simd("report", str(a), "--format", "json").stdout)
    assert st["run_id"] == "a" and st["state"] == "completed"
    assert st["completed"] == summary["totals"]["completed"] > 0
    assert st["errors"] == summary["totals"]["failed"] > 0
    assert int(one.values["points"]) >= 16  # type: ignore[call-overload]
    assert "A finished run (completed)" in str(one.values["banner"])
    assert both.values["frames"] == [url + "runs/0/", url + "runs/1/"]
    assert index.values["runs"] == 2
