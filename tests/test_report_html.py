"""The HTML report: its numbers are the SQL's numbers, and it opens offline without errors."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.browser import open_page
from tests.conftest import run_dir_from, simd, sql, virtual_run, write_scenario

SCENARIO = """
name = "html"
seed = 3
duration = "2m"
target = "sim:"

[[fleet]]
name = "sensors"
count = 40
rate = 2.0
qos = 1
topic = "sensors/{device_id}/telemetry"

[[fleet]]
name = "meters"
count = 10
rate = 1.0
qos = 0
topic = "meters/{device_id}/reading"

[[phase]]
name = "base"
duration = "1m"

[[phase]]
name = "burst"
duration = "1m"
shape = "burst"
level = 1.0
peak = 10.0
burst_at = "20s"
burst_length = "15s"

[sim]
latency_p50 = "3ms"
latency_p99 = "20ms"
capacity = 400
queue_limit = "300ms"

[slo]
latency_p99 = "50ms"
error_rate = 0.5
"""


class _Cells(HTMLParser):
    """Collects data-v of every cell per table id, summary cards by key, and #simd-data."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.cards: dict[str, str] = {}
        self.table: str | None = None
        self.in_data = False
        self.data = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.table = a.get("id")
            self.tables[self.table or ""] = []
        elif tag == "tr" and self.table is not None:
            self.tables[self.table].append([])
        elif tag == "td" and self.table is not None:
            self.tables[self.table][-1].append(a.get("data-v") or "")
        elif tag == "div" and a.get("class") == "card":
            self.cards[a["data-k"] or ""] = a.get("data-v") or ""
        elif tag == "script" and a.get("id") == "simd-data":
            self.in_data = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.table = None
        elif tag == "script":
            self.in_data = False

    def handle_data(self, data: str) -> None:
        if self.in_data:
            self.data += data


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("html")
    proc = simd(
        "run", str(write_scenario(tmp, SCENARIO)), "--clock", "virtual",
        "--runs-dir", str(tmp / "runs"), "--no-progress", check=1,
    )  # fmt: skip
    run_dir = run_dir_from(proc)
    page = run_dir / "report.html"
    assert page.exists(), "simd run writes RUN/report.html (unless --no-report)"
    out = tmp / "elsewhere" / "r.html"
    simd("report", str(run_dir), "--html", str(out), check=0)
    assert out.read_text() == page.read_text()
    return run_dir, out


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def test_summary_and_tables_equal_sql(report: tuple[Path, Path]) -> None:
    """Every number on the page is the number the views give for the same results.duckdb."""
    run_dir, page = report
    p = _Cells()
    p.feed(page.read_text())
    (planned, logged, completed, failed, err, p50, p99, p999, mx, lag) = sql(
        run_dir,
        "SELECT planned, logged, completed, failed, error_rate, latency_p50_ns, latency_p99_ns, "
        "latency_p999_ns, latency_max_ns, schedule_lag_p99_ns FROM run_summary",
    )[0]
    assert failed > 0 and completed > 0, "the scenario has both outcomes"
    c = p.cards
    assert int(c["planned"]) == planned and int(c["logged"]) == logged
    assert int(c["completed"]) == completed and int(c["failed"]) == failed
    assert _close(float(c["error_rate"]), err)
    assert _close(float(c["p50_ms"]), p50) and _close(float(c["p99_ms"]), p99)
    assert _close(float(c["p99.9_ms"]), p999) and _close(float(c["max_ms"]), mx)
    assert _close(float(c["lag_p99_ms"]), lag)
    status = sql(
        run_dir,
        "SELECT group_name, phase, planned, logged, acked, sent, timeout, error, dropped, missed,"
        " unsent FROM status_counts",
    )
    rows = p.tables["status_counts"][1:]
    assert [tuple(r[:2]) for r in rows] == [s[:2] for s in status]
    assert [[int(v) for v in r[2:]] for r in rows] == [list(s[2:]) for s in status]
    lat = sql(
        run_dir,
        "SELECT group_name, phase, p99_intended_ns, max_intended_ns FROM latency_percentiles",
    )
    got = [(r[0], r[1], float(r[5]), float(r[7])) for r in p.tables["latency_percentiles"][1:]]
    assert got == [(g, ph, float(a), float(b)) for g, ph, a, b in lat]
    topics = sql(run_dir, "SELECT topic, publishes, failed FROM topic_stats")
    assert [(r[2], int(r[4]), int(r[6])) for r in p.tables["topic_stats"][1:]] == topics
    slos = dict(sql(run_dir, "SELECT name, passed FROM slo_results"))
    assert {r[0]: r[1] == "True" for r in p.tables["slos"][1:]} == slos
    assert slos == {"error_rate": True, "latency_p99": False, "log_integrity": True}


