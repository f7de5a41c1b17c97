"""Results for machines: a JSON summary of a run and its SLOs as JUnit XML (what CI shows).

The summary is to simd what k6's `--summary-export` is to k6: one JSON document with the run,
its totals, latency from the intended and from the actual send time, schedule lag, the
publishes by group and phase, the most frequent errors and the SLOs. Every number comes from
results.duckdb (the log), as the terminal report's do.

JUnit XML: one <testsuite> per run, one <testcase> per SLO (classname `simd.slo`, name the
SLO), a <failure> with observed vs threshold for each that failed; a run whose results
cannot be read has no cases (the caller reports the error).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from simd.report.tables import rows
from simd.report.terminal import SloResult, check
from simd.results.ingest import read_views, run_dir_of

SUMMARY_FORMAT = 1


def _ms(ns: Any) -> float | None:
    return None if ns is None else round(float(ns) / 1e6, 6)


def summary(run: str | Path) -> dict[str, Any]:
    """The run's summary as a JSON-ready dict (see the module docstring)."""
    run_dir = run_dir_of(run)
    con = read_views(run_dir)
    try:
        meta = rows(con, "SELECT run_id, scenario, state, duration_ns, stopped_at_ns, "
                          "workers, target FROM runs")[0]  # fmt: skip
        totals = rows(con, "SELECT * FROM run_summary")[0]
        latency = rows(con, "SELECT * FROM latency_percentiles")
        lag = rows(con, "SELECT * FROM schedule_lag")
        by_group = rows(con, "SELECT * FROM status_counts")
        errors = rows(con, "SELECT kind, status, error, count FROM errors_by_kind "
                            "ORDER BY count DESC LIMIT 20")  # fmt: skip
    finally:
        con.close()
    slos = check(run_dir)
    return {
        "format": SUMMARY_FORMAT,
        "run": {
            "id": meta["run_id"],
            "scenario": meta["scenario"],
            "state": meta["state"],
            "target": meta["target"],
            "workers": meta["workers"],
            "duration_s": meta["duration_ns"] / 1e9,
            "stopped_at_s": None if meta["stopped_at_ns"] is None else meta["stopped_at_ns"] / 1e9,
        },
        "totals": {
            "planned": totals["planned"],
            "logged": totals["logged"],
            "completed": totals["completed"],
            "failed": totals["failed"],
            "error_rate": totals["error_rate"],
            "throughput_per_s": totals["throughput_per_s"],
            "throughput_ratio": totals["throughput_ratio"],
        },
        "latency_ms": [
            {
                "group": r["group_name"],
                "phase": r["phase"],
                "completed": r["completed"],
                "from_intended": {q: _ms(r[f"{q}_intended_ns"]) for q in _QUANTILES},
                "from_sent": {q: _ms(r[f"{q}_sent_ns"]) for q in _QUANTILES},
            }
            for r in latency
        ],
        "schedule_lag_ms": [
            {
                "group": r["group_name"],
                "phase": r["phase"],
                "sent": r["sent"],
                "p50": _ms(r["lag_p50_ns"]),
                "p99": _ms(r["lag_p99_ns"]),
                "max": _ms(r["lag_max_ns"]),
            }
            for r in lag
        ],
        "publishes": by_group,
        "errors": errors,
        "slos": [slo_json(s) for s in slos],
        "passed": all(s.passed for s in slos),
    }


_QUANTILES = ("p50", "p90", "p99", "p999", "max")


def slo_json(s: SloResult) -> dict[str, Any]:
    return {
        "name": s.name,
        "origin": s.origin,
        "unit": s.unit,
        "threshold": s.threshold,
        "observed": s.observed,
        "passed": s.passed,
        "text": s.describe(),
    }


def summary_json(run: str | Path) -> str:
    return json.dumps(summary(run), indent=2, default=str) + "\n"


def junit_xml(run: str | Path, slos: list[SloResult] | None = None) -> str:
    """The run's SLOs as JUnit XML (see the module docstring)."""
    run_dir = run_dir_of(run)
    results = check(run_dir) if slos is None else slos
    failed = [s for s in results if not s.passed]
    suite = ET.Element(
        "testsuite",
        name=f"simd {run_dir.name}",
        tests=str(len(results)),
        failures=str(len(failed)),
        errors="0",
        skipped="0",
    )
    for s in results:
        case = ET.SubElement(suite, "testcase", classname="simd.slo", name=s.label)
        if not s.passed:
            failure = ET.SubElement(case, "failure", message=s.describe(), type="SLO")
            failure.text = (
                f"observed {s.observed} against threshold {s.threshold} ({s.unit or 'ratio'})"
            )
    suites = ET.Element("testsuites", name="simd", tests=suite.get("tests", "0"))
    suites.set("failures", str(len(failed)))
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"
