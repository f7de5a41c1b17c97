"""runs/<id>/run.json: what a run was (scenario, seed, t=0, clock, workers) and how it ended.

`RunManifest` is the file, typed; this module alone reads and writes it. Written atomically
(temp file + rename) at every state change. Secrets are redacted (simd.model.secrets):
passwords, tokens, and credentials in URLs never reach the file. Keys it does not know (a
newer or older simd's) are kept as they are.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from simd.model.scenario import Scenario
from simd.model.secrets import redact

MANIFEST = "run.json"
# the states a run ends in (run.json "state"); a merged sharded run with shards missing, all
# present ones ended, is "incomplete"
FINAL_STATES = frozenset({"completed", "stopped", "failed", "aborted"})


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")


class ShardInfo(_Part):
    """A shard's own run.json: which shard of how many, its devices and planned publishes."""

    index: int
    count: int
    devices: tuple[int, int]
    planned_publishes: int
    start_at_ns: int | None = None


class ShardSummary(_Part):
    """What a merged run keeps of each present shard's run.json."""

    state: str
    devices: tuple[int, int]
    planned_publishes: int
    workers: int
    host: str | None = None
    start_at_ns: int | None = None
    ready_wall_ns: int | None = None
    clock_sync: dict[str, Any] | None = None
    clock_at_t0: dict[str, Any] | None = None
    folder: str | None = None


class MissingShard(_Part):
    count: int
    devices: tuple[int, int]
    planned_publishes: int


class Shards(_Part):
    """A merged sharded run: its shards, present and missing, by index (as text)."""

    count: int
    present: dict[str, ShardSummary]
    missing: dict[str, MissingShard]


class Resume(_Part):
    wall_ns: int
    from_state: str


class RunManifest(_Part):
    """run.json. Assign fields (never mutate a default in place): only fields given or
    assigned are written, so the file holds exactly what was said of the run."""

    run_id: str
    simd_version: str | None = None
    scenario_path: str = ""
    scenario_hash: str | None = None
    scenario: dict[str, Any]
    seed: int | None = None
    target: str
    target_url: str = ""
    embedded_broker: str | None = None
    clock: str
    clock_text: str | None = None
    clock_scale: float = 1.0
    workers: int
    slices: list[tuple[int, int]] = []
    worker_slices: list[tuple[int, int, int]] | None = None  # a merged run: (worker, lo, hi)
    duration_ns: int
    plan: dict[str, Any]
    state: str
    started_wall_ns: int | None = None
    ready_wall_ns: int | None = None
    ended_wall_ns: int | None = None
    t0_epoch_ns: int | None = None
    stopped_at_ns: int | None = None
    host: str | None = None
    clock_sync: dict[str, Any] | None = None
    clock_at_t0: dict[str, Any] | None = None
    status_url: str | None = None
    aborted_by: str | None = None
    resumes: list[Resume] = []
    worker_results: dict[str, dict[str, Any]] | None = None
    shard: ShardInfo | None = None  # this run is one shard of a run
    shards: Shards | None = None  # this run is the merge of its shards

    @cached_property
    def scenario_model(self) -> Scenario:
        """The scenario, validated once per manifest read (it was validated before it was
        written: this is the model, not a check)."""
        return Scenario.model_validate(self.scenario)

    @property
    def planned_publishes(self) -> int:
        return int(self.plan["total_publishes"])

    @property
    def planned_devices(self) -> int:
        return int(self.plan["devices"])

    @property
    def clock_label(self) -> str:
        """The clock as the user gave it (`scaled:10`), for a resumed run."""
        return self.clock_text or self.clock

    def slices_by_worker(self) -> list[tuple[int, int, int]]:
        """(worker, first device, one past the last) of every worker of the run; a merged
        sharded run numbers its workers shard * 1000 + w (simd.plan.shard)."""
        if self.worker_slices is not None:
            return [(int(w), int(lo), int(hi)) for w, lo, hi in self.worker_slices]
        return [(w, int(lo), int(hi)) for w, (lo, hi) in enumerate(self.slices)]

    def to_json(self) -> dict[str, Any]:
        """The file's content (secrets not yet redacted)."""
        return self.model_dump(mode="json", exclude_unset=True)


def scenario_hash(scenario_json: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(scenario_json, sort_keys=True).encode()).hexdigest()[:16]


RESERVE = ".reserve"  # space kept back so the last run.json fits when the disk fills
RESERVE_BYTES = 256 * 1024


def reserve_space(run_dir: Path) -> None:
    """Set aside RESERVE_BYTES in the run folder (written, not sparse) for write_manifest."""
    with open(run_dir / RESERVE, "wb") as f:
        f.write(b"\0" * RESERVE_BYTES)


def write_manifest(run_dir: Path, manifest: RunManifest) -> None:
    """Replace run.json atomically. On a full disk, give up the reserve and try once more;
    if it still does not fit, the previous run.json stays (OSError)."""
    path = run_dir / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    text = json.dumps(redact(manifest.to_json()), indent=2, sort_keys=True) + "\n"
    try:
        tmp.write_text(text)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        reserve = run_dir / RESERVE
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not reserve.exists():
            raise
        reserve.unlink()
        tmp.write_text(text)
    os.replace(tmp, path)


def read_manifest(run_dir: Path) -> RunManifest:
    """A run folder's run.json (UserError when it cannot be read as one)."""
    from pydantic import ValidationError

    from simd.errors import UserError

    path = run_dir / MANIFEST
    try:
        return RunManifest.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(the file)"
        raise UserError(f"{path}: not a run.json simd can read ({where}: {first['msg']})") from None
