"""`simd capacity`: the staircase search, against the sim in virtual time and a real mosquitto."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import need_mosquitto, simd, sql, write_scenario

SIM = """
name = "sim-capacity"
seed = 3
target = "sim:"
duration = "1m"

[[fleet]]
name = "meters"
count = 400
rate = 10.0
arrival = "poisson"

[sim]
latency_p50 = "4ms"
latency_p99 = "30ms"
capacity = 20000

[slo]
latency_p99 = "100ms"
error_rate = 0.001
"""

MQTT = """
name = "mqtt-capacity"
seed = 5
target = "embedded"
duration = "1m"

[[fleet]]
name = "meters"
count = 200
rate = 10.0
qos = 1

[slo]
latency_p99 = "250ms"
schedule_lag_p99 = "250ms"
error_rate = 0.001
"""
# (the limits are loose on purpose: 1,000 msg/s holds them on a machine whose cores are both
# busy with other work, where 20 ms did not; the knee still comes, where the generator or the
# broker saturates and lag grows without bound)


def _search(scenario: Path, runs: Path, run_id: str, *flags: str, check: int = 0) -> dict:
    r = simd("capacity", str(scenario), "--runs-dir", str(runs), "--run-id", run_id,
             "--no-progress", *flags, check=check)  # fmt: skip
    assert "Traceback" not in r.stderr
    result = json.loads((runs / run_id / "capacity.json").read_text())
    result["stdout"] = r.stdout
    return result


def test_sim_capacity_found_within_ten_percent_reproducibly(tmp_path: Path, runs: Path) -> None:
    """Against the sim with a capacity of 20k msg/s, in virtual time, the search reports a
    sustainable rate within 10 % below 20k, the knee above it, bound by the target; the same
    search again reports the same figures; every step is a phase of the run's own log."""
    scenario = write_scenario(tmp_path, SIM)
    flags = ("--clock", "virtual", "--step", "5s", "--steps", "9", "--refine", "3")
    a = _search(scenario, runs, "a", *flags)
    assert 18_000 <= a["sustainable_per_s"] <= 20_000 < a["knee_per_s"] <= 22_000
    assert a["bound"] == "target"
    assert "bound by the target" in a["stdout"]
    b = _search(scenario, runs, "b", *flags)
    assert (b["sustainable_per_s"], b["knee_per_s"]) == (a["sustainable_per_s"], a["knee_per_s"])
    coarse = runs / "a" / "coarse"
    phases = sql(coarse, "SELECT phase FROM phases ORDER BY phase_index")
    assert [p for (p,) in phases] == [f"c{i:02d}" for i in range(1, 10)]
    steps = sql(coarse, "SELECT phase, offered_per_s, passed FROM capacity_steps")
    for i, (_, offered, _) in enumerate(steps):  # x1.25 a step (poisson: planned counts vary)
        assert offered == pytest.approx(4000 * 1.25**i, rel=0.03)
    assert steps[0][2] and not steps[-1][2]
    assert (runs / "a" / "capacity.html").read_text().count("knee") >= 1


def test_mosquitto_capacity_names_its_limit_and_side(tmp_path: Path, runs: Path) -> None:
    """Against a local mosquitto (real clock), the search stops loading after the knee,
    reports the highest rate that held and says which side bound it."""
    need_mosquitto()
    scenario = write_scenario(tmp_path, MQTT)
    # from 1,000/s: a first step low enough to hold on a busy machine too (the knee is above)
    flags = ("--start", "1000", "--factor", "2", "--steps", "10", "--step", "2s", "--refine", "0",
             "--workers", "1")  # fmt: skip
    r = _search(scenario, runs, "m", *flags)
    assert r["sustainable_per_s"] is not None and r["knee_per_s"] > r["sustainable_per_s"]
    assert r["bound"] in ("generator", "target")
    assert f"bound by the {r['bound']}" in r["stdout"]
    coarse = runs / "m" / "coarse"
    assert sql(coarse, "SELECT count(*) FROM capacity_steps WHERE NOT passed AND reached")[0][0]
    manifest = json.loads((coarse / "run.json").read_text())
    assert manifest["embedded_broker"] == "mosquitto"


NO_SLO = SIM.replace('latency_p99 = "100ms"\nerror_rate = 0.001', "")
CLOSED = SIM + '[[fleet]]\nname = "users"\ncount = 2\nhttp = { model = "closed" }\n'


@pytest.mark.parametrize(
    ("body", "message"), [(NO_SLO, "give the limit to hold"), (CLOSED, "no rate to step")]
)
def test_capacity_refuses_what_it_cannot_search(
    tmp_path: Path, runs: Path, body: str, message: str
) -> None:
    """No SLO to hold, or a group without a rate: one line, exit 2."""
    r = simd("capacity", str(write_scenario(tmp_path, body)), "--runs-dir", str(runs))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
