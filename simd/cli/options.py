"""The options several commands share, declared once so their flags (and short flags) agree.

Short flags: `-w` workers, `-T` target, `-d` duration, `-o` where output goes (the runs
folder; a recording or manifest file), `-F` format. The one-liners' own (emqtt-bench's) are in
simd.cli.quick.
"""

from __future__ import annotations

from typing import Any

import typer

WORKERS = typer.Option("--workers", "-w", min=0, help="worker processes (0: one per core)")
TARGET = typer.Option("--target", "-T", help="override the scenario's target URL")
DURATION = typer.Option("--duration", "-d", help="override the duration, e.g. 30s")
RUNS_DIR = typer.Option("--runs-dir", "-o", help="where run folders go")
RUN_ID = typer.Option("--run-id", help="the run folder's name")
SEED = typer.Option("--seed", help="override the seed")
CLOCK = typer.Option("--clock", help="real | scaled:N | virtual")
PROGRESS = typer.Option("--progress/--no-progress", help="live progress on stderr")
PROGRESS_EVERY = typer.Option(
    "--progress-interval", help="without a terminal: a progress line this often (e.g. 30s)"
)
REPORT = typer.Option(
    "--report/--no-report", help="print the report at the end and write RUN/report.html"
)
SUMMARY = typer.Option(
    "--summary-export", help="write the run's JSON summary here (as `simd report --format json`)"
)
JUNIT = typer.Option("--junit", help="write the SLOs as JUnit XML here (one testcase per SLO)")
LINGER = typer.Option(
    "--linger", help="keep the dashboard and /status up this long after the report (Ctrl-C ends)"
)
SET = typer.Option(
    "--set", help="KEY=VALUE: change any scenario key, e.g. fleet.sensors.rate=5 (repeat)"
)


def format_option(choices: str) -> Any:
    """`--format`/`-F` with its choices in the help, e.g. "table | json"."""
    return typer.Option("--format", "-F", help=choices)


def out_option(help: str) -> Any:
    """`--out`/`-o`: the file a command writes."""
    return typer.Option("--out", "-o", help=help)
