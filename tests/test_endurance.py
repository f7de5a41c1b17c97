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


WEEK = """
name = "week"
seed = 5
duration = "7d"
target = "sim:"

[[fleet]]
name = "meters"
count = 100000
interval = "3d"
arrival = "poisson"
qos = 1

[sim]
latency_p50 = "3ms"
latency_p99 = "40ms"
error_rate = 0.001
outages = [{ start = "2d", end = "2d1h" }]

[run]
resource_samples = "0s"  # added below, every 5 s for the week (a virtual run of 240k
                         # wake-ups would take minutes)

[slo]
latency_p99 = "1s"
memory_growth_per_h = 0.01
"""


def _week_of_samples(run_dir: Path, worker: int) -> int:
    """Append a worker's resource samples every 5 s for 7 days to its log (as a worker that
    sampled would have written them: frames of no rows carrying samples)."""
    import numpy as np

    from simd.log.eventlog import SegmentWriter
    from simd.log.events import COLUMNS
    from simd.model.manifest import read_manifest

    run_id = read_manifest(run_dir).run_id
    w = SegmentWriter(run_dir / "events", run_id, worker, segment_bytes=1 << 30, resume=True)
    t = np.arange(0, 7 * 86_400 * 10**9 + 1, 5 * 10**9, dtype=np.int64)
    rss = 80_000_000 + (t // 10**9) * 3  # +10.8 kB/h: steady, tiny growth
    cpu = (t // 10**9) * 2_000_000  # 0.2 % of a core
    empty = {name: np.zeros(0, dtype=dt) for name, dt in COLUMNS}
    for lo in range(0, len(t), 10_000):
        rows = zip(
            t[lo : lo + 10_000].tolist(),
            rss[lo : lo + 10_000].tolist(),
            cpu[lo : lo + 10_000].tolist(),
            [40] * len(t[lo : lo + 10_000]),
            strict=True,
        )
        w.write(empty, 0, {}, list(rows))  # fmt: skip
    w.close()
    return len(t)


def test_a_week_of_100k_devices_reads_back_everywhere(tmp_path: Path, runs: Path) -> None:
    """A 7-day run of 100,000 devices with resource samples every 5 s (241,922) and 672
    windows of 15 min: every view answers, and report, HTML report, check and compare work on
    it; no integer a long run can overflow (t95 of 120,961 samples overflowed UINTEGER)."""
    from tests.conftest import simd

    run_dir = virtual_run(write_scenario(tmp_path, WEEK), runs, "--workers", "2", check=1)
    added = sum(_week_of_samples(run_dir, w) for w in (0, 1))
    simd("ingest", str(run_dir), check=0)
    samples, span = sql(run_dir, "SELECT count(*), max(t_ns) - min(t_ns) FROM samples")[0]
    assert samples == added == 2 * 120_961 and span == 7 * 86_400 * 10**9
    assert sql(run_dir, "SELECT count(*), window_ns() FROM series")[0] == (672, 900 * 10**9)
    assert sql(run_dir, "SELECT count(*) FROM devices")[0][0] == 100_000
    growth = sql(run_dir, "SELECT samples, rss_growth_ci95_per_h FROM resource_growth")
    assert [n for n, _ in growth] == [120_961, 120_961] and all(ci is not None for _, ci in growth)
    views = [r[0] for r in sql(run_dir, "SELECT view_name FROM duckdb_views() WHERE NOT internal")]
    assert len(views) >= 40
    for view in views:
        sql(run_dir, f'SELECT count(*) FROM "{view}"')  # raises on any overflow or error
    rep = simd("report", str(run_dir), check=0)
    assert "Traceback" not in rep.stderr and (run_dir / "report.html").stat().st_size > 0
    simd("check", str(run_dir), check=0)
    cmp = simd("compare", str(run_dir), str(run_dir), check=0)
    assert "Traceback" not in cmp.stderr
