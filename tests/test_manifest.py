"""run.json as a typed RunManifest: files written by simd 0.1.0 before the model existed (a
plain run with its logs, a shard, a merged sharded run) read, write back unchanged, and ingest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from simd.errors import UserError
from simd.model.manifest import MANIFEST, RunManifest, read_manifest, write_manifest
from tests.conftest import simd, sql

FIXTURES = Path(__file__).parent / "fixtures" / "run-json"


@pytest.mark.parametrize("name", ["plain-run/run.json", "shard.json", "merged.json"])
def test_a_run_json_of_an_older_simd_reads_and_writes_back_unchanged(
    tmp_path: Path, name: str
) -> None:
    original = json.loads((FIXTURES / name).read_text())
    (tmp_path / MANIFEST).write_text(json.dumps(original))
    manifest = read_manifest(tmp_path)
    assert manifest.run_id == original["run_id"] and manifest.state == original["state"]
    assert manifest.scenario_model.name == "fixture"
    assert len(manifest.slices_by_worker()) == manifest.workers
    write_manifest(tmp_path, manifest)
    assert json.loads((tmp_path / MANIFEST).read_text()) == original


def test_typed_parts_of_the_fixtures() -> None:
    shard = RunManifest.model_validate_json((FIXTURES / "shard.json").read_bytes())
    assert shard.shard is not None and (shard.shard.index, shard.shard.count) == (1, 3)
    merged = RunManifest.model_validate_json((FIXTURES / "merged.json").read_bytes())
    assert merged.shards is not None and merged.state == "incomplete"
    assert sorted(merged.shards.present) == ["0", "1"] and list(merged.shards.missing) == ["2"]
    assert [w for w, _, _ in merged.slices_by_worker()][:1] == [0]


def test_an_older_run_ingests_and_reports(tmp_path: Path) -> None:
    """The plain run's folder as simd 0.1.0 left it (run.json and logs, no results yet)."""
    run_dir = tmp_path / "plain"
    shutil.copytree(FIXTURES / "plain-run", run_dir)
    simd("ingest", str(run_dir), check=0)
    r = simd("report", str(run_dir), check=0)
    assert "planned 200  logged 200  completed 200" in r.stdout
    assert sql(run_dir, "SELECT count(*) FROM events WHERE kind = 'publish'") == [(200,)]
    assert "hunter2" not in (run_dir / MANIFEST).read_text()


def test_a_damaged_run_json_is_one_line(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_text('{"run_id": "x", "state": 3}')
    with pytest.raises(UserError, match=r"run.json: not a run.json simd can read"):
        read_manifest(tmp_path)
    r = simd("report", str(tmp_path), check=2)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
