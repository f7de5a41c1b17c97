"""What `simd ingest` reads: one run folder, or the shard folders of one sharded run
(simd.plan.shard).

Shards merge only when they are the same run: one run id, one scenario (its hash), one shard
count, each index once. The merged run gets a run.json of its own beside the shard folders
(`RUNS/ID/run.json`, "shards" in it) so that report, check, query and compare treat it as any
run. A shard that is not there is a gap in coverage, named with its devices and planned
publishes, never silently absent.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from simd.errors import UserError
from simd.model.manifest import (
    FINAL_STATES,
    MANIFEST,
    MissingShard,
    RunManifest,
    Shards,
    ShardSummary,
    read_manifest,
    write_manifest,
)
from simd.model.scenario import Scenario
from simd.plan.inputs import resolved
from simd.plan.schedule import plan_counts
from simd.plan.shard import FOLDER, Shard


@dataclass(frozen=True)
class Source:
    """One folder of event logs and how its rows join the run."""

    run_dir: Path
    key: str  # prefix of its segments' names in the `ingested` table ("" or "shard-2/")
    worker_base: int  # added to its logs' worker numbers
    manifest: RunManifest


@dataclass(frozen=True)
class ShardGap:
    """A shard of the run that is not there: whose devices and publishes are not covered."""

    index: int
    count: int
    devices: tuple[int, int]
    planned_publishes: int

    def describe(self) -> str:
        lo, hi = self.devices
        return (
            f"shard {self.index}/{self.count} missing: devices {lo}..{hi - 1} "
            f"({hi - lo:,} devices, {self.planned_publishes:,} planned publishes) not covered"
        )


@dataclass
class RunSources:
    """Where results go (`out`), the run's manifest there, its log folders and its gaps."""

    out: Path
    manifest: RunManifest
    sources: list[Source]
    gaps: list[ShardGap]

    @property
    def sharded(self) -> bool:
        return self.manifest.shards is not None


def _expand(paths: list[str | Path]) -> list[Path]:
    """Paths as given; a pattern that names no file is expanded as a glob (quoted in a shell,
    or from a Job's args that no shell reads)."""
    found: list[Path] = []
    for p in paths:
        text = str(p)
        if Path(text).exists() or not glob.has_magic(text):
            found.append(Path(text))
            continue
        matches = sorted(glob.glob(text))
        if not matches:
            raise UserError(f"{text}: matches no folder")
        found.extend(Path(m) for m in matches)
    return found


def _shard_folders(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if FOLDER.match(p.name) and (p / MANIFEST).is_file()),
        key=lambda p: int(FOLDER.match(p.name).group(1)),  # type: ignore[union-attr]
    )


def resolve(paths: list[str | Path], out: Path | None = None) -> RunSources:
    """The run named by `paths`: a run folder; shard folders (globs welcome); or a sharded
    run's folder (its shard-* folders, and those merged into it before). UserError for
    anything that is not one run."""
    given = _expand(paths)
    if not given:
        raise UserError("give a run folder (or the shard folders of one run)")
    shards: list[Path] = []
    merged: Path | None = None  # a folder that holds a merged run.json
    for p in given:
        if not p.is_dir():
            raise UserError(f"{p}: no such folder")
        manifest = read_manifest(p) if (p / MANIFEST).is_file() else None
        if manifest is not None and manifest.shard is not None:
            shards.append(p)
            continue
        inside = _shard_folders(p)
        if manifest is not None and manifest.shards is not None:
            merged = p
        elif manifest is not None and not inside:
            if len(given) > 1:
                raise UserError(f"{p}: a whole run, not a shard; it merges with nothing")
            return RunSources(p, manifest, [Source(p, "", 0, manifest)], [])
        elif not inside:
            raise UserError(f"{p}: not a run folder (no run.json, no shard-* folders)")
        shards.extend(inside)
    if out is None:
        parents = {f.resolve().parent for f in shards}
        if merged is not None:
            out = merged
        elif len(parents) > 1:
            raise UserError("the shard folders lie in different folders: say where with --out")
        else:
            out = shards[0].parent
    return _merge(shards + _merged_before(out), out)


def _merged_before(out: Path) -> list[Path]:
    """The shard folders an earlier ingest merged into `out` (they stay in the results)."""
    if not (out / MANIFEST).is_file():
        return []
    shards = read_manifest(out).shards
    if shards is None:
        raise UserError(f"--out {out}: holds a run that is not sharded; choose another folder")
    folders = []
    for i, s in sorted(shards.present.items(), key=lambda kv: int(kv[0])):
        folder = Path(s.folder or out / Shard(int(i), shards.count).folder)
        if not (folder / MANIFEST).is_file():
            raise UserError(
                f"{out}: shard {i} was merged from {folder}, which is gone; "
                "merge into a new --out folder"
            )
        folders.append(folder)
    return folders


