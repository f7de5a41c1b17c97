"""Sharded runs: `simd run --shard I/N --start-at T` processes and their merged ingest."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simd.plan.shard import Shard, parse_shard, parse_start_at
from tests.conftest import REPO, need_mosquitto, simd, sql, write_scenario

SCENARIO = """
name = "sharded"
seed = 11
duration = "3s"
target = "null:"

[[fleet]]
name = "meters"
count = 20
rate = 4.0
qos = 1
mqtt = { connect_rate = 40 }

[[fleet]]
name = "trackers"
count = 13
rate = 2.0
arrival = "poisson"
topic = "trackers/{device_id}/pos"

[[phase]]
name = "ramp"
duration = "1500ms"
shape = "ramp"
start = 0.5
end = 2.0

[[phase]]
name = "hold"
duration = "1500ms"
level = 2.0

[slo]
throughput_ratio = 1.0
"""

PUBLISHES = "SELECT device, seq, t_intended_ns FROM events WHERE kind = 'publish'"


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "simd", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(proc: subprocess.Popen[str], code: int = 0) -> str:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == code, f"exit {proc.returncode}\n{out}\n{err}"
    return out + err


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three shards through mosquitto with one epoch (merged by a follower that starts before
    any shard exists), beside: the same scenario in one process (null target, two workers), a
    shard of another run id, and a shard of the same run id with another seed."""
    need_mosquitto()
    from simd.runtime.broker import EmbeddedBroker

    tmp = tmp_path_factory.mktemp("shards")
    scenario = write_scenario(tmp, SCENARIO)
    runs, other = tmp / "runs", tmp / "other"
    # 7 processes start and connect before t=0 here even with both cores busy (at 5 s ahead, a
    # loaded machine was late: a ramped group connected after t=0 and dropped its first publishes)
    start = f"{time.time() + 10:.3f}"
    with EmbeddedBroker("mosquitto") as broker:
        follower = _start("ingest", str(runs / "fleet"), "--follow", "--interval", "300ms",
                          "--timeout", "90s")  # fmt: skip
        common = ("--start-at", start, "--workers", "1", "--no-progress", "--no-report")
        procs = [
            _start("run", str(scenario), "--shard", f"{i}/3", "--runs-dir", str(runs),
                   "--run-id", "fleet", "--target", broker.url, *common)
            for i in range(3)
        ]  # fmt: skip
        procs.append(
            _start("run", str(scenario), "--shard", "1/3", "--runs-dir", str(runs),
                   "--run-id", "fleet-b", *common)
        )  # fmt: skip
        procs.append(
            _start("run", str(scenario), "--shard", "0/3", "--runs-dir", str(other),
                   "--run-id", "fleet", "--seed", "2", *common)
        )  # fmt: skip
        whole = _start("run", str(scenario), "--runs-dir", str(tmp / "whole"), "--run-id",
                       "one", "--workers", "2", "--no-progress", "--no-report")  # fmt: skip
        outputs = [_wait(p) for p in procs]
        _wait(whole)
        follow_out = _wait(follower)
    assert "ingested" in follow_out
    assert all("completed; merge the shards with" in o for o in outputs)
    return {
        "tmp": tmp,
        "fleet": runs / "fleet",
        "b": runs / "fleet-b",
        "other": other / "fleet",
        "whole": tmp / "whole" / "one",
        "start": Path(start),
    }


def test_shards_together_plan_what_one_process_plans(sharded: dict[str, Path]) -> None:
    """Three shards on one epoch, merged, hold exactly the (device, seq, intended time) rows of
    a one-process run of the same scenario and seed, every publish acked through mosquitto."""
    merged = Counter(sql(sharded["fleet"], PUBLISHES))
    whole = Counter(sql(sharded["whole"], PUBLISHES))
    assert merged == whole
    assert sum(merged.values()) == sql(sharded["whole"], "SELECT planned_publishes FROM runs")[0][0]
    statuses = sql(
        sharded["fleet"],
        "SELECT group_name, status, count(*) FROM events WHERE kind = 'publish' GROUP BY ALL",
    )
    assert {(g, s) for g, s, _ in statuses} == {("meters", "acked"), ("trackers", "sent")}
    assert sum(n for *_, n in statuses) == sum(merged.values())  # qos 1 acked, qos 0 sent
    workers = sql(sharded["fleet"], "SELECT DISTINCT worker FROM events ORDER BY 1")
    assert workers == [(0,), (1000,), (2000,)]
    # each device was run by exactly one shard: its global index is in that shard's slice
    by_worker = sql(sharded["fleet"], "SELECT worker, min(device), max(device) FROM devices "
                    "GROUP BY ALL ORDER BY 1")  # fmt: skip
    assert by_worker == [(0, 0, 10), (1000, 11, 21), (2000, 22, 32)]


