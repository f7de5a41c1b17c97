"""`simd report --html`: one self-contained HTML page per run, drawn from the views in
analysis/views.sql (the same numbers the terminal report prints; nothing computed here but
unit conversions). No scripts run and nothing is fetched: charts are inline SVG, styles
inline; the numbers behind every chart are also embedded as JSON (`#simd-data`) for tools.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from simd.model.secrets import redact
from simd.report.charts import Line, percentile_chart, time_chart
from simd.report.terminal import (
    DELIVERY_COLUMNS,
    DELIVERY_SQL,
    JOURNEY_COLUMNS,
    LATENCY_COLUMNS,
    MIN_TREND_SPAN_H,
    REPLAY_COLUMNS,
    delivery_cells,
    integrity_line,
    shard_lines,
    slo_label,
)
from simd.results.ingest import connect, run_dir_of

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


def _rows(con: Any, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def load(run: str | Path) -> dict[str, Any]:
    """Everything the page shows, read from the run's results.duckdb."""
    run_dir = run_dir_of(run)
    con = connect(run_dir, read_only=True)
    try:
        d: dict[str, Any] = {
            "run": _rows(
                con,
                "SELECT run_id, scenario, scenario_hash, seed, target, clock, workers, "
                "t0_epoch_ns, duration_ns, state, planned_publishes, stopped_at_ns FROM runs",
            )[0],
            "summary": _rows(con, "SELECT * FROM run_summary")[0],
            "window_ns": con.execute("SELECT window_ns()").fetchone()[0],
        }
        for view in (
            "status_counts",
            "latency_percentiles",
            "schedule_lag",
            "topic_stats",
            "errors_by_kind",
            "end_to_end",
            "series",
            "series_latency",
            "series_errors",
            "latency_distribution",
            "trends",
            "error_bursts",
            "resource_growth",
            "slo_results",
            "recommendations",
        ):
            d[view] = _rows(con, f"SELECT * FROM {view}")
        replays = con.execute("SELECT count(*) FROM replay_groups").fetchone()[0]
        d["replay_fidelity"] = _rows(con, "SELECT * FROM replay_fidelity") if replays else []
        journeys = con.execute("SELECT count(*) FROM groups WHERE steps > 1").fetchone()[0]
        d["journey_stats"] = _rows(con, "SELECT * FROM journey_stats") if journeys else []
        d["shards"] = list(shard_lines(con))
        d["integrity"] = integrity_line(con)
        d["log_damage"] = _rows(con, "SELECT * FROM log_damage ORDER BY segment, offset_start")
        d["command_stats"] = _rows(con, "SELECT * FROM command_stats")
        probes = con.execute("SELECT count(*) FROM probes").fetchone()[0]
        d["delivery"] = (
            [delivery_cells(r) for r in con.execute(DELIVERY_SQL).fetchall()] if probes else []
        )
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


def _ms(ns: Any) -> str:
    return "-" if ns is None else f"{float(ns) / 1e6:,.3f}"


def _int(v: Any) -> str:
    return "-" if v is None else f"{int(v):,}"


def _cell(v: Any, text: str, left: bool = False, cls: str = "") -> str:
    raw = "" if v is None else escape(str(_num(v)), quote=True)
    klass = " ".join(c for c in ("l" if left else "", cls) if c)
    k = f' class="{klass}"' if klass else ""
    return f'<td{k} data-v="{raw}">{escape(text)}</td>'