def test_chart_data_equal_sql(report: tuple[Path, Path]) -> None:
    """The JSON behind the charts holds the series views row for row."""
    run_dir, page = report
    p = _Cells()
    p.feed(page.read_text())
    data = json.loads(p.data)
    series = sql(run_dir, "SELECT start_ns, planned_per_s, sent_per_s, failed_per_s FROM series")
    assert [
        (r["start_ns"], r["planned_per_s"], r["sent_per_s"], r["failed_per_s"])
        for r in data["series"]
    ] == [tuple(float(v) if i else v for i, v in enumerate(s)) for s in series]
    lat = sql(run_dir, "SELECT p99_ns, p99_sent_ns, lag_p99_ns FROM series_latency")
    assert [(r["p99_ns"], r["p99_sent_ns"], r["lag_p99_ns"]) for r in data["series_latency"]] == [
        tuple(float(v) for v in row) for row in lat
    ]
    # the burst overloads the modelled target: failures sit inside the burst window only
    failing = [r["start_ns"] / 1e9 for r in data["series"] if r["failed_per_s"]]
    assert failing and min(failing) >= 80 and max(failing) < 96
    kinds = {(r["status"], r["error"]) for r in data["series_errors"]}
    assert ("error", "overloaded: queue full") in kinds
    assert data["recommendations"][0]["finding"] in ("target errors", "target-bound")


def test_manifest_is_redacted(tmp_path: Path) -> None:
    """A password in the scenario does not reach the page."""
    body = SCENARIO.replace('reading"\n', 'reading"\n\n[fleet.mqtt]\npassword = "hunter2-secret"\n')
    run_dir = virtual_run(write_scenario(tmp_path, body), tmp_path / "runs", check=1)
    simd("report", str(run_dir), check=0)
    text = (run_dir / "report.html").read_text()
    assert "hunter2-secret" not in text
    assert "password&quot;: &quot;***&quot;" in text  # the key stays, its value does not


@pytest.mark.trio
async def test_page_opens_offline_without_errors(report: tuple[Path, Path]) -> None:
    """Headless Chromium loads the page with no network request, no script or console error."""
    _, page = report
    run = await open_page(
        page,
        {
            "charts": "document.querySelectorAll('svg.chart').length",
            "title": "document.title",
            "p99": "document.querySelector('[data-k=p99_ms] b').textContent",
            "scripts": "document.querySelectorAll("
            "'script:not([type=\"application/json\"])').length",
        },
    )
    assert run.errors == []
    assert [u for u in run.requests if not u.startswith("file://")] == []
    assert run.values["charts"] == 6
    assert run.values["scripts"] == 0
    assert "html" in str(run.values["title"])
    assert str(run.values["p99"]).replace(",", "").replace(".", "").isdigit()


def test_generator_bound_run_is_called_so(tmp_path: Path, runs: Path) -> None:
    """A generator asked for 2M publishes/s of wall time (100k/s at 20x) falls behind its
    schedule while the null target answers at once: the report says generator-bound."""
    body = """
    name = "gb"
    seed = 2
    duration = "10s"
    target = "null:"

    [[fleet]]
    name = "g"
    count = 1000
    rate = 100.0
    """
    path = write_scenario(tmp_path, body)
    proc = simd(
        "run",
        str(path),
        "--clock",
        "scaled:20",
        "--workers",
        "1",
        "--runs-dir",
        str(runs),
        "--no-progress",
        check=0,
    )
    run_dir = Path(proc.stdout.splitlines()[0])
    findings = [r[0] for r in sql(run_dir, "SELECT finding FROM recommendations")]
    assert findings[0] == "generator-bound", findings
    assert "generator-bound: schedule lag p99" in proc.stdout
    assert "generator-bound" in (run_dir / "report.html").read_text()