def test_each_shard_records_its_slice_epoch_and_clock(sharded: dict[str, Path]) -> None:
    """Every shard folder's run.json names the shard, its devices, the shared t=0, its host,
    its clock's sync state and when it was ready; the merged run.json lists them."""
    start_ns = parse_start_at(str(sharded["start"]))
    for i in range(3):
        m = json.loads((sharded["fleet"] / f"shard-{i}" / "run.json").read_text())
        assert m["shard"]["index"] == i and m["shard"]["count"] == 3
        assert m["shard"]["devices"] == list(Shard(i, 3).devices(33))
        assert m["t0_epoch_ns"] == start_ns == m["shard"]["start_at_ns"]
        assert m["host"] and "ready_wall_ns" in m and m["state"] == "completed"
        assert m["clock_sync"] is None or "max_error_us" in m["clock_sync"]
        at_t0 = m["clock_at_t0"]  # this host's wall and monotonic clocks, read at t=0
        assert at_t0["wall_ns"] >= start_ns and at_t0["late_ns"] == at_t0["wall_ns"] - start_ns
    merged = json.loads((sharded["fleet"] / "run.json").read_text())
    assert merged["state"] == "completed" and merged["shards"]["missing"] == {}
    assert sorted(merged["shards"]["present"]) == ["0", "1", "2"]
    rows = sql(sharded["fleet"], "SELECT shard, present, planned_share FROM shard_coverage")
    assert [r[:2] for r in rows] == [(0, True), (1, True), (2, True)]
    walls = sql(sharded["fleet"], "SELECT t0_wall_ns - t0_epoch_ns FROM shards")
    assert len(walls) == 3 and all(late >= 0 for (late,) in walls)  # read at t=0, never before
    assert sum(r[2] for r in rows) == pytest.approx(1.0)


def test_a_missing_shard_is_a_named_gap(sharded: dict[str, Path]) -> None:
    """Merging shards 0 and 2 says which devices and publishes shard 1 leaves uncovered (ingest,
    report, SQL, and the throughput SLO fails); adding shard 1 later completes the run."""
    out = sharded["tmp"] / "partial"
    fleet = sharded["fleet"]
    r = simd("ingest", str(fleet / "shard-0"), str(fleet / "shard-2"), "--out", str(out), check=0)
    lo, hi = Shard(1, 3).devices(33)
    assert f"shard 1/3 missing: devices {lo}..{hi - 1}" in r.stderr
    assert "(run incomplete)" in r.stdout
    report = simd("report", str(out), check=0).stdout
    assert "shards 2 of 3 present" in report and "shard 1/3 missing" in report
    assert "shard 1/3 missing" in (out / "report.html").read_text()
    assert sql(out, "SELECT present, state FROM shard_coverage WHERE shard = 1") == [
        (False, "missing")
    ]
    assert sql(out, "SELECT count(*) FROM devices WHERE worker IS NULL") == [(hi - lo,)]
    assert "throughput_ratio: FAILED" in simd("check", str(out), check=1).stdout
    simd("ingest", str(fleet / "shard-1"), "--out", str(out), check=0)
    assert Counter(sql(out, PUBLISHES)) == Counter(sql(fleet, PUBLISHES))
    assert sql(out, "SELECT state FROM runs") == [("completed",)]


