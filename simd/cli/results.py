"""Commands on results: `report`, `check`, `compare`, `query`."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from simd.cli.app import app, guarded, out
from simd.cli.options import format_option
from simd.errors import EXIT_SLO, UserError


@app.command("report")
@guarded
def report_cmd(
    run: Annotated[Path, typer.Argument(help="run folder")],
    html: Annotated[
        Path | None, typer.Option(help="write the HTML report here (default RUN/report.html)")
    ] = None,
    write_html: Annotated[
        bool, typer.Option("--write-html/--no-html", help="write the HTML report")
    ] = True,
    format: Annotated[str, format_option("terminal | json (a summary, as k6's)")] = "terminal",
) -> None:
    """Totals, throughput, latency percentiles, schedule lag, errors, per group and phase;
    and a self-contained HTML page with the plots. `--format json`: the run's summary as one
    JSON document on stdout (no page unless --html names one)."""
    from simd.report.html import write_html as write_page
    from simd.report.outputs import summary_json
    from simd.report.terminal import render_report

    if format not in ("terminal", "json"):
        raise UserError(f"--format {format!r}: use terminal or json")
    if format == "json":
        sys.stdout.write(summary_json(run))
        if html is not None:
            write_page(run, html)
        return
    render_report(run, out)
    if write_html or html is not None:
        print(f"report: {write_page(run, html)}")


@app.command("serve")
@guarded
def serve_cmd(
    runs: Annotated[list[Path], typer.Argument(help="run folders (ingested), one or more")],
    port: Annotated[int, typer.Option(help="port (0: a free one)")] = 0,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
) -> None:
    """The live dashboard's page for finished runs, from their results.duckdb: every run's
    charts and tables, and two side by side; until Ctrl-C."""
    import signal
    import threading

    from simd.ops.serve import DashboardServer

    try:
        server = DashboardServer(runs, port, host)
    except OSError as exc:
        raise UserError(f"--port {port}: cannot listen on {host} ({exc.strerror})") from None
    print(f"{server.url}/", flush=True)
    sys.stderr.write(f"simd: serving {len(runs)} run(s) on {server.url}/ (Ctrl-C ends)\n")
    done = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: done.set())
    try:
        done.wait()
    finally:
        server.close()


@app.command("check")
@guarded
def check_cmd(
    run: Annotated[Path, typer.Argument(help="run folder")],
    format: Annotated[str, format_option("table | json | junit")] = "table",
) -> None:
    """Check the scenario's SLOs; exit 1 naming each failed one and by how much. `--format
    junit`: JUnit XML (one testcase per SLO) for CI; `json`: one object per SLO."""
    from simd.report.outputs import junit_xml, slo_json
    from simd.report.terminal import check

    if format not in ("table", "json", "junit"):
        raise UserError(f"--format {format!r}: use table, json or junit")
    results = check(run)
    if format == "junit":
        sys.stdout.write(junit_xml(run, results))
    elif format == "json":
        print(json.dumps([slo_json(s) for s in results], indent=2))
    elif not results:
        print("no SLOs in the scenario")
    else:
        for s in results:
            print(s.describe())
    if any(not s.passed for s in results):
        raise typer.Exit(EXIT_SLO)


@app.command("compare")
@guarded
def compare_cmd(
    base: Annotated[Path, typer.Argument(help="the baseline run folder")],
    candidate: Annotated[Path, typer.Argument(help="the run to judge against it")],
    threshold: Annotated[
        str, typer.Option(help="change that counts, e.g. 10% or 0.1 (relative to the base)")
    ] = "10%",
    format: Annotated[str, format_option("table | json")] = "table",
) -> None:
    """Two runs side by side: throughput, percentiles, error rate, SLOs, the change in % and a
    verdict per metric; exit 1 when anything regressed beyond the threshold."""
    from simd.report.compare import compare

    if format not in ("table", "json"):
        raise UserError(f"--format {format!r}: use table or json")
    try:
        thr = float(threshold[:-1]) / 100 if threshold.endswith("%") else float(threshold)
    except ValueError:
        raise UserError(f"--threshold {threshold!r}: write it like 10% or 0.1") from None
    if not 0 <= thr < 100:
        raise UserError(f"--threshold {threshold!r}: must be between 0% and 10000%")
    cmp = compare(base, candidate, thr)
    for n in cmp.notes:
        sys.stderr.write(f"simd: note: {n}\n")
    if format == "json":
        print(
            json.dumps(
                {
                    "base": cmp.base,
                    "candidate": cmp.candidate,
                    "threshold": thr,
                    "regressed": len(cmp.regressions),
                    "metrics": [m.__dict__ for m in cmp.metrics],
                }
            )
        )
    else:
        t = Table(title=f"{cmp.base} -> {cmp.candidate} (threshold {thr:.0%})")
        for n in ("metric", "base", "candidate", "change", "verdict"):
            t.add_column(n, justify="left" if n in ("metric", "verdict") else "right")
        style = {"regressed": "bold red", "improved": "green"}
        for m in cmp.metrics:
            t.add_row(
                m.metric,
                figure(m.base, m.unit),
                figure(m.candidate, m.unit),
                "-" if m.change is None else f"{m.change:+.1%}",
                m.verdict,
                style=style.get(m.verdict),
            )
        out.print(t)
        print(f"{len(cmp.regressions)} regression(s) beyond {thr:.0%}")
    if cmp.regressions:
        raise typer.Exit(EXIT_SLO)


def figure(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "ns":
        from simd.report.tables import ms_unit

        return ms_unit(v)
    if unit == "bool":
        return "ok" if v else "FAILED"
    if unit == "ratio":
        return f"{v:.4%}"
    return f"{v:,.1f}"


@app.command("query")
@guarded
def query_cmd(
    run: Annotated[Path, typer.Argument(help="run folder")],
    sql: Annotated[str, typer.Argument(help="SQL over the run's tables and views")],
    format: Annotated[str, format_option("table | csv | json")] = "table",
) -> None:
    """Run SQL on RUN/results.duckdb."""
    from simd.results.ingest import query

    if format not in ("table", "csv", "json"):
        raise UserError(f"--format {format!r}: use table, csv or json")
    names, rows = query(run, sql)
    if format == "json":
        print(json.dumps([dict(zip(names, r, strict=True)) for r in rows], default=str))
    elif format == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")  # LF, as a Unix pipe expects
        w.writerow(names)
        w.writerows(rows)
    else:
        t = Table()
        for n in names:
            t.add_column(n)
        for r in rows:
            t.add_row(*["NULL" if v is None else str(v) for v in r])
        out.print(t)
