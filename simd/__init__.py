"""simd: simulate fleets of IoT devices against real message systems and keep every event.

The public API, for scripts and notebooks (the CLI is a thin layer over the same calls):

    scenario = simd.load_scenario("scenarios/load.toml")
    simd.plan_counts(scenario).total_publishes
    outcome = simd.run(scenario, scenario_path=Path("scenarios/load.toml"), runs_dir=Path("runs"))
    simd.ingest(outcome.run_dir)
    simd.query(outcome.run_dir, "SELECT * FROM latency_percentiles")
    simd.write_html(outcome.run_dir)                   # RUN/report.html
    simd.compare(base_dir, outcome.run_dir).regressions
    rec = simd.read_recording("recordings/sample.simrec")   # or a .jsonl capture
    simd.record(simd.RecordOptions("mqtt://host:1883", ["devices/#"], Path("x.simrec"), 60), print)
"""

from typing import TYPE_CHECKING, Any

# Public names -> the module that defines them. Imported on first use (PEP 562), so a worker
# process, which imports simd.runtime.worker, does not load DuckDB, pyarrow and rich (~60 MiB
# each time), nor importlib.metadata for the version (~0.1 s of every worker's start).
_EXPORTS = {
    "__version__": "simd._version",
    "LogFormatError": "simd.errors",
    "RunError": "simd.errors",
    "ScenarioError": "simd.errors",
    "SimdError": "simd.errors",
    "UserError": "simd.errors",
    "read_segment": "simd.log.eventlog",
    "check": "simd.report.terminal",
    "compare": "simd.report.compare",
    "write_html": "simd.report.html",
    "follow": "simd.results.ingest",
    "ingest": "simd.results.ingest",
    "query": "simd.results.ingest",
    "Scenario": "simd.model.scenario",
    "load_scenario": "simd.plan.inputs",
    "parse_scenario": "simd.model.scenario",
    "Plan": "simd.plan.schedule",
    "plan_counts": "simd.plan.schedule",
    "import_jsonl": "simd.log.recording",
    "RecordOptions": "simd.transports.mqtt.recorder",
    "record": "simd.transports.mqtt.recorder",
    "read_recording": "simd.log.recording",
    "write_recording": "simd.log.recording",
    "RunOutcome": "simd.runtime.supervisor",
    "run": "simd.runtime.supervisor",
    "resume": "simd.runtime.supervisor",
}

if TYPE_CHECKING:
    from simd._version import __version__
    from simd.errors import LogFormatError, RunError, ScenarioError, SimdError, UserError
    from simd.log.eventlog import read_segment
    from simd.log.recording import import_jsonl, read_recording, write_recording
    from simd.model.scenario import Scenario, parse_scenario
    from simd.plan.inputs import load_scenario
    from simd.plan.schedule import Plan, plan_counts
    from simd.report.compare import compare
    from simd.report.html import write_html
    from simd.report.terminal import check
    from simd.results.ingest import follow, ingest, query
    from simd.runtime.supervisor import RunOutcome, resume, run
    from simd.transports.mqtt.recorder import RecordOptions, record


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'simd' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "LogFormatError",
    "Plan",
    "RecordOptions",
    "RunError",
    "RunOutcome",
    "Scenario",
    "ScenarioError",
    "SimdError",
    "UserError",
    "__version__",
    "check",
    "compare",
    "follow",
    "import_jsonl",
    "ingest",
    "load_scenario",
    "parse_scenario",
    "plan_counts",
    "query",
    "read_recording",
    "read_segment",
    "record",
    "resume",
    "run",
    "write_html",
    "write_recording",
]
