"""A scenario file made plan input: read and validated (simd.model.scenario), then its replay
groups resolved against their recordings (simd.plan.replay), once. After this, planning reads
no file but the recordings' cached plans."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simd.model.scenario import Scenario, read_scenario
from simd.plan.replay import expand_replays


def load_scenario(
    path: str | Path, overrides: dict[str, Any] | None = None, sets: Sequence[str] = ()
) -> Scenario:
    """Read, validate and resolve a scenario file (`-`: standard input; ScenarioError: one
    line per problem, each naming the file and the key). `overrides` replace top-level keys
    (from CLI flags), `sets` are `--set KEY=VALUE` edits (simd.model.edits)."""
    p = Path(path)
    return expand_replays(read_scenario(p, overrides, sets), p.parent, str(p))


def resolved(scenario: Scenario, source: str) -> Scenario:
    """A scenario read back from a run.json, with every replay group resolved: run.json files
    of simd 0.1 hold replay groups without their messages and rate (their recordings' paths
    are absolute there, so they resolve again as they were)."""
    if all(g.replay is None or g.replay.messages is not None for g in scenario.fleet):
        return scenario
    return expand_replays(scenario, Path(source).parent, source)
