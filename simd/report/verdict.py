"""How a run ended, judged from its results: the exit status and the one line that says why.

In order (the first that holds decides): the user aborted it (no results were read); a real
target none of whose devices ever connected, or a run in which not one publish completed
(EXIT_RUN, naming the most frequent error: a run that did not do what it was asked is never
green, whatever its SLOs); a run stopped by a signal or failed (EXIT_RUN); an SLO failed
(EXIT_SLO, one line per SLO); else passed (EXIT_OK). README, Exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from simd.errors import EXIT_OK, EXIT_RUN, EXIT_SLO
from simd.model.manifest import read_manifest
from simd.model.targets import does_real_io
from simd.report.terminal import check
from simd.results.ingest import query


@dataclass(frozen=True)
class Verdict:
    exit_code: int
    reason: str | None = None  # one line, for any exit but EXIT_OK and EXIT_SLO
    slo_failures: list[str] = field(default_factory=list)  # one line per failed SLO


def judge(run_dir: Path, state: str, problems: str | None, results: bool = True) -> Verdict:
    """The verdict on a run that ended in `state` (run.json's; `problems` its reasons).
    `results`: whether results.duckdb holds the run (False: it could not be ingested)."""
    if results:
        reason = never_connected(run_dir) or nothing_completed(run_dir)
        if reason is not None:
            return Verdict(EXIT_RUN, f"{reason} (logs in {run_dir})")
    if state == "stopped":
        return Verdict(
            EXIT_RUN, f"run stopped by a signal before its end (logs and report in {run_dir})"
        )
    if state in ("failed", "aborted"):
        return Verdict(EXIT_RUN, f"run {state}: {problems or 'interrupted'} (logs in {run_dir})")
    failed = [s.describe() for s in check(run_dir) if not s.passed]
    return Verdict(EXIT_SLO, slo_failures=failed) if failed else Verdict(EXIT_OK)


def never_connected(run_dir: Path) -> str | None:
    """Why a real target none of whose devices ever connected could not be run against."""
    manifest = read_manifest(run_dir)
    if not does_real_io(manifest.target):
        return None
    _, rows = query(
        run_dir,
        "SELECT count(*) FILTER (WHERE kind = kind_code('connect') AND status = status_code('ok')),"
        " count(*) FILTER (WHERE kind = kind_code('connect')) FROM status_totals",
    )
    ok, attempts = rows[0]
    if not attempts or ok:
        return None
    _, err = query(run_dir, "SELECT error FROM errors_by_kind WHERE kind = 'connect' LIMIT 1")
    why = err[0][0] if err else "no connection"
    return f"no device could connect to {manifest.target_url}: {why}"


def nothing_completed(run_dir: Path) -> str | None:
    """Publishes were logged and not one completed (every one refused, timed out, errored):
    the most frequent reason."""
    _, rows = query(run_dir, "SELECT logged, completed, publishes_word() FROM run_summary")
    logged, completed, word = rows[0]
    if not logged or completed:
        return None
    _, top = query(
        run_dir,
        "SELECT status, error, count FROM errors_by_kind WHERE kind = 'publish' "
        "ORDER BY count DESC LIMIT 1",
    )
    why = f"{top[0][2]:,} {top[0][0]}" + (f": {top[0][1]}" if top[0][1] else "") if top else "?"
    noun = "request" if word == "requests" else "publish"
    return f"no {noun} completed ({logged:,} logged; most: {why})"
