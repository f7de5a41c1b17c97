"""`simd compare`: a verdict per metric, exit 1 on a regression beyond the threshold."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import simd, virtual_run, write_scenario

BASE = """
name = "cmp"
seed = 11
duration = "30s"
target = "sim:"

[[fleet]]
name = "g"
count = 200
rate = 5.0
qos = 1

[sim]
latency_p50 = "{p50}"
latency_p99 = "{p99}"

[slo]
latency_p99 = "30ms"
"""


def _run(tmp: Path, runs: Path, name: str, p50: str, p99: str, check: int = 0) -> Path:
    body = BASE.replace("{p50}", p50).replace("{p99}", p99)
    path = write_scenario(tmp, body, f"{name}.toml")
    return virtual_run(path, runs, "--run-id", name, check=check)


def test_same_seed_passes_and_double_latency_regresses(tmp_path: Path, runs: Path) -> None:
    """Two runs of one seed compare as the same (exit 0); a 2x latency model is flagged."""
    a = _run(tmp_path, runs, "a", "4ms", "20ms")
    b = _run(tmp_path, runs, "b", "4ms", "20ms")
    slow = _run(tmp_path, runs, "slow", "8ms", "40ms", check=1)  # fails its p99 SLO

    same = simd("compare", str(a), str(b), "--format", "json", check=0)
    data = json.loads(same.stdout)
    assert data["regressed"] == 0
    verdicts = {m["metric"]: m["verdict"] for m in data["metrics"]}
    assert verdicts["latency_p99"] == "same" and verdicts["throughput_per_s"] == "same"
    assert verdicts["slo latency_p99"] == "same"

    worse = simd("compare", str(a), str(slow), "--format", "json", check=1)
    data = json.loads(worse.stdout)
    by = {m["metric"]: m for m in data["metrics"]}
    for m in ("latency_p50", "latency_p99", "latency_p99_sent", "latency_p99 g/main"):
        assert by[m]["verdict"] == "regressed", by[m]
        assert 0.8 < by[m]["change"] < 1.2, by[m]  # about +100 %
    assert by["throughput_per_s"]["verdict"] == "same"
    assert by["error_rate"]["verdict"] == "same"
    assert by["slo latency_p99"]["verdict"] == "regressed"  # 20 ms model passes 30 ms, 40 fails

    better = simd("compare", str(slow), str(a), check=0)
    assert "improved" in better.stdout and "0 regression(s)" in better.stdout

    # a threshold wider than the change lets the figures through; the SLO still flips
    wide = simd("compare", str(a), str(slow), "--threshold", "150%", "--format", "json", check=1)
    assert [
        m["metric"] for m in json.loads(wide.stdout)["metrics"] if m["verdict"] == "regressed"
    ] == ["slo latency_p99"]
    table = simd("compare", str(a), str(slow), check=1)
    assert "regressed" in table.stdout


def test_bad_threshold_and_missing_run(tmp_path: Path, runs: Path) -> None:
    """A threshold that is not a number and a folder that is not a run: one line, exit 2."""
    a = _run(tmp_path, runs, "a", "4ms", "20ms")
    r = simd("compare", str(a), str(a), "--threshold", "lots", check=2)
    assert r.stderr.strip() == "simd: error: --threshold 'lots': write it like 10% or 0.1"
    r = simd("compare", str(a), str(tmp_path), check=2)
    assert "not a run folder" in r.stderr and "Traceback" not in r.stderr
