"""`simd report --html`: one self-contained HTML page per run, drawn from the views in
analysis/views.sql (the same numbers the terminal report prints, its tables declared once in
report/tables.py; nothing computed here but unit conversions). No scripts run and nothing is
fetched: charts are inline SVG, styles inline; the numbers behind every chart are also
embedded as JSON (`#simd-data`) for tools.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from simd.model.secrets import redact
from simd.report import tables as T
from simd.report.charts import Line, percentile_chart, time_chart
from simd.report.tables import TableSpec
from simd.report.terminal import MIN_TREND_SPAN_H, integrity_line, shard_lines, slo_label
from simd.results.ingest import read_views, run_dir_of

REPORT_FILE = "report.html"

PAGE_CSS = """  # the report page's style; other simd pages use it too
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:960px;color:#222;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.meta{color:#555}.cards{display:flex;flex-wrap:wrap;gap:8px;margin:12px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:6px 10px;min-width:110px}
.card b{display:block;font-size:18px}.card span{color:#666;font-size:12px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.ok{color:#1a7f37}.bad{color:#c0392b;font-weight:600}.warn{color:#b36b00}
svg.chart{width:100%;height:auto;margin:6px 0}
.ct{font-size:13px;font-weight:600}.lg{font-size:12px}.ax{font-size:11px;fill:#555}
.gr{stroke:#eee}.pl{fill:#fff;stroke:#ccc}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px;max-height:480px}
.empty{color:#777}
"""


# the tables of the page, in its order (report/tables.py declares them)
PAGE_TABLES = (T.STATUS_COUNTS, T.LATENCY, T.SCHEDULE_LAG, T.TOPICS, T.END_TO_END, T.DELIVERY)
PAGE_TABLES += (T.COMMANDS, T.REPLAY, T.JOURNEYS, T.ERRORS, T.BURSTS, T.RESOURCES)
PAGE_TABLES += (T.DISTRIBUTION,)
CHART_VIEWS = ("series", "series_latency", "series_errors", "latency_distribution")
OTHER_VIEWS = ("status_counts", "latency_percentiles", "schedule_lag", "topic_stats")
OTHER_VIEWS += ("errors_by_kind", "end_to_end", "trends", "error_bursts", "resource_growth")
OTHER_VIEWS += ("slo_results", "recommendations")


def load(run: str | Path) -> dict[str, Any]:
    """Everything the page shows, read from the run's results.duckdb."""
    run_dir = run_dir_of(run)
    con = read_views(run_dir)
    try:
        d: dict[str, Any] = {
            "run": T.rows(
                con,
                "SELECT run_id, scenario, scenario_hash, seed, target, clock, workers, "
                "t0_epoch_ns, duration_ns, state, planned_publishes, stopped_at_ns FROM runs",
            )[0],
            "summary": T.rows(con, "SELECT * FROM run_summary")[0],
            "window_ns": con.execute("SELECT window_ns()").fetchone()[0],
            "publishes": T.publishes_word(con),
            "phase_starts": [
                (r[0] / 1e9, r[1])
                for r in con.execute(
                    "SELECT start_ns, phase FROM phases WHERE start_ns > 0 ORDER BY start_ns"
                ).fetchall()
            ],
            "limits": dict(
                con.execute(
                    "SELECT name, threshold FROM slo WHERE unit = 'ns' AND origin = 'scenario'"
                ).fetchall()
            ),
        }
        for view in (*CHART_VIEWS, *OTHER_VIEWS):
            d[view] = T.rows(con, f"SELECT * FROM {view}")
        d["tables"] = {spec.id: spec.fetch(con) for spec in PAGE_TABLES}
        d["shards"] = list(shard_lines(con))
        d["integrity"] = integrity_line(con)
        d["log_damage"] = T.rows(con, "SELECT * FROM log_damage ORDER BY segment, offset_start")
        manifest = con.execute("SELECT manifest FROM runs").fetchone()[0]
    finally:
        con.close()
    d["manifest"] = redact(json.loads(manifest))
    return d


def _num(v: Any) -> Any:
    """JSON-safe: NaN/inf become null; decimals and numpy scalars become floats/ints."""
    if v is None or isinstance(v, bool | int | str):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f if math.isfinite(f) else None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return _num(obj)


def _cell(v: Any, text: str, left: bool = False, cls: str = "") -> str:
    raw = "" if v is None else escape(str(_num(v)), quote=True)
    klass = " ".join(c for c in ("l" if left else "", cls) if c)
    k = f' class="{klass}"' if klass else ""
    return f'<td{k} data-v="{raw}">{escape(text)}</td>'


def _table(table_id: str, headers: list[tuple[str, bool]], rows: list[list[str]]) -> str:
    """A table: headers as (text, left-aligned), rows of cells from `_cell`."""
    head = "".join(
        f'<th class="l">{escape(h)}</th>' if left else f"<th>{escape(h)}</th>"
        for h, left in headers
    )
    body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def spec_table(spec: TableSpec, rows: list[dict[str, Any]] | None) -> str:
    """A declared table as HTML ("" when it does not apply; its `empty` text without rows)."""
    if rows is None:
        return ""
    if not rows and spec.empty is not None:
        return f"<p id='{spec.id}'>{escape(spec.empty.split(': ', 1)[-1])}</p>"
    if not rows and not spec.always:
        return ""
    headers = [(c.header, c.left) for c in spec.cols]
    cells = [[_cell(raw, text, left) for raw, text, left in spec.cells(r)] for r in rows]
    note = f"<p class='meta'>{escape(spec.note)}</p>" if spec.note else ""
    return _table(spec.id, headers, cells) + note


def _slo_text(s: dict[str, Any]) -> str:
    if s["observed"] is None:
        return "no data"
    fmt = T.ms if s["unit"] == "ns" else (lambda v: f"{float(v):.4g}")
    return f"{fmt(s['observed'])} vs {fmt(s['threshold'])}"


# ---------------------------------------------------------------- the page, section by section


def _head(d: dict[str, Any]) -> str:
    r = d["run"]
    w_s = d["window_ns"] / 1e9
    title = f"simd report: {r['scenario']} ({r['run_id']})"
    started = (
        datetime.fromtimestamp(r["t0_epoch_ns"] / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if r["t0_epoch_ns"]
        else "-"
    )
    state_cls = "ok" if r["state"] == "completed" else "warn"
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}"
        f"</title><meta name='viewport' content='width=device-width'><style>{PAGE_CSS}</style>"
        "</head><body>"
        f"<h1>{escape(r['scenario'])} <small class='meta'>{escape(r['run_id'])}</small></h1>"
        f"<p class='meta'>state <b class='{state_cls}' id='state'>{escape(str(r['state']))}</b>"
        f" · target {escape(str(r['target']))} · clock {escape(str(r['clock']))} · "
        f"workers {r['workers']} · duration {r['duration_ns'] / 1e9:g} s · t=0 {started} · "
        f"seed {r['seed']} · time axis in {w_s:g} s windows</p>"
    )


def _integrity(d: dict[str, Any]) -> str:
    out = []
    if d.get("integrity"):
        out.append(
            f"<p class='meta' id='log-damage'><b class='bad'>{escape(d['integrity'])}</b></p>"
        )
        rows = [
            [
                _cell(x["segment"], x["segment"], left=True),
                _cell(x["offset_start"], f"{x['offset_start']:,}–{x['offset_end']:,}"),
                _cell(x["bytes"], T.count(x["bytes"])),
                _cell(x["rows_lost"], T.count(x["rows_lost"])),
                _cell(x["reason"], x["reason"], left=True),
            ]
            for x in d.get("log_damage") or []
        ]
        headers = [("segment", True), ("bytes at", False), ("size", False)]
        headers += [("rows lost", False), ("why", True)]
        out.append(_table("log_damage", headers, rows))
    lines, missing = d.get("shards") or ([], [])
    out += [f"<p class='meta' id='shards'>{escape(line)}</p>" for line in lines]
    out += [f"<p class='meta'><b class='bad'>{escape(line)}</b></p>" for line in missing]
    return "".join(out)


def _cards(d: dict[str, Any]) -> str:
    s = d["summary"]
    cards = [
        ("planned", T.count(s["planned"]), s["planned"]),
        ("logged", T.count(s["logged"]), s["logged"]),
        ("completed", T.count(s["completed"]), s["completed"]),
        ("failed", T.count(s["failed"]), s["failed"]),
        ("error rate", f"{100 * float(s['error_rate'] or 0):.3f} %", s["error_rate"]),
        ("throughput /s", f"{float(s['throughput_per_s'] or 0):,.1f}", s["throughput_per_s"]),
        ("p50 ms", T.ms(s["latency_p50_ns"]), s["latency_p50_ns"]),
        ("p99 ms", T.ms(s["latency_p99_ns"]), s["latency_p99_ns"]),
        ("p99.9 ms", T.ms(s["latency_p999_ns"]), s["latency_p999_ns"]),
        ("max ms", T.ms(s["latency_max_ns"]), s["latency_max_ns"]),
        ("lag p99 ms", T.ms(s["schedule_lag_p99_ns"]), s["schedule_lag_p99_ns"]),
    ]
    out = ["<div class='cards' id='summary'>"]
    for label, text, raw in cards:
        key = label.replace(" ", "_").replace("/", "per")
        out.append(
            f"<div class='card' data-k='{key}' data-v='{escape(str(_num(raw)), quote=True)}'>"
            f"<b>{escape(text)}</b><span>{escape(label)}</span></div>"
        )
    out.append("</div>")
    return "".join(out)


def _recommendations(d: dict[str, Any]) -> str:
    items = [
        f"<li><b class='{'ok' if rec['severity'] == 'ok' else 'warn'}'>{escape(rec['finding'])}"
        f"</b>: {escape(rec['evidence'])}. {escape(rec['advice'])}.</li>"
        for rec in d["recommendations"]
    ]
    return "<h2>Recommendations</h2><ul id='recommendations'>" + "".join(items) + "</ul>"


def _slos(d: dict[str, Any]) -> str:
    if not d["slo_results"]:
        return ""
    rows = [
        [
            _cell(x["name"], slo_label(x["name"], x.get("origin")), left=True),
            _cell(
                x["passed"], "ok" if x["passed"] else "FAILED", cls="ok" if x["passed"] else "bad"
            ),
            _cell(x["observed"], _slo_text(x)),
        ]
        for x in d["slo_results"]
    ]
    headers = [("SLO", True), ("verdict", False), ("observed vs threshold", False)]
    return "<h2>SLOs</h2>" + _table("slos", headers, rows)


def _ms_values(rows: list[dict[str, Any]], key: str) -> list[float | None]:
    return [None if row[key] is None else float(row[key]) / 1e6 for row in rows]


def _time_charts(d: dict[str, Any]) -> str:
    """Throughput, latency over time (from intended and from sent), schedule lag, errors."""
    w_s = d["window_ns"] / 1e9
    ser, lat = d["series"], d["series_latency"]
    x_series = [row["start_ns"] / 1e9 for row in ser]
    x_lat = [row["start_ns"] / 1e9 for row in lat]
    phases = d["phase_starts"]  # each phase's start, marked on every time chart
    limits = d["limits"]  # the SLOs' thresholds (ns), drawn on the charts they judge
    latency_limits = [
        (limits[k] / 1e6, f"SLO {k} {limits[k] / 1e6:g} ms")
        for k in ("latency_p50", "latency_p90", "latency_p99", "latency_p999")
        if k in limits
    ]
    lag_limits = [
        (limits[k] / 1e6, f"SLO {k} {limits[k] / 1e6:g} ms")
        for k in ("schedule_lag_p99",)
        if k in limits
    ]
    out = ["<h2>Throughput</h2>"]
    out.append(
        time_chart(
            f"{d['publishes']} per second ({w_s:g} s windows, by intended send time)",
            x_series,
            [
                Line("planned", [row["planned_per_s"] for row in ser], dashed=True),
                Line("sent", [row["sent_per_s"] for row in ser]),
                Line("acked", [row["acked_per_s"] for row in ser]),
                Line("failed", [row["failed_per_s"] for row in ser]),
            ],
            "per s",
            phases=phases,
        )
    )
    out.append("<h2>Latency over time</h2>")
    for title, suffix in (
        ("latency from intended send time (ms, log scale)", ""),
        ("latency from actual send time (ms, log scale): the target's own share", "_sent"),
    ):
        lines = [Line(p, _ms_values(lat, f"{p}{suffix}_ns")) for p in ("p50", "p95", "p99")]
        lines.append(Line("max", _ms_values(lat, f"max{suffix}_ns"), dashed=True))
        limit = latency_limits if not suffix else []  # SLOs judge latency from intended
        out.append(time_chart(title, x_lat, lines, "ms", log_y=True, phases=phases, limits=limit))
    dist = d["latency_distribution"]
    out.append("<h2>Latency distribution</h2>")
    out.append(
        percentile_chart(
            "latency by percentile, whole run (ms)",
            [float(x["quantile"]) for x in dist],
            [
                Line("from intended", _ms_values(dist, "intended_ns")),
                Line("from sent", _ms_values(dist, "sent_ns"), dashed=True),
            ],
        )
    )
    out.append(spec_table(T.DISTRIBUTION, d["tables"]["distribution"]))
    out.append("<h2>Schedule lag</h2>")
    out.append(
        time_chart(
            "schedule lag: actual minus intended send time (ms)",
            x_lat,
            [
                Line("p50", _ms_values(lat, "lag_p50_ns")),
                Line("p99", _ms_values(lat, "lag_p99_ns")),
                Line("max", _ms_values(lat, "lag_max_ns"), dashed=True),
            ],
            "ms",
            phases=phases,
            limits=lag_limits,
        )
    )
    out.append("<h2>Errors over time</h2>")
    out.append(_errors_chart(d, x_series))
    return "".join(out)


# (heading, the tables under it) for the declared tables after the charts; "A|B": an MQTT
# run's heading, then an HTTP run's
TABLE_SECTIONS: tuple[tuple[str, tuple[TableSpec, ...]], ...] = (
    ("By group and phase", (T.STATUS_COUNTS, T.LATENCY, T.SCHEDULE_LAG)),
    ("By topic|By request", (T.TOPICS,)),
    ("End to end (probes)", (T.END_TO_END,)),
    ("Delivery (probes)", (T.DELIVERY,)),
    ("Commands: round trip from the intended send time", (T.COMMANDS,)),
    ("Replay fidelity", (T.REPLAY,)),
    ("Journeys", (T.JOURNEYS,)),
    ("Errors by kind", (T.ERRORS,)),
)


def _tables(d: dict[str, Any]) -> str:
    out = []
    http = d["publishes"] == "requests"
    for headings, specs in TABLE_SECTIONS:
        heading = headings.split("|")[-1 if http else 0]
        parts = [spec_table(spec.worded(http), d["tables"][spec.id]) for spec in specs]
        if T.REPLAY in specs:
            parts += _replay_gaps(d["tables"]["replay_fidelity"] or [])
        if any(parts):
            out.append(f"<h2>{escape(heading)}</h2>" + "".join(parts))
    return "".join(out)


def _replay_gaps(rows: list[dict[str, Any]]) -> list[str]:
    return [
        f"<p class='meta' id='replay-damage'><b class='bad'>replay {escape(x['group_name'])}: "
        f"recording {escape(x['missing_spans'])}</b></p>"
        for x in rows
        if x.get("missing_spans")
    ]


def _endurance(d: dict[str, Any]) -> str:
    out = ["<h2>Endurance</h2>"]
    span_h = max((x["span_h"] or 0.0 for x in d["trends"]), default=0.0)
    if span_h < MIN_TREND_SPAN_H:
        out.append(
            f"<p class='meta' id='trends'>trends are shown for runs of "
            f"{MIN_TREND_SPAN_H * 60:.0f} minutes or more (this one covers {span_h * 3600:.0f} s)"
            "</p>"
        )
    else:
        keys = ("mean", "slope_per_h", "slope_ci95_per_h")
        rows = [
            [_cell(x["metric"], x["metric"], left=True), _cell(x["points"], T.count(x["points"]))]
            + [_cell(x[k], _trend_value(x["metric"], x[k])) for k in keys]
            + [_cell(x[k], T.change(x[k])) for k in ("growth_per_h", "growth_ci95_per_h")]
            for x in d["trends"]
        ]
        headers = [("metric", True), ("windows", False), ("mean", False), ("slope / h", False)]
        headers += [("± 95 %", False), ("growth / h", False), ("± 95 %", False)]
        out.append(_table("trends", headers, rows))
    out.append(f"<p id='bursts'>error bursts: {len(d['error_bursts'])}</p>")
    out.append(spec_table(T.BURSTS, d["tables"]["error_bursts"]))
    out.append(spec_table(T.RESOURCES, d["tables"]["resource_growth"]))
    return "".join(out)


def _manifest(d: dict[str, Any]) -> str:
    data = json.dumps(_jsonable({k: v for k, v in d.items() if k not in ("manifest", "tables")}))
    data = data.replace("</", "<\\/")  # never ends the script element early
    return (
        "<h2>Manifest</h2><p class='meta'>run.json, secrets redacted</p>"
        f"<pre id='manifest'>{escape(json.dumps(d['manifest'], indent=2))}</pre>"
        f"<script type='application/json' id='simd-data'>{data}</script></body></html>"
    )


SECTIONS = (_head, _integrity, _cards, _recommendations, _slos, _time_charts, _tables)
SECTIONS += (_endurance, _manifest)


def render(d: dict[str, Any]) -> str:
    """The page for one run's data (from `load`): its sections in order."""
    return "".join(section(d) for section in SECTIONS)


def _trend_value(metric: str, v: Any) -> str:
    return T.ms_unit(v) if metric.startswith("latency") else T.fixed(4)(v)


def _errors_chart(d: dict[str, Any], x_series: list[float]) -> str:
    """Failed publishes (requests) per second by status and error text (the five most
    common)."""
    totals: dict[str, int] = {}
    for e in d["series_errors"]:
        key = f"{e['status']}: {e['error']}" if e["error"] else e["status"]
        totals[key] = totals.get(key, 0) + int(e["count"])
    if not totals:
        return f"<p class='empty'>no failed {d['publishes']}</p>"
    top = sorted(totals, key=lambda k: -totals[k])[:5]
    index = {row["window"]: i for i, row in enumerate(d["series"])}
    per: dict[str, list[float | None]] = {k: [0.0] * len(x_series) for k in [*top, "other"]}
    w_s = d["window_ns"] / 1e9
    for e in d["series_errors"]:
        key = f"{e['status']}: {e['error']}" if e["error"] else e["status"]
        i = index.get(e["window"])
        if i is not None:
            per[key if key in top else "other"][i] += int(e["count"]) / w_s  # type: ignore[operator]
    lines = [Line(k[:48], v) for k, v in per.items() if k != "other" or any(v)]
    return time_chart(
        f"failed {d['publishes']} per second by kind", x_series, lines, "per s",
        phases=d["phase_starts"],
    )  # fmt: skip


def write_html(run: str | Path, path: str | Path | None = None) -> Path:
    """Write the run's report page (default RUN/report.html); return where it went."""
    run_dir = run_dir_of(run)
    target = Path(path) if path is not None else run_dir / REPORT_FILE
    html = render(load(run_dir))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
    except OSError as exc:
        from simd.errors import UserError

        raise UserError(f"{target}: cannot write the report ({exc.strerror})") from None
    return target
