"""One-liners (simd pub, sub, conn, http), `simd run -`, `--set`, and the conventions people
type by habit (--version, -w 0), through the CLI."""

from __future__ import annotations

import contextlib
import json
import threading
import tomllib
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simd.errors import UserError
from simd.model.edits import apply_sets
from simd.model.toml_text import dumps
from tests.conftest import (
    SCENARIOS,
    need_mosquitto,
    run_dir_from,
    simd,
    sql,
    subscribe_in_thread,
    wait_until,
)
from tests.http_server import HttpServer


def test_pub_against_mosquitto_every_acked_message_reaches_a_subscriber(runs: Path) -> None:
    """The issue's one-liner against mosquitto runs, reports and exits 0, and an independent
    subscriber (aiomqtt) receives, per device, exactly the messages the log says were acked."""
    need_mosquitto()
    from simd.runtime.broker import EmbeddedBroker

    with EmbeddedBroker("mosquitto") as broker:
        got: list = []
        ready, stop = threading.Event(), threading.Event()
        t = subscribe_in_thread(broker.url, "devices/+/telemetry", "3.1.1", got, ready, stop)
        assert ready.wait(20)
        r = simd("pub", broker.url, "-c", "200", "-I", "100", "-t", "devices/%i/telemetry",
                 "-q", "1", "-d", "10s", "--runs-dir", str(runs), "--no-progress",
                 check=0)  # fmt: skip
        run = run_dir_from(r)
        acked = dict(
            sql(
                run,
                "SELECT device, count(*) FROM events WHERE kind = 'publish' "
                "AND status = 'acked' GROUP BY device",
            )
        )
        assert sum(acked.values()) == 200 * 100  # 10 s at 10/s for each of 200 devices
        # what the broker still holds for the subscriber arrives within its own time
        with contextlib.suppress(AssertionError):  # the comparison below says what is missing
            wait_until(lambda: len(got) >= sum(acked.values()), 30)
        stop.set()
        t.join(10)
    by_device = Counter(int(topic.split("/")[1]) for topic, *_ in got)
    assert by_device == Counter(acked)
    assert "report:" in r.stdout and "latency (ms)" in r.stdout


def test_print_scenario_run_from_stdin_logs_the_same_rows(tmp_path: Path, runs: Path) -> None:
    """--print-scenario's TOML, run with `simd run -`, logs the same (device, seq, intended
    time) rows as the one-liner itself."""
    flags = ("-c", "30", "-r", "20", "-t", "a/%c/b", "-d", "1s", "--seed", "7")
    text = simd("pub", "null:", *flags, "--print-scenario", check=0).stdout
    assert tomllib.loads(text)["fleet"][0]["topic"] == "a/{device_id}/b"
    direct = run_dir_from(
        simd(
            "pub", "null:", *flags, "--runs-dir", str(runs), "--no-progress", "--no-report", check=0
        )
    )
    piped = run_dir_from(
        simd(
            "run", "-", "--runs-dir", str(runs), "--no-progress", "--no-report", input=text, check=0
        )
    )
    q = "SELECT device, seq, t_intended_ns FROM events WHERE kind = 'publish' ORDER BY ALL"
    rows = sql(direct, q)
    assert len(rows) == 30 * 20
    assert rows == sql(piped, q)


def test_conn_holds_every_connection_and_publishes_nothing(runs: Path) -> None:
    """simd conn: every connection opened (at the connect rate), held, closed at the end."""
    r = simd("conn", "embedded", "-c", "40", "-R", "200", "-d", "2s", "--runs-dir", str(runs),
             "--no-progress", "--no-report", check=0)  # fmt: skip
    run = run_dir_from(r)
    kinds = dict(sql(run, "SELECT kind || '/' || status, count(*) FROM events GROUP BY 1"))
    assert kinds.get("connect/ok") == 40 and kinds.get("disconnect/ok") == 40
    assert "publish/acked" not in kinds and "publish/sent" not in kinds


