"""The public surface: what `simd` exports, and secrets kept out of manifests."""

from __future__ import annotations

import json
from pathlib import Path

import simd
from simd.model.manifest import RunManifest, read_manifest, write_manifest
from simd.model.secrets import redact


def test_exports_are_importable_and_listed() -> None:
    """Every name in simd.__all__ resolves, and nothing public is exported by accident."""
    for name in simd.__all__:
        assert getattr(simd, name) is not None, name
    public = {n for n in vars(simd) if not n.startswith("_")}
    helpers = {"TYPE_CHECKING", "Any"}
    submodules = {n for n in public if type(getattr(simd, n)).__name__ == "module"}
    assert public - submodules - helpers <= set(simd.__all__)


PUBLIC_API = [
    "LogFormatError", "Plan", "RecordOptions", "RunError", "RunOutcome", "Scenario",
    "ScenarioError", "SimdError", "UserError", "__version__", "check", "compare", "follow",
    "import_jsonl", "ingest", "load_scenario", "parse_scenario", "plan_counts", "query",
    "read_recording", "read_segment", "record", "resume", "run", "write_html", "write_recording",
]  # fmt: skip


def test_the_public_api_is_pinned() -> None:
    """simd.__all__ is exactly this list, each name a function or class (never a subpackage,
    even after the packages named like them are imported: simd.runtime, not simd.run)."""
    import simd.cli  # imports every package: a subpackage must not shadow a public name
    import simd.runtime.supervisor

    assert sorted(simd.__all__) == sorted(PUBLIC_API)
    for name in PUBLIC_API:
        assert type(getattr(simd, name)).__name__ != "module", name


def test_a_worker_does_not_load_the_results_stack() -> None:
    """Importing the worker leaves DuckDB, pyarrow and rich unloaded (memory per worker)."""
    import subprocess
    import sys

    code = (
        "import sys, simd.runtime.worker; "
        "print(sorted(m for m in ('duckdb', 'pyarrow', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_redaction_of_secret_keys(tmp_path: Path) -> None:
    """Passwords, tokens and keys never reach run.json; other values do."""
    data = RunManifest(
        run_id="r",
        target="sim:",
        clock="real",
        workers=1,
        duration_ns=1,
        plan={},
        state="starting",
        scenario={
            "fleet": [
                {
                    "password": "hunter2",
                    "name": "g",
                    "credentials": {"token_file": "/x", "user": "u"},
                }
            ]
        },
        api_key="abc",  # a key the model does not know is kept, and redacted like any other
        seed=3,
    )
    write_manifest(tmp_path, data)
    text = (tmp_path / "run.json").read_text()
    assert "hunter2" not in text and "abc" not in text and "/x" not in text
    back = read_manifest(tmp_path)
    assert back.seed == 3 and back.scenario["fleet"][0]["name"] == "g"
    assert redact({"password": None}) == {"password": None}
    assert json.loads(text)["api_key"] == "***"


def test_api_plan_run_query(tmp_path: Path) -> None:
    """The library calls the CLI uses work from Python: plan, run (virtual), ingest, query."""
    path = tmp_path / "s.toml"
    path.write_text(
        'name = "api"\nduration = "30s"\n[[fleet]]\nname = "g"\ncount = 7\nrate = 1.0\n'
        '[run]\nclock = "virtual"\nworkers = 1\n'
    )
    scenario = simd.load_scenario(path)
    planned = simd.plan_counts(scenario).total_publishes
    assert planned == 210
    outcome = simd.run(scenario, scenario_path=path, runs_dir=tmp_path / "runs", progress=False)
    assert outcome.state == "completed"
    simd.ingest(outcome.run_dir)
    _, rows = simd.query(outcome.run_dir, "SELECT count(*) FROM events WHERE kind = 'publish'")
    assert rows == [(planned,)]
    assert all(s.passed for s in simd.check(outcome.run_dir))
