"""Endurance analytics: trends with confidence bounds, error bursts, the generator's own
resources, and SLOs that name them."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import sql, virtual_run, write_scenario

SOAK = """
name = "soak"
seed = 21
target = "sim:"

[[fleet]]
name = "g"
count = 100
rate = 1.0
arrival = "poisson"

[[phase]]
name = "rising"
duration = "20m"
shape = "ramp"
start = 1.0
end = 1.9

[sim]
latency_p50 = "2ms"
latency_p99 = "5ms"
capacity = 200
queue_limit = "5s"
outages = [{ start = "5m", end = "5m20s" }, { start = "12m", end = "12m5s" }]

[run]
resource_samples = "10s"

[slo]
latency_p99_growth_per_h = 0.05
error_bursts = 0
memory_growth_per_h = 100.0
throughput_drift_per_h = 10.0
"""


def test_growth_bursts_resources_and_their_slos(tmp_path: Path, runs: Path) -> None:
    """A target nearing its capacity shows p99 growth beyond its 95 % bound; two outages show
    as two bursts; each worker's samples are in the log; the endurance SLOs judge them."""
    run_dir = virtual_run(write_scenario(tmp_path, SOAK), runs, "--workers", "2", check=1)
    (growth, ci, points) = sql(
        run_dir,
        "SELECT growth_per_h, growth_ci95_per_h, points FROM trends WHERE metric = 'latency_p99'",
    )[0]
    assert sql(run_dir, "SELECT window_ns()")[0][0] == 2 * 10**9  # 20 minutes: 2 s windows
    assert 580 <= points <= 600  # windows with completed publishes (outages have none)
    assert growth > 0.05 and growth - ci > 0, (growth, ci)

    bursts = sql(run_dir, "SELECT start_ns, end_ns, error_rate FROM error_bursts")
    assert [(a // 10**9, b // 10**9) for a, b, _ in bursts] == [(300, 320), (720, 726)]
    assert all(rate > 0.3 for *_, rate in bursts)

    per_worker = sql(
        run_dir,
        "SELECT worker, count(*), min(t_ns), max(t_ns), min(rss_bytes), min(open_fds) "
        "FROM samples GROUP BY worker ORDER BY worker",
    )
    assert [r[0] for r in per_worker] == [0, 1]
    for _, n, first, last, rss, fds in per_worker:
        assert first == 0 and last >= 1190 * 10**9 and n >= 120
        assert rss > 10 * 2**20 and fds > 0
    assert (
        sql(run_dir, "SELECT count(*) FROM resource_growth WHERE rss_growth_per_h IS NOT NULL")[0][
            0
        ]
        == 2
    )

    slos = {n: (p, o) for n, p, o in sql(run_dir, "SELECT name, passed, observed FROM slo_results")}
    assert slos["latency_p99_growth_per_h"][0] is False
    assert slos["latency_p99_growth_per_h"][1] == growth
    assert slos["error_bursts"] == (False, 2.0)
    assert slos["memory_growth_per_h"][0] is True
    assert slos["throughput_drift_per_h"][0] is True


def test_sampling_off(tmp_path: Path, runs: Path) -> None:
    """resource_samples = "0s" logs no samples; the run is otherwise the same."""
    body = SOAK.replace('resource_samples = "10s"', 'resource_samples = "0s"').replace(
        '"20m"', '"1m"'
    )
    run_dir = virtual_run(write_scenario(tmp_path, body), runs, check=1)
    assert sql(run_dir, "SELECT count(*) FROM samples")[0][0] == 0
    assert sql(run_dir, "SELECT count(*) FROM resource_growth")[0][0] == 0