def test_sub_logs_what_arrives_on_its_filter(runs: Path) -> None:
    """simd sub: its subscribers connect, subscribe and log a receive row per message that a
    simd run publishes on the filter meanwhile."""
    need_mosquitto()
    import subprocess
    import sys

    from simd.runtime.broker import EmbeddedBroker

    with EmbeddedBroker("mosquitto") as broker:
        args = ("sub", broker.url, "-t", "devices/#", "-c", "2", "-d", "10s", "--runs-dir",
                str(runs), "--run-id", "s", "--no-progress", "--no-report")  # fmt: skip
        sub = subprocess.Popen(
            [sys.executable, "-m", "simd", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # the subscribers are up when their connect rows are in the log (a fact)
            wait_until(lambda: _probe_connects(runs / "s") >= 2, 60)
            simd("pub", broker.url, "-c", "5", "-r", "10", "-d", "2s", "-q", "1",
                 "--runs-dir", str(runs), "--no-progress", "--no-report", check=0)  # fmt: skip
            _, err = sub.communicate(timeout=60)
        finally:
            if sub.poll() is None:
                sub.kill()
    assert sub.returncode == 0, err
    q = ("SELECT message, count(*) FROM event_rows WHERE kind = kind_code('receive') "
         "GROUP BY message ORDER BY message")  # fmt: skip
    received = sql(runs / "s", q)
    assert [n for _, n in received] == [100, 100], received  # each subscriber: every message


def _probe_connects(run: Path) -> int:
    """Connect rows of probes (device -1) flushed to the run's event logs so far."""
    from simd.log.eventlog import read_segment
    from simd.log.events import CONNECT, OK

    n = 0
    for seg in sorted((run / "events").glob("*.simlog")) if (run / "events").is_dir() else []:
        try:
            _, batches = read_segment(seg)
        except Exception:  # a segment being created: not yet
            continue
        for b in batches:
            c = b.cols
            n += int(((c["kind"] == CONNECT) & (c["status"] == OK) & (c["device"] == -1)).sum())
    return n


def test_http_one_liner(runs: Path) -> None:
    """simd http: -c devices at -r requests/s with a header and a checked status; the report
    speaks of requests, not publishes."""
    with HttpServer() as server:
        r = simd("http", f"http://127.0.0.1:{server.port}/v1/users?x=1", "-c", "4", "-r", "5",
                 "-H", "X-Api-Key: k", "--expect", "200", "-d", "2s", "--runs-dir", str(runs),
                 "--no-progress", check=0)  # fmt: skip
    run = run_dir_from(r)
    assert sql(run, "SELECT count(*) FROM events WHERE status = 'acked'")[0][0] == 4 * 5 * 2
    assert "requests by group and phase" in r.stdout and "publishes by" not in r.stdout
    page = (run / "report.html").read_text()
    assert "requests per second" in page and "publishes per second" not in page


def test_set_changes_any_key_by_group_name(tmp_path: Path) -> None:
    """--set on plan: a group's key by its name, a top-level duration without quotes; an entry
    that is not there is one line naming the ones that are; a misspelt key is the validator's
    error naming the key."""
    qs = str(SCENARIOS / "quickstart.toml")
    base = json.loads(simd("plan", qs, "--format", "json", check=0).stdout)
    r = simd("plan", qs, "--format", "json", "--set", "fleet.sensors.count=20", check=0)
    assert json.loads(r.stdout)["devices"] == 20 != base["devices"]
    r = simd("plan", qs, "--set", "fleet.nope.rate=5", check=2)
    assert "no fleet entry named 'nope' (there are: sensors)" in r.stderr
    r = simd("plan", qs, "--set", "fleet.sensors.rte=5", check=2)
    assert "fleet[0].rte: unknown key" in r.stderr and "Traceback" not in r.stderr


def test_apply_sets_values_and_paths() -> None:
    """Values are TOML when they parse as TOML, text otherwise; entries by name or index."""
    data = {"fleet": [{"name": "a", "rate": 1}], "duration": "1s"}
    out = apply_sets(data, ["fleet.a.rate=2.5", "duration=5s", "fleet.0.mqtt.version=5",
                            "slo.error_rate=0.01", "fleet.a.qos=1"])  # fmt: skip
    assert out == {
        "fleet": [{"name": "a", "rate": 2.5, "mqtt": {"version": 5}, "qos": 1}],
        "duration": "5s",
        "slo": {"error_rate": 0.01},
    }
    assert data["fleet"][0]["rate"] == 1  # the input is kept
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        apply_sets(data, ["fleet"])
    with pytest.raises(UserError, match="is a list"):
        apply_sets(data, ["fleet.rate=3"])
    with pytest.raises(UserError, match="not a table"):
        apply_sets(data, ["duration.x=1"])


_keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
_scalars = (
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
)
_values = st.recursive(
    _scalars | st.lists(_scalars, max_size=4),
    lambda inner: (
        st.dictionaries(_keys, inner, max_size=4)
        | st.lists(st.dictionaries(_keys, inner, min_size=1, max_size=3), min_size=1, max_size=3)
    ),
    max_leaves=12,
)


@given(st.dictionaries(_keys, _values, max_size=6))
def test_toml_text_reads_back_as_written(data: dict) -> None:
    """Whatever scenario-shaped data --print-scenario writes, tomllib reads back equal."""
    assert tomllib.loads(dumps(data)) == data


def test_conventions(tmp_path: Path, runs: Path) -> None:
    """--version prints it; -w 0 means one worker per core (it was refused); the short flags
    (-T, -d, -w, -o, -F); a finished run's status gives its final numbers; the capacity help
    shows its [slo] (rich markup ate it)."""
    r = simd("--version", check=0)
    assert r.stdout.startswith("simd ")
    r = simd("run", str(SCENARIOS / "quickstart.toml"), "-T", "null:", "-d", "1s", "-w", "0",
             "-o", str(runs), "--no-progress", "--no-report", check=0)  # fmt: skip
    assert run_dir_from(r).parent == runs
    manifest = (run_dir_from(r) / "run.json").read_text()
    import os

    assert json.loads(manifest)["workers"] == len(os.sched_getaffinity(0))
    # a finished run's status: its final numbers from the log, no dashes, no dead URL
    status = json.loads(simd("status", str(run_dir_from(r)), "-F", "json", check=0).stdout)
    planned = json.loads(manifest)["plan"]["total_publishes"]
    assert status["status"]["completed"] == status["status"]["sent"] == planned > 0
    assert status["status_url"] is None
    table = simd("status", str(run_dir_from(r)), check=0).stdout
    assert f"{planned:,}" in table and "http://" not in table
    assert "[slo]" in simd("capacity", "--help", check=0).stdout


def test_no_command_gives_one_flag_two_meanings() -> None:
    """Every command's flags, long and short, are its own once (the shared ones are declared in
    simd.cli.options); the common short flags mean the same wherever they exist."""
    import typer.main

    from simd.cli import app

    meaning = {"-w": "--workers", "-T": "--target", "-d": "--duration", "-F": "--format"}
    groups = [typer.main.get_command(app)]
    while groups:
        group = groups.pop()
        for name, cmd in group.commands.items():  # type: ignore[attr-defined]
            if hasattr(cmd, "commands"):
                groups.append(cmd)
                continue
            flags = [o for p in cmd.params for o in (*p.opts, *p.secondary_opts)]
            assert len(flags) == len(set(flags)), (name, flags)
            for p in cmd.params:
                for short, long in meaning.items():
                    if short in p.opts:
                        assert long in p.opts, (name, p.opts)
                if "-o" in p.opts:
                    assert {"--runs-dir", "--out"} & set(p.opts), (name, p.opts)


def test_ci_outputs(tmp_path: Path, runs: Path) -> None:
    """simd run --summary-export/--junit, check --format junit|json, report --format json:
    what CI reads; the JUnit file parses with junitparser (a failed SLO is a failure with
    observed vs threshold); the summary's numbers are the results' own; CSV ends lines in LF."""
    import junitparser

    summary, junit = tmp_path / "summary.json", tmp_path / "junit.xml"
    r = simd("pub", "sim:", "-c", "10", "-r", "10", "-d", "2s", "--slo", "latency_p99=1us",
             "--summary-export", str(summary), "--junit", str(junit), "--runs-dir", str(runs),
             "--no-progress", "--no-report", check=1)  # fmt: skip
    run = run_dir_from(r)
    data = json.loads(summary.read_text())
    completed = sql(run, "SELECT completed FROM run_summary")[0][0]
    assert data["totals"]["completed"] == completed == 200 and data["passed"] is False
    xml = junitparser.JUnitXml.fromfile(str(junit))
    cases = {c.name: c for suite in xml for c in suite}
    assert set(cases) == {"latency_p99", "error_rate (default)", "log_integrity"}
    assert not cases["log_integrity"].result
    (failure,) = cases["latency_p99"].result
    assert isinstance(failure, junitparser.Failure) and "threshold" in failure.text
    r = simd("check", str(run), "--format", "junit", check=1)
    assert r.stdout == junit.read_text()
    slos = json.loads(simd("check", str(run), "--format", "json", check=1).stdout)
    assert {x["name"]: x["passed"] for x in slos}["latency_p99"] is False
    assert json.loads(simd("report", str(run), "--format", "json", check=0).stdout) == data
    csv = simd("query", str(run), "SELECT 1 AS a, 2 AS b", "--format", "csv", check=0).stdout
    assert csv == "a,b\n1,2\n"
