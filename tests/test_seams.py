"""The worker, the supervisor and the results, each driven in-process through its own seam
(no `python -m simd`): a slice run by `run_worker`, a run by `simd.run`, results by
`simd.ingest` and `simd.query`."""

from __future__ import annotations

import time
from pathlib import Path

import simd
from simd.log.eventlog import read_segment
from simd.log.events import KINDS, STATUSES
from simd.model.scenario import parse_scenario
from simd.plan.schedule import plan_counts
from simd.runtime.messages import WorkerSpec
from simd.runtime.worker import run_worker
from tests.conftest import slice_spec

FLEET = {
    "name": "seams",
    "seed": 11,
    "duration": "20s",
    "target": "null:",
    "fleet": [
        {"name": "a", "count": 30, "rate": 2.0},
        {"name": "b", "count": 10, "interval": "1500ms", "arrival": "poisson"},
    ],
}


def _spec(run_dir: Path, lo: int, hi: int, worker: int = 0) -> WorkerSpec:
    return slice_spec(run_dir, FLEET, lo, hi, worker, workers=2)


def _rows(run_dir: Path, worker: int) -> list[tuple[int, int, str, str]]:
    out = []
    for seg in sorted((run_dir / "events").glob(f"w{worker:03d}-*.simlog")):
        for batch in read_segment(seg)[1]:
            cols = batch.cols
            out += [
                (d, s, KINDS[k], STATUSES[st])
                for d, s, k, st in zip(
                    cols["device"].tolist(), cols["seq"].tolist(), cols["kind"].tolist(),
                    cols["status"].tolist(), strict=True,
                )
            ]  # fmt: skip
    return out


def test_a_worker_runs_its_slice_in_process_and_a_restart_owes_nothing(tmp_path: Path) -> None:
    """run_worker on devices [25, 40) (both groups) logs exactly the slice's planned
    publishes, once each; run again on the same log (a restart after the end) it adds none."""
    scenario = parse_scenario(FLEET)
    planned = plan_counts(scenario, devices=(25, 40)).total_publishes
    done = run_worker(_spec(tmp_path, 25, 40, worker=1), time.time_ns())
    assert done.sent == done.completed == planned and done.errors == 0
    rows = _rows(tmp_path, 1)
    pubs = [(d, s) for d, s, k, _ in rows if k == "publish"]
    assert len(pubs) == len(set(pubs)) == planned
    assert {d for d, _ in pubs} <= set(range(25, 40))
    assert sorted({d for d, _, k, _ in rows if k == "connect"}) == list(range(25, 40))

    again = run_worker(_spec(tmp_path, 25, 40, worker=1), time.time_ns())
    assert again.sent == planned  # counted from the log it found, not sent again
    after = [(d, s) for d, s, k, _ in _rows(tmp_path, 1) if k == "publish"]
    assert sorted(after) == sorted(pubs)


def test_a_run_and_its_results_in_process(tmp_path: Path) -> None:
    """simd.run (supervisor and worker processes) then simd.ingest twice (idempotent) and
    simd.query: the results hold the plan's count once, per group as planned."""
    scenario = parse_scenario(FLEET)
    path = tmp_path / "seams.toml"
    path.write_text("# written by the test; the scenario is passed in\n")
    outcome = simd.run(
        scenario, scenario_path=path, runs_dir=tmp_path / "runs", clock="virtual",
        progress=False, status_port=-1, workers=2,
    )  # fmt: skip
    planned = plan_counts(scenario)
    first = simd.ingest(outcome.run_dir)
    second = simd.ingest(outcome.run_dir)
    assert first.rows > 0 and second.rows == 0
    _, got = simd.query(
        outcome.run_dir,
        "SELECT group_name, count(*), count(DISTINCT (device, seq)) FROM events"
        " WHERE kind = 'publish' AND status = 'sent' GROUP BY ALL ORDER BY 1",
    )
    assert got == [(g.name, g.total, g.total) for g in planned.groups]
    assert all(slo.passed for slo in simd.check(outcome.run_dir))