def _merge(folders: list[Path], out: Path) -> RunSources:
    by_index: dict[int, tuple[Path, RunManifest]] = {}
    first: tuple[Path, RunManifest] | None = None
    for folder in folders:
        m = read_manifest(folder)
        if m.shard is None:
            raise UserError(f"{folder}: a whole run, not a shard; it merges with nothing")
        if first is None:
            first = (folder, m)
        f_dir, f = first
        assert f.shard is not None
        for key, what in (("run_id", "runs"), ("scenario_hash", "scenarios"), ("clock", "clocks")):
            if getattr(m, key) != getattr(f, key):
                raise UserError(
                    f"cannot merge {f_dir} and {folder}: different {what} "
                    f"({key.replace('_', ' ')} {getattr(f, key)} vs {getattr(m, key)})"
                )
        if m.shard.count != f.shard.count:
            raise UserError(
                f"cannot merge {f_dir} and {folder}: split in {f.shard.count} vs "
                f"{m.shard.count} shards"
            )
        i = m.shard.index
        if i in by_index and by_index[i][0].resolve() != folder.resolve():
            raise UserError(f"shard {i} given twice: {by_index[i][0]} and {folder}")
        by_index[i] = (folder, m)
    if first is None:
        raise UserError(f"{out}: no shard folders to merge")
    out.mkdir(parents=True, exist_ok=True)
    count = first[1].shard.count  # type: ignore[union-attr]
    sources = [
        Source(folder, f"{Shard(i, count).folder}/", Shard(i, count).global_worker(0), m)
        for i, (folder, m) in sorted(by_index.items())
    ]
    manifest = merged_manifest([s.manifest for s in sources])
    assert manifest.shards is not None
    for i, (folder, _) in by_index.items():
        manifest.shards.present[str(i)].folder = str(folder.resolve())
    gaps = [
        ShardGap(int(i), g.count, g.devices, g.planned_publishes)
        for i, g in sorted(manifest.shards.missing.items(), key=lambda kv: int(kv[0]))
    ]
    return RunSources(out, manifest, sources, gaps)


def merged_manifest(shards: list[RunManifest]) -> RunManifest:
    """The run.json of a sharded run, from its shards' (present ones, in index order)."""
    base = shards[0]
    assert base.shard is not None
    count = base.shard.count
    scenario = resolved(base.scenario_model, "run.json")
    n = scenario.device_count
    worker_slices = []
    worker_results = {}
    present: dict[int, RunManifest] = {}
    for m in shards:
        assert m.shard is not None
        shard = Shard(m.shard.index, count)
        present[m.shard.index] = m
        for w, (lo, hi) in enumerate(m.slices):
            worker_slices.append((shard.global_worker(w), lo, hi))
        for w, r in (m.worker_results or {}).items():
            worker_results[str(shard.global_worker(int(w)))] = r
    missing = {}
    for i in range(count):
        if i not in present:
            lo, hi = Shard(i, count).devices(n)
            planned = _slice_plan(base.scenario_hash or "", scenario, lo, hi)
            missing[str(i)] = MissingShard(count=count, devices=(lo, hi), planned_publishes=planned)
    states = {m.state for m in shards}
    if not states <= FINAL_STATES:
        state = "running"
    elif missing:
        state = "incomplete"
    else:
        state = next((s for s in ("failed", "aborted", "stopped") if s in states), "completed")
    stops = [m.stopped_at_ns for m in shards if m.stopped_at_ns is not None]
    keep = ("run_id", "simd_version", "scenario_path", "scenario_hash", "scenario", "seed")
    keep += ("target", "target_url", "embedded_broker", "clock", "clock_text", "clock_scale")
    keep += ("duration_ns", "plan", "t0_epoch_ns")
    return RunManifest(
        **{k: getattr(base, k) for k in keep},
        workers=len(worker_slices),
        worker_slices=worker_slices,
        state=state,
        stopped_at_ns=max(stops) if stops else None,
        worker_results=worker_results,
        shards=Shards(
            count=count,
            present={str(i): shard_summary(m) for i, m in sorted(present.items())},
            missing=missing,
        ),
    )


_SLICE_PLANS: dict[tuple[str, int, int], int] = {}


def _slice_plan(scenario_hash: str, scenario: Scenario, lo: int, hi: int) -> int:
    """A missing shard's planned publishes, computed once per process (`ingest --follow`
    merges every few seconds; a big slice's exact plan takes seconds)."""
    key = (scenario_hash, lo, hi)
    if key not in _SLICE_PLANS:
        _SLICE_PLANS[key] = plan_counts(scenario, devices=(lo, hi)).total_publishes
    return _SLICE_PLANS[key]


def shard_summary(m: RunManifest) -> ShardSummary:
    """What the merged run keeps of a shard's run.json: state, slice, host and clock (a run
    that was not sharded: the whole fleet, as shard 0 of 1)."""
    if m.shard is not None:
        devices, planned, start = m.shard.devices, m.shard.planned_publishes, m.shard.start_at_ns
    else:
        devices, planned, start = (0, m.planned_devices), m.planned_publishes, m.t0_epoch_ns
    return ShardSummary(
        state=m.state,
        devices=devices,
        planned_publishes=planned,
        workers=m.workers,
        host=m.host,
        start_at_ns=start,
        ready_wall_ns=m.ready_wall_ns,
        clock_sync=m.clock_sync,
        clock_at_t0=m.clock_at_t0,
    )


def save_merged(run: RunSources) -> None:
    """Write the merged run.json (a plain run's own run.json is the supervisor's to write)."""
    if run.sharded:
        write_manifest(run.out, run.manifest)