def _table(table_id: str, headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    head = "".join(
        f'<th class="l">{escape(h)}</th>' if i < left else f"<th>{escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _slo_text(s: dict[str, Any]) -> str:
    if s["observed"] is None:
        return "no data"
    fmt = _ms if s["unit"] == "ns" else (lambda v: f"{float(v):.4g}")
    return f"{fmt(s['observed'])} vs {fmt(s['threshold'])}"


def render(d: dict[str, Any]) -> str:
    """The page for one run's data (from `load`)."""
    r, s = d["run"], d["summary"]
    shard_info = d.get("shards") or ([], [])
    w_s = d["window_ns"] / 1e9
    x_series = [row["start_ns"] / 1e9 for row in d["series"]]
    x_lat = [row["start_ns"] / 1e9 for row in d["series_latency"]]
    out: list[str] = []
    add = out.append
    title = f"simd report: {r['scenario']} ({r['run_id']})"
    add(f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}")
    add(f"</title><meta name='viewport' content='width=device-width'><style>{PAGE_CSS}</style>")
    add("</head><body>")
    add(f"<h1>{escape(r['scenario'])} <small class='meta'>{escape(r['run_id'])}</small></h1>")
    started = (
        datetime.fromtimestamp(r["t0_epoch_ns"] / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if r["t0_epoch_ns"]
        else "-"
    )
    state_cls = "ok" if r["state"] == "completed" else "warn"
    add(
        f"<p class='meta'>state <b class='{state_cls}' id='state'>{escape(str(r['state']))}</b>"
        f" · target {escape(str(r['target']))} · clock {escape(str(r['clock']))} · "
        f"workers {r['workers']} · duration {r['duration_ns'] / 1e9:g} s · t=0 {started} · "
        f"seed {r['seed']} · time axis in {w_s:g} s windows</p>"
    )
    if d.get("integrity"):
        add(f"<p class='meta' id='log-damage'><b class='bad'>{escape(d['integrity'])}</b></p>")
        rows = [
            [
                _cell(x["segment"], x["segment"], left=True),
                _cell(x["offset_start"], f"{x['offset_start']:,}–{x['offset_end']:,}"),
                _cell(x["bytes"], _int(x["bytes"])),
                _cell(x["rows_lost"], _int(x["rows_lost"])),
                _cell(x["reason"], x["reason"], left=True),
            ]
            for x in d.get("log_damage") or []
        ]
        add(_table("log_damage", ["segment", "bytes at", "size", "rows lost", "why"], rows))
    for line in shard_info[0]:
        add(f"<p class='meta' id='shards'>{escape(line)}</p>")
    for line in shard_info[1]:
        add(f"<p class='meta'><b class='bad'>{escape(line)}</b></p>")

    cards = [
        ("planned", _int(s["planned"]), s["planned"]),
        ("logged", _int(s["logged"]), s["logged"]),
        ("completed", _int(s["completed"]), s["completed"]),
        ("failed", _int(s["failed"]), s["failed"]),
        ("error rate", f"{100 * float(s['error_rate'] or 0):.3f} %", s["error_rate"]),
        ("throughput /s", f"{float(s['throughput_per_s'] or 0):,.1f}", s["throughput_per_s"]),
        ("p50 ms", _ms(s["latency_p50_ns"]), s["latency_p50_ns"]),
        ("p99 ms", _ms(s["latency_p99_ns"]), s["latency_p99_ns"]),
        ("p99.9 ms", _ms(s["latency_p999_ns"]), s["latency_p999_ns"]),
        ("max ms", _ms(s["latency_max_ns"]), s["latency_max_ns"]),
        ("lag p99 ms", _ms(s["schedule_lag_p99_ns"]), s["schedule_lag_p99_ns"]),
    ]
    add("<div class='cards' id='summary'>")
    for label, text, raw in cards:
        key = label.replace(" ", "_").replace("/", "per")
        add(
            f"<div class='card' data-k='{key}' data-v='{escape(str(_num(raw)), quote=True)}'>"
            f"<b>{escape(text)}</b><span>{escape(label)}</span></div>"
        )
    add("</div>")

    add("<h2>Recommendations</h2><ul id='recommendations'>")
    for rec in d["recommendations"]:
        cls = "ok" if rec["severity"] == "ok" else "warn"
        add(
            f"<li><b class='{cls}'>{escape(rec['finding'])}</b>: {escape(rec['evidence'])}. "
            f"{escape(rec['advice'])}.</li>"
        )
    add("</ul>")

    if d["slo_results"]:
        add("<h2>SLOs</h2>")
        rows = [
            [
                _cell(
                    x["name"],
                    slo_label(x["name"], x.get("origin")),
                    left=True,
                ),
                _cell(
                    x["passed"],
                    "ok" if x["passed"] else "FAILED",
                    cls="ok" if x["passed"] else "bad",
                ),
                _cell(x["observed"], _slo_text(x)),
            ]
            for x in d["slo_results"]
        ]
        add(_table("slos", ["SLO", "verdict", "observed vs threshold"], rows))

    add("<h2>Throughput</h2>")
    ser = d["series"]
    add(
        time_chart(
            f"publishes per second ({w_s:g} s windows, by intended send time)",
            x_series,
            [
                Line("planned", [row["planned_per_s"] for row in ser], dashed=True),
                Line("sent", [row["sent_per_s"] for row in ser]),
                Line("acked", [row["acked_per_s"] for row in ser]),
                Line("failed", [row["failed_per_s"] for row in ser]),
            ],
            "per s",
        )
    )
    lat = d["series_latency"]

    def ms_list(key: str) -> list[float | None]:
        return [None if row[key] is None else float(row[key]) / 1e6 for row in lat]

    add("<h2>Latency over time</h2>")
    for title, suffix in (
        ("latency from intended send time (ms, log scale)", ""),
        ("latency from actual send time (ms, log scale): the target's own share", "_sent"),
    ):
        lines = [Line(p, ms_list(f"{p}{suffix}_ns")) for p in ("p50", "p95", "p99")]
        lines.append(Line("max", ms_list(f"max{suffix}_ns"), dashed=True))
        add(time_chart(title, x_lat, lines, "ms", log_y=True))
    dist = d["latency_distribution"]
    add("<h2>Latency distribution</h2>")
    add(
        percentile_chart(
            "latency by percentile, whole run (ms)",
            [float(x["quantile"]) for x in dist],
            [
                Line(
                    "from intended",
                    [None if x["intended_ns"] is None else x["intended_ns"] / 1e6 for x in dist],
                ),
                Line(
                    "from sent",
                    [None if x["sent_ns"] is None else x["sent_ns"] / 1e6 for x in dist],
                    dashed=True,
                ),
            ],
        )
    )
    add(
        _table(
            "distribution",
            ["percentile", "from intended (ms)", "from sent (ms)"],
            [
                [
                    _cell(x["quantile"], f"{100 * float(x['quantile']):g} %", left=True),
                    _cell(x["intended_ns"], _ms(x["intended_ns"])),
                    _cell(x["sent_ns"], _ms(x["sent_ns"])),
                ]
                for x in dist
            ],
        )
    )
    add("<h2>Schedule lag</h2>")
    add(
        time_chart(
            "schedule lag: actual minus intended send time (ms)",
            x_lat,
            [
                Line("p50", ms_list("lag_p50_ns")),
                Line("p99", ms_list("lag_p99_ns")),
                Line("max", ms_list("lag_max_ns"), dashed=True),
            ],
            "ms",
        )
    )
    add("<h2>Errors over time</h2>")
    add(_errors_chart(d, x_series))

    add("<h2>By group and phase</h2>")
    counts = ("planned", "logged", "acked", "sent", "timeout", "error", "dropped", "missed")
    counts += ("unsent",)
    add(
        _table(
            "status_counts",
            ["group", "phase", *counts],
            [
                [
                    _cell(x["group_name"], x["group_name"], left=True),
                    _cell(x["phase"], x["phase"], left=True),
                    *(_cell(x[k], _int(x[k])) for k in counts),
                ]
                for x in d["status_counts"]
            ],
            left=2,
        )
    )
    lat_keys = (
        "p50_intended_ns",
        "p90_intended_ns",
        "p99_intended_ns",
        "p999_intended_ns",
        "max_intended_ns",
        "p50_sent_ns",
        "p99_sent_ns",
        "max_sent_ns",
    )
    add(
        _table(
            "latency_percentiles",
            list(LATENCY_COLUMNS),
            [
                [
                    _cell(x["group_name"], x["group_name"], left=True),
                    _cell(x["phase"], x["phase"], left=True),
                    _cell(x["completed"], _int(x["completed"])),
                ]
                + [_cell(x[k], _ms(x[k])) for k in lat_keys]
                for x in d["latency_percentiles"]
            ],
            left=2,
        )
    )
    add("<p class='meta'>latency in ms; p-values from ingest-time histograms (within 0.05 %)</p>")
    add(
        _table(
            "schedule_lag",
            ["group", "phase", "sent", "lag p50 (ms)", "lag p99 (ms)", "lag max (ms)"],
            [
                [
                    _cell(x["group_name"], x["group_name"], left=True),
                    _cell(x["phase"], x["phase"], left=True),
                    _cell(x["sent"], _int(x["sent"])),
                ]
                + [_cell(x[k], _ms(x[k])) for k in ("lag_p50_ns", "lag_p99_ns", "lag_max_ns")]
                for x in d["schedule_lag"]
            ],
            left=2,
        )
    )
    add("<h2>By topic</h2>")
    add(
        _table(
            "topic_stats",
            [
                "group",
                "message",
                "topic",
                "qos",
                "publishes",
                "completed",
                "failed",
                "bytes",
                "p50 (ms)",
                "p99 (ms)",
                "max (ms)",
            ],
            [
                [
                    _cell(x["group_name"], x["group_name"], left=True),
                    _cell(x["message"], str(x["message"]), left=True),
                    _cell(x["topic"], str(x["topic"]), left=True),
                    _cell(x["qos"], str(x["qos"])),
                ]
                + [_cell(x[k], _int(x[k])) for k in ("publishes", "completed", "failed", "bytes")]
                + [_cell(x[k], _ms(x[k])) for k in ("p50_ns", "p99_ns", "max_ns")]
                for x in d["topic_stats"]
            ],
            left=3,
        )
    )
    add(
        "<p class='meta'>per-topic p50/p99 from 1.6 %-wide buckets (within 0.8 %); max is exact</p>"
    )
    if d["end_to_end"]:
        add("<h2>End to end (probes)</h2>")
        add(
            _table(
                "end_to_end",
                ["group", "received", "traced", "p50 (ms)", "p99 (ms)", "max (ms)"],
                [
                    [
                        _cell(x["group_name"], x["group_name"], left=True),
                        _cell(x["received"], _int(x["received"])),
                        _cell(x["traced"], _int(x["traced"])),
                    ]
                    + [_cell(x[k], _ms(x[k])) for k in ("p50_ns", "p99_ns", "max_ns")]
                    for x in d["end_to_end"]
                ],
            )
        )
    if d.get("delivery"):
        add("<h2>Delivery (probes)</h2>")
        add(
            _table(
                "delivery",
                list(DELIVERY_COLUMNS),
                [
                    [_cell(v, str(v), left=i < 2) for i, v in enumerate(row)]
                    for row in d["delivery"]
                ],
                left=2,
            )
        )
    if d.get("command_stats"):
        add("<h2>Commands: round trip from the intended send time</h2>")
        add(
            _table(
                "commands",
                ["group", "commands", "delivered", "answered", "timed out", "p50 (ms)",
                 "p99 (ms)", "max (ms)"],
                [
                    [_cell(x["group_name"], x["group_name"], left=True)]
                    + [_cell(x[k], _int(x[k]))
                       for k in ("commands", "delivered", "answered", "timed_out")]
                    + [_cell(x[k], _ms(x[k])) for k in ("rtt_p50_ns", "rtt_p99_ns", "rtt_max_ns")]
                    for x in d["command_stats"]
                ],
            )
        )  # fmt: skip
    if d["replay_fidelity"]:
        add("<h2>Replay fidelity</h2>")
        add(
            _table(
                "replay_fidelity",
                list(REPLAY_COLUMNS),
                [
                    [
                        _cell(x["group_name"], x["group_name"], left=True),
                        _cell(x["recorded_messages"], _int(x["recorded_messages"])),
                        _cell(x["passes"] * x["fanout"], f"{x['passes']} x {x['fanout']}"),
                        _cell(x["speed"], f"{x['speed']:g}"),
                    ]
                    + [_cell(x[k], _int(x[k])) for k in ("planned", "sent", "completed")]
                    + [
                        _cell(x[k], "-" if x[k] is None else f"{x[k]:.3f}")
                        for k in ("send_offset_p50_ms", "send_offset_p99_ms", "send_offset_max_ms")
                    ]
                    + [
                        _cell(
                            x["correlation_sent"],
                            "-"
                            if x["correlation_sent"] is None
                            else f"{x['correlation_sent']:.4f}",
                        ),
                        _cell(x["size_mismatches"], _int(x["size_mismatches"])),
                    ]
                    for x in d["replay_fidelity"]
                ],
            )
        )
        for x in d["replay_fidelity"]:
            if x.get("missing_spans"):
                add(
                    f"<p class='meta' id='replay-damage'><b class='bad'>replay "
                    f"{escape(x['group_name'])}: recording {escape(x['missing_spans'])}</b></p>"
                )
        add(
            "<p class='meta'>send offset: actual send time minus the recorded time scaled by "
            "speed (ms); correlation of messages per second of recording time, recorded "
            "(x fanout) vs replayed</p>"
        )
    if d["journey_stats"]:
        add("<h2>Journeys</h2>")
        add(
            _table(
                "journey_stats",
                list(JOURNEY_COLUMNS),
                [
                    [
                        _cell(x["group_name"], x["group_name"], left=True),
                        _cell(x["step"], "-" if x["step"] is None else str(x["step"])),
                        _cell(x["request"], x["request"], left=True),
                        _cell(x["requests"], _int(x["requests"])),
                        _cell(x["passed"], _int(x["passed"])),
                    ]
                    + [_cell(x[k], _ms(x[k])) for k in ("p50_ns", "p99_ns", "max_ns")]
                    for x in d["journey_stats"]
                ],
                left=3,
            )
        )
        add("<p class='meta'>latency per step from its send; a whole journey from its intended "
            "start to its last response (ms)</p>")  # fmt: skip
    add("<h2>Errors by kind</h2>")
    if d["errors_by_kind"]:
        add(
            _table(
                "errors_by_kind",
                ["status", "kind", "error", "count", "first (s)", "last (s)"],
                [
                    [
                        _cell(x["status"], x["status"], left=True),
                        _cell(x["kind"], x["kind"], left=True),
                        _cell(x["error"], x["error"], left=True),
                        _cell(x["count"], _int(x["count"])),
                        _cell(
                            x["first_ns"],
                            "-" if x["first_ns"] is None else f"{x['first_ns'] / 1e9:.1f}",
                        ),
                        _cell(
                            x["last_ns"],
                            "-" if x["last_ns"] is None else f"{x['last_ns'] / 1e9:.1f}",
                        ),
                    ]
                    for x in d["errors_by_kind"]
                ],
                left=3,
            )
        )
    else:
        add("<p id='errors_by_kind'>none</p>")

    add("<h2>Endurance</h2>")
    span_h = max((x["span_h"] or 0.0 for x in d["trends"]), default=0.0)
    if span_h < MIN_TREND_SPAN_H:
        add(
            f"<p class='meta' id='trends'>trends are shown for runs of "
            f"{MIN_TREND_SPAN_H * 60:.0f} minutes or more (this one covers {span_h * 3600:.0f} s)"
            "</p>"
        )
    else:
        add(
            _table(
                "trends",
                ["metric", "windows", "mean", "slope / h", "± 95 %", "growth / h", "± 95 %"],
                [
                    [
                        _cell(x["metric"], x["metric"], left=True),
                        _cell(x["points"], _int(x["points"])),
                        _cell(x["mean"], _trend_value(x["metric"], x["mean"])),
                        _cell(x["slope_per_h"], _trend_value(x["metric"], x["slope_per_h"])),
                        _cell(
                            x["slope_ci95_per_h"], _trend_value(x["metric"], x["slope_ci95_per_h"])
                        ),
                        _cell(x["growth_per_h"], _pct(x["growth_per_h"])),
                        _cell(x["growth_ci95_per_h"], _pct(x["growth_ci95_per_h"])),
                    ]
                    for x in d["trends"]
                ],
            )
        )
    bursts = d["error_bursts"]
    add(f"<p id='bursts'>error bursts: {len(bursts)}</p>")
    if bursts:
        add(
            _table(
                "error_bursts",
                ["burst", "from (s)", "to (s)", "failed", "scheduled", "error rate", "peak"],
                [
                    [
                        _cell(x["burst"], str(x["burst"]), left=True),
                        _cell(x["start_ns"], f"{x['start_ns'] / 1e9:g}"),
                        _cell(x["end_ns"], f"{x['end_ns'] / 1e9:g}"),
                        _cell(x["failed"], _int(x["failed"])),
                        _cell(x["scheduled"], _int(x["scheduled"])),
                        _cell(x["error_rate"], _pct(x["error_rate"])),
                        _cell(x["peak_error_rate"], _pct(x["peak_error_rate"])),
                    ]
                    for x in bursts
                ],
            )
        )
    if d["resource_growth"]:
        add(
            _table(
                "resource_growth",
                [
                    "worker",
                    "samples",
                    "RSS mean (MiB)",
                    "RSS max (MiB)",
                    "RSS growth / h",
                    "± 95 %",
                    "CPU mean (cores)",
                    "fds max",
                ],
                [
                    [
                        _cell(x["worker"], str(x["worker"]), left=True),
                        _cell(x["samples"], _int(x["samples"])),
                        _cell(x["rss_mean_bytes"], f"{float(x['rss_mean_bytes']) / 2**20:,.1f}"),
                        _cell(x["rss_max_bytes"], f"{float(x['rss_max_bytes']) / 2**20:,.1f}"),
                        _cell(x["rss_growth_per_h"], _pct(x["rss_growth_per_h"])),
                        _cell(x["rss_growth_ci95_per_h"], _pct(x["rss_growth_ci95_per_h"])),
                        _cell(
                            x["cpu_mean"],
                            "-" if x["cpu_mean"] is None else f"{float(x['cpu_mean']):.2f}",
                        ),
                        _cell(x["fds_max"], _int(x["fds_max"])),
                    ]
                    for x in d["resource_growth"]
                ],
            )
        )
    add("<h2>Manifest</h2><p class='meta'>run.json, secrets redacted</p>")
    add(f"<pre id='manifest'>{escape(json.dumps(d['manifest'], indent=2))}</pre>")
    data = json.dumps(_jsonable({k: v for k, v in d.items() if k != "manifest"}))
    data = data.replace("</", "<\\/")  # never ends the script element early
    add(f"<script type='application/json' id='simd-data'>{data}</script>")
    add("</body></html>")
    return "".join(out)


def _pct(v: Any) -> str:
    return "-" if v is None or not math.isfinite(float(v)) else f"{100 * float(v):+.2f} %"


def _trend_value(metric: str, v: Any) -> str:
    if v is None or not math.isfinite(float(v)):
        return "-"
    return _ms(v) + " ms" if metric.startswith("latency") else f"{float(v):.4f}"


def _errors_chart(d: dict[str, Any], x_series: list[float]) -> str:
    """Failed publishes per second by status and error text (the five most common)."""
    totals: dict[str, int] = {}
    for e in d["series_errors"]:
        key = f"{e['status']}: {e['error']}" if e["error"] else e["status"]
        totals[key] = totals.get(key, 0) + int(e["count"])
    if not totals:
        return "<p class='empty'>no failed publishes</p>"
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
    return time_chart("failed publishes per second by kind", x_series, lines, "per s")


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
