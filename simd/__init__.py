"""simd: simulate fleets of IoT devices against real message systems and keep every event.

The public API, for scripts and notebooks (the CLI is a thin layer over the same calls):

    scenario = simd.load_scenario("scenarios/load.toml")
    simd.plan_counts(scenario).total_publishes
    outcome = simd.run(scenario, scenario_path=Path("scenarios/load.toml"), runs_dir=Path("runs"))
    simd.ingest(outcome.run_dir)
    simd.query(outcome.run_dir, "SELECT * FROM latency_percentiles")
"""

from simd._version import __version__
from simd.errors import LogFormatError, RunError, ScenarioError, SimdError, UserError
from simd.eventlog import read_segment
from simd.report import check
from simd.results import ingest, query
from simd.scenario import Scenario, load_scenario, parse_scenario
from simd.schedule import Plan, plan_counts
from simd.supervisor import RunOutcome, run

__all__ = [
    "LogFormatError",
    "Plan",
    "RunError",
    "RunOutcome",
    "Scenario",
    "ScenarioError",
    "SimdError",
    "UserError",
    "__version__",
    "check",
    "ingest",
    "load_scenario",
    "parse_scenario",
    "plan_counts",
    "query",
    "read_segment",
    "run",
]