def test_merging_refuses_other_runs_scenarios_and_twins(sharded: dict[str, Path]) -> None:
    """Shards of different runs, of different scenarios, or one shard twice do not merge."""
    fleet, tmp = sharded["fleet"], sharded["tmp"]
    r = simd("ingest", str(fleet / "shard-0"), str(sharded["b"] / "shard-1"), "--out",
             str(tmp / "x"), check=2)  # fmt: skip
    assert "different runs (run id fleet vs fleet-b)" in r.stderr
    r = simd("ingest", str(fleet / "shard-1"), str(sharded["other"] / "shard-0"), "--out",
             str(tmp / "x"), check=2)  # fmt: skip
    assert "different scenarios (scenario hash" in r.stderr
    twin = tmp / "copy" / "shard-0"
    shutil.copytree(fleet / "shard-0", twin)
    r = simd("ingest", str(fleet / "shard-0"), str(twin), "--out", str(tmp / "x"), check=2)
    assert "shard 0 given twice" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--shard", "0/3", "--start-at", "1700000000"), "in the past"),
        (("--shard", "3/3", "--start-at", "4102444800"), "I must be 0..N-1"),
        (("--shard", "0/3"), "--shard needs --start-at"),
        (("--shard", "0/40", "--start-at", "4102444800"), "the fleet has 33 devices"),
        (("--shard", "0/2", "--start-at", "4102444800", "--target", "embedded"), "embedded"),
        (("--start-at", "tomorrow"), "epoch seconds"),
    ],
)
def test_bad_shard_flags_are_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    """Each wrong use of --shard / --start-at is one line, exit 2, and starts nothing."""
    scenario = write_scenario(tmp_path, SCENARIO)
    r = simd("run", str(scenario), "--runs-dir", str(tmp_path / "runs"), *args, check=2)
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.simlog"))


def test_plan_of_a_shard_is_its_share(sharded: dict[str, Path]) -> None:
    """`simd plan --shard I/N` prints the exact publishes of that slice, the ones the shard
    logged; the shards' plans sum to the whole plan."""
    scenario = write_scenario(sharded["tmp"], SCENARIO, "plan.toml")
    whole = json.loads(simd("plan", str(scenario), "--format", "json", check=0).stdout)
    parts = []
    for i in range(3):
        r = simd("plan", str(scenario), "--format", "json", "--shard", f"{i}/3", check=0)
        parts.append(json.loads(r.stdout)["total_publishes"])
        logged = sql(sharded["fleet"], f"SELECT count(*) FROM events WHERE kind = 'publish' "
                                       f"AND worker // 1000 = {i}")  # fmt: skip
        assert logged == [(parts[-1],)]
    assert sum(parts) == whole["total_publishes"]


@given(n=st.integers(1, 10_000), count=st.integers(1, 64))
def test_shard_slices_partition_the_fleet(n: int, count: int) -> None:
    """The shards' slices are contiguous, disjoint, cover [0, n) and differ by at most one."""
    slices = [Shard(i, count).devices(n) for i in range(count)]
    assert slices[0][0] == 0 and slices[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(slices))
    sizes = [hi - lo for lo, hi in slices]
    assert max(sizes) - min(sizes) <= 1


def test_shard_and_start_parsing() -> None:
    """--shard is I/N from 0; --start-at is exact epoch seconds or ISO 8601 with a zone."""
    assert parse_shard("2/5") == Shard(2, 5)
    assert parse_start_at("1795430400.123456789") == 1795430400123456789
    assert parse_start_at("2026-11-23T18:00:00Z") == parse_start_at("2026-11-23T19:00:00+01:00")


@pytest.mark.parametrize("name", ["load", "replay", "rest", "spike", "fleet-rates"])
def test_shard_plans_add_up_to_the_whole(name: str) -> None:
    """Per group and phase, the planned publishes of 3 shards' slices sum to the whole plan
    (periodic, poisson, replay with fanout, http journeys and closed users alike)."""
    from simd.plan.inputs import load_scenario
    from simd.plan.schedule import plan_counts

    scenario = load_scenario(REPO / "scenarios" / f"{name}.toml")
    whole = plan_counts(scenario)
    parts = [plan_counts(scenario, devices=Shard(i, 3).devices(scenario.device_count))
             for i in range(3)]  # fmt: skip
    for gi, g in enumerate(whole.groups):
        assert sum(p.groups[gi].devices for p in parts) == g.devices
        for phase, n in g.per_phase.items():
            assert sum(p.groups[gi].per_phase[phase] for p in parts) == n