def test_ingest_tallies_equal_a_scan_of_the_events(report: tuple[Path, Path]) -> None:
    """The per-window and per-topic tallies kept at ingest agree with exact SQL over the rows."""
    run_dir, _ = report
    exact = sql(
        run_dir,
        """
        SELECT t_intended_ns // window_ns() AS w, count(*), count(*) FILTER (WHERE status = 0),
               count(*) FILTER (WHERE status IN (2, 3, 4, 5, 6)), sum(bytes),
               max(t_done_ns - t_intended_ns) FILTER (WHERE status IN (0, 1)),
               max(t_sent_ns - t_intended_ns) FILTER (WHERE status NOT IN (5, 6))
        FROM event_rows WHERE kind = 0 GROUP BY w ORDER BY w
        """,
    )
    tallied = sql(
        run_dir,
        'SELECT "window", scheduled, acked_per_s * window_ns() / 1e9, failed, bytes, '
        "latency_max_ns, lag_max_ns FROM series WHERE scheduled > 0 ORDER BY 1",
    )
    assert [(*r[:2], round(r[2]), *r[3:]) for r in tallied] == exact
    errors = sql(
        run_dir,
        "SELECT t_intended_ns // window_ns(), status, error, count(*) FROM events "
        "WHERE kind = 'publish' AND status IN ('timeout', 'error', 'dropped', 'missed', 'unsent')"
        " GROUP BY ALL ORDER BY ALL",
    )
    assert (
        sql(run_dir, 'SELECT "window", status, error, count FROM series_errors ORDER BY ALL')
        == errors
    )
    failed = sql(
        run_dir,
        "SELECT status, kind, error, count(*), min(t_sent_ns), max(t_sent_ns) FROM events "
        "WHERE status IN ('timeout', 'error', 'dropped', 'missed', 'unsent') "
        "GROUP BY ALL ORDER BY ALL",
    )
    assert failed  # the burst overloads the sim: errors, with their first and last send
    assert sql(run_dir, "SELECT * FROM errors_by_kind ORDER BY ALL") == failed
    topics = sql(
        run_dir,
        "SELECT group_name, count(*), count(*) FILTER (WHERE status = 'error'), sum(bytes), "
        "max(t_done_ns - t_intended_ns) FILTER (WHERE status IN ('acked', 'sent')) "
        "FROM events WHERE kind = 'publish' GROUP BY ALL ORDER BY 1",
    )
    assert (
        sql(
            run_dir,
            "SELECT group_name, publishes, failed, bytes, max_ns FROM topic_stats ORDER BY 1",
        )
        == topics
    )


def test_results_of_another_simd_version(tmp_path: Path, runs: Path) -> None:
    """Stale views are re-created when a file is opened; another table layout is one line
    (exit 2) saying to re-ingest, and `simd ingest` rebuilds it from the logs."""
    import duckdb

    from tests.conftest import SCENARIOS

    run_dir = virtual_run(SCENARIOS / "smoke.toml", runs, check=0)
    db = str(run_dir / "results.duckdb")
    con = duckdb.connect(db)
    con.execute("DROP VIEW trends")
    con.execute("UPDATE schema_info SET views_hash = 'older'")
    con.close()
    simd("report", str(run_dir), "--no-html", check=0)
    assert sql(run_dir, "SELECT count(*) FROM trends")[0][0] == 3

    con = duckdb.connect(db)
    con.execute("UPDATE schema_info SET version = 1")
    con.close()
    r = simd("query", str(run_dir), "SELECT 1", check=2)
    assert r.stderr.strip() == (
        f"simd: error: {db}: written by another simd version "
        f"(run `simd ingest {run_dir}` to rebuild it)"
    )
    simd("ingest", str(run_dir), check=0)
    assert sql(run_dir, "SELECT logged FROM run_summary")[0][0] == 300
