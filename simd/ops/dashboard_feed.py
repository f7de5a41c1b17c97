"""A finished run's dashboard feed, read from its results.duckdb: the same shape as a live run's
GET /api/dashboard (simd.runtime.live), so one page shows both. Every number comes from the
log's tables (the report's own views): points are the report's series windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simd.model.manifest import read_manifest
from simd.report.tables import rows
from simd.results.ingest import read_views, run_dir_of
from simd.runtime.timeline import FIELDS

_FAILED = ("timeout", "error", "dropped", "missed", "unsent")


def _ms(ns: Any) -> float | None:
    return None if ns is None else float(ns) / 1e6


def finished_dashboard(run: str | Path) -> dict[str, Any]:
    """GET /api/dashboard of a finished run (all its points at once; epoch 0)."""
    run_dir = run_dir_of(run)
    manifest = read_manifest(run_dir)
    con = read_views(run_dir)
    try:
        return {
            "status": _status(con, manifest),
            "target": manifest.target_url,
            "slo": {
                r["name"]: {"threshold": r["threshold"], "unit": r["unit"]}
                for r in rows(con, "SELECT name, threshold, unit FROM slo")
                if r["name"] in ("latency_p99", "error_rate", "schedule_lag_p99")
            },
            "fields": list(FIELDS),
            "epoch": 0,
            "start": 0,
            "points": _points(con, manifest),
            "finished": True,
        }
    finally:
        con.close()


def _points(con: Any, manifest: Any) -> list[list[float | None]]:
    window_s = con.execute("SELECT window_ns()").fetchone()[0] / 1e9
    lat = {r["window"]: r for r in rows(con, "SELECT * FROM series_latency")}
    errs: dict[int, dict[str, int]] = {}
    for w, status, n in con.execute(
        'SELECT "window", status, sum(count) FROM series_errors GROUP BY ALL'
    ).fetchall():
        errs.setdefault(w, {})[status] = int(n)
    rss = dict(
        con.execute(
            f"SELECT (t_ns // {round(window_s * 1e9)})::BIGINT, max(rss_bytes) FROM samples "
            "GROUP BY ALL"
        ).fetchall()
    )
    out = []
    for s in rows(con, "SELECT * FROM series"):
        w = s["window"]
        q, e = lat.get(w, {}), errs.get(w, {})
        v: dict[str, float | None] = {
            "t_s": (w + 1) * window_s,
            "planned_per_s": s["planned_per_s"],
            "sent_per_s": s["sent_per_s"],
            "completed_per_s": s["completed_per_s"],
            "failed_per_s": s["failed_per_s"],
            "p50_ms": _ms(q.get("p50_ns")),
            "p95_ms": _ms(q.get("p95_ns")),
            "p99_ms": _ms(q.get("p99_ns")),
            "max_ms": _ms(q.get("max_ns")),
            "sent_p50_ms": _ms(q.get("p50_sent_ns")),
            "sent_p99_ms": _ms(q.get("p99_sent_ns")),
            "sent_max_ms": _ms(q.get("max_sent_ns")),
            "lag_p99_ms": _ms(q.get("lag_p99_ns")),
            "rss_mib": rss[w] / 2**20 if rss.get(w) is not None else None,
            "workers_up": None,
        }
        for k in _FAILED:
            v[f"{k}_per_s"] = e.get(k, 0) / window_s
        out.append([v.get(f) for f in FIELDS])
    return out


def _status(con: Any, manifest: Any) -> dict[str, Any]:
    """The run's last numbers as /status has them (simd.runtime.live.Status)."""
    summ = rows(con, "SELECT * FROM run_summary")[0]
    run = rows(con, "SELECT * FROM runs")[0]
    counts = rows(con, "SELECT * FROM status_counts")
    by = {k: sum(int(r[k]) for r in counts) for k in ("acked", "sent", *_FAILED)}
    not_sent = by["missed"] + by["unsent"]
    duration_s = (run["stopped_at_ns"] or run["duration_ns"]) / 1e9
    groups: dict[str, dict[str, int]] = {}
    phases: dict[str, dict[str, int]] = {}
    for r in counts:
        for key, into in ((r["group_name"], groups), (r["phase"], phases)):
            d = into.setdefault(key, {"sent": 0, "completed": 0, "errors": 0})
            d["sent"] += int(r["logged"]) - int(r["missed"]) - int(r["unsent"])
            d["completed"] += int(r["acked"]) + int(r["sent"])
            d["errors"] += sum(int(r[k]) for k in _FAILED)
    spans = {r["phase"]: r for r in rows(con, "SELECT phase, start_ns, end_ns FROM phases")}
    results = manifest.worker_results or {}
    return {
        "run_id": run["run_id"],
        "scenario": run["scenario"],
        "shard": "",
        "state": run["state"],
        "elapsed_s": duration_s,
        "duration_s": run["duration_ns"] / 1e9,
        "planned_total": int(summ["planned"]),
        "planned_so_far": int(summ["planned"]),
        "sent": int(summ["logged"]) - not_sent,
        "acked": by["acked"],
        "completed": int(summ["completed"]),
        "errors": int(summ["failed"]),
        "by_status": by,
        "interval": {
            "seconds": duration_s,
            "sent_per_s": (int(summ["logged"]) - not_sent) / duration_s if duration_s else 0.0,
            "completed_per_s": float(summ["throughput_per_s"] or 0.0),
            "error_rate": float(summ["error_rate"] or 0.0),
            "latency_p50_ms": _ms(summ["latency_p50_ns"]),
            "latency_p99_ms": _ms(summ["latency_p99_ns"]),
            "lag_p99_ms": _ms(summ["schedule_lag_p99_ns"]),
            "latency_max_ms": _ms(summ["latency_max_ns"]),
        },
        "workers": [
            {
                "worker": int(w),
                "state": r.get("state", "done"),
                "pid": None,
                "restarts": int(r.get("restarts", 0)),
                "t_s": duration_s,
                "sent": int(r.get("sent", 0)),
                "completed": None,  # the manifest keeps what each worker sent, no more
                "errors": None,
                "lag_p99_ms": 0.0,
                "latency_p99_ms": 0.0,
                "rss_bytes": 0,
                "seconds_since_progress": None,
            }
            for w, r in sorted(results.items(), key=lambda kv: int(kv[0]))
        ],
        "alerts": [],
        "groups": [{"name": k, **v} for k, v in groups.items()],
        "messages": [
            {
                "group": r["group_name"],
                "name": r["message"],
                "sent": int(r["sent"]),
                "completed": int(r["completed"]),
                "errors": int(r["failed"]),
                "latency_mean_ms": None,
            }
            for r in rows(
                con,
                "SELECT g.group_name, m.message_name AS message, "
                "sum(c.count) FILTER (WHERE was_sent(c.status))::BIGINT AS sent, "
                "coalesce(sum(c.count) FILTER (WHERE is_completed(c.status)), 0)::BIGINT "
                "AS completed, coalesce(sum(c.count) FILTER (WHERE is_failed(c.status)), 0)"
                "::BIGINT AS failed FROM topic_counts c JOIN groups g ON g.group_index = c.grp "
                "LEFT JOIN messages m ON m.group_index = c.grp AND m.message = c.message "
                "GROUP BY ALL ORDER BY 1, 2",
            )
        ],
        "phases": [
            {
                "name": name,
                "start_s": spans[name]["start_ns"] / 1e9 if name in spans else 0.0,
                "end_s": spans[name]["end_ns"] / 1e9 if name in spans else 0.0,
                **v,
            }
            for name, v in phases.items()
        ],
        "other_rows": [
            {"kind": k, "status": s, "count": int(n)}
            for k, s, n in con.execute(
                "SELECT kind_list()[kind + 1], status_list()[status + 1], sum(count) "
                "FROM status_totals WHERE kind <> kind_code('publish') GROUP BY ALL ORDER BY 1, 2"
            ).fetchall()
        ],
        "top_errors": [
            {"text": t or "(no error text)", "count": int(n)}
            for t, n in con.execute(
                "SELECT error, sum(count) AS n FROM series_errors GROUP BY ALL "
                "ORDER BY n DESC LIMIT 20"
            ).fetchall()
        ],
    }
