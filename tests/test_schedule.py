"""The schedule is a pure function of (scenario, seed, device): worker count never changes it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simd.errors import ScenarioError
from simd.model.scenario import Scenario, parse_scenario
from simd.plan.schedule import SliceSchedule, plan_counts
from simd.plan.shape import compile_shape

SHAPED = {
    "name": "shaped",
    "seed": 7,
    "fleet": [
        {"name": "fast", "count": 40, "rate": 5.0},
        {
            "name": "slow",
            "count": 25,
            "interval": "3s",
            "arrival": "poisson",
            "messages": [{"name": "a", "weight": 3}, {"name": "b", "weight": 1, "qos": 1}],
        },
        {"name": "odd", "count": 7, "rate": 0.37},
        {"name": "ramped", "count": 9, "rate": 3.0, "mqtt": {"connect_rate": 0.5}},
        {
            "name": "ramped-poisson",
            "count": 6,
            "rate": 2.0,
            "arrival": "poisson",
            "mqtt": {"connect_rate": 0.25},
        },
    ],
    "phase": [
        {"name": "ramp", "duration": "20s", "shape": "ramp", "start": 0.0, "end": 1.0},
        {"name": "steps", "duration": "15s", "shape": "step", "levels": [0.5, 1.5, 1.0]},
        {
            "name": "wave",
            "duration": "30s",
            "shape": "sine",
            "level": 1.0,
            "amplitude": 0.8,
            "period": "7s",
        },
        {
            "name": "spike",
            "duration": "10s",
            "shape": "burst",
            "level": 1.0,
            "peak": 6.0,
            "burst_at": "3s",
            "burst_length": "2s",
        },
    ],
}


def walk(s: Scenario, workers: int, step_ns: int) -> list[tuple[int, int, int, int, int]]:
    """All (device, seq, t, phase, message) rows of `workers` slices walked in `step_ns` chunks."""
    out: list[tuple[int, int, int, int, int]] = []
    n = s.device_count
    for w in range(workers):
        sch = SliceSchedule(s, w * n // workers, (w + 1) * n // workers)
        t = 0
        last = -1
        while t < s.duration_ns:
            t = min(t + step_ns, s.duration_ns)
            c = sch.chunk_until(t)
            assert np.all(np.diff(c.t_intended) >= 0), "a chunk is in time order"
            if len(c):
                assert c.t_intended[0] >= last - 1, "chunks follow each other"
                last = int(c.t_intended[-1])
            out += zip(
                c.device.tolist(),
                c.seq.tolist(),
                c.t_intended.tolist(),
                c.phase.tolist(),
                c.message.tolist(),
                strict=True,
            )
    return sorted(out)


def test_worker_count_and_chunking_do_not_change_the_schedule() -> None:
    """1, 2 and 3 slices with different chunk sizes give identical rows, equal to the plan."""
    s = parse_scenario(SHAPED)
    one = walk(s, 1, 1_000_000_000)
    assert one == walk(s, 2, 333_333_337)
    assert one == walk(s, 3, 4_100_000_000)
    plan = plan_counts(s)
    assert len(one) == plan.total_publishes
    # per group and phase, too
    shape = compile_shape(s)
    got: dict[tuple[int, str], int] = {}
    for dev, _, _, ph, _ in one:
        gi = 0 if dev < 40 else (1 if dev < 65 else (2 if dev < 72 else (3 if dev < 81 else 4)))
        got[(gi, shape.phase_names[ph])] = got.get((gi, shape.phase_names[ph]), 0) + 1
    for gi, g in enumerate(plan.groups):
        for ph, n in g.per_phase.items():
            assert got.get((gi, ph), 0) == n, (g.name, ph)


def test_seq_is_dense_per_device_and_times_inside_their_phase() -> None:
    """Each device's seqs are 0..n-1 in time order, and each row's time lies in its phase."""
    s = parse_scenario(SHAPED)
    rows = walk(s, 1, 2_000_000_000)
    shape = compile_shape(s)
    by_dev: dict[int, list[tuple[int, int]]] = {}
    for dev, seq, t, ph, _ in rows:
        by_dev.setdefault(dev, []).append((seq, t))
        a, b = shape.phase_span(ph)
        assert a <= t < b
    for items in by_dev.values():
        items.sort()
        assert [q for q, _ in items] == list(range(len(items)))
        times = [t for _, t in items]
        assert times == sorted(times)


def test_periodic_rate_is_exact() -> None:
    """A constant periodic fleet sends rate x duration per device (+-1 for its phase)."""
    s = parse_scenario(
        {"name": "c", "duration": "100s", "fleet": [{"name": "g", "count": 50, "rate": 2.0}]}
    )
    plan = plan_counts(s)
    assert plan.total_publishes == 50 * 200
    rows = walk(s, 2, 7_000_000_000)
    per_dev = np.bincount([r[0] for r in rows])
    assert set(per_dev.tolist()) == {200}
    # periodic: consecutive publishes of a device are exactly 0.5 s apart (to the ns)
    t = sorted(r[2] for r in rows if r[0] == 3)
    assert set(np.diff(t).tolist()) <= {500_000_000, 499_999_999, 500_000_001}


def test_seed_changes_phases_not_counts() -> None:
    """Another seed moves the times, keeps the exact count of a constant periodic fleet."""
    base = {"name": "c", "duration": "10s", "fleet": [{"name": "g", "count": 20, "rate": 1.0}]}
    a = walk(parse_scenario({**base, "seed": 1}), 1, 10**9)
    b = walk(parse_scenario({**base, "seed": 2}), 1, 10**9)
    assert len(a) == len(b) == 200
    assert [r[2] for r in a] != [r[2] for r in b]


def test_poisson_mean_rate() -> None:
    """Poisson arrivals average the configured rate."""
    s = parse_scenario(
        {
            "name": "p",
            "duration": "200s",
            "seed": 3,
            "fleet": [{"name": "g", "count": 100, "rate": 1.0, "arrival": "poisson"}],
        }
    )
    total = plan_counts(s).total_publishes
    assert abs(total - 20_000) < 4 * (20_000**0.5)


def _heavy(arrival: str, **extra: object) -> Scenario:
    return parse_scenario(
        {
            "name": "h",
            "duration": "2000s",
            "seed": 4,
            "fleet": [{"name": "g", "count": 50, "rate": 1.0, "arrival": arrival, **extra}],
        }
    )


def _dispersion(s: Scenario) -> tuple[int, float]:
    """(publishes, variance / mean of the fleet's counts per 50 s)."""
    t = np.array([r[2] for r in walk(s, 1, 100 * 10**9)])
    counts = np.bincount(t // (50 * 10**9), minlength=40)[:40]
    return len(t), float(counts.var() / counts.mean())


@pytest.mark.parametrize(
    ("arrival", "extra", "dispersion"),
    [
        ("poisson", {}, (0.6, 1.4)),
        ("pareto", {"pareto_shape": 1.5}, (3.0, 1e9)),
        ("zipf", {"zipf_exponent": 2.0, "burst_max": 100, "burst_spacing": "10ms"}, (10.0, 1e9)),
    ],
)
def test_random_arrivals_keep_the_rate_and_bunch_as_their_law_says(
    arrival: str, extra: dict[str, object], dispersion: tuple[float, float]
) -> None:
    """Poisson, pareto and zipf-burst arrivals all average the group's rate; counts per 50 s
    scatter like a Poisson process's (variance = mean) or, heavy-tailed, several times more
    (measured with seed 4: poisson 0.92, pareto a=1.5 4.7, zipf s=2 19.6)."""
    n, d = _dispersion(_heavy(arrival, **extra))
    assert abs(n - 100_000) < 0.05 * 100_000
    assert dispersion[0] < d < dispersion[1]


@pytest.mark.parametrize("arrival", ["pareto", "zipf"])
def test_heavy_tailed_arrivals_do_not_depend_on_the_split(arrival: str) -> None:
    """The same (device, seq, time) rows whether 1 or 3 workers walk them, in any chunking."""
    s = Scenario.model_validate({**_heavy(arrival).model_dump(), "duration": 120 * 10**9})
    assert sorted(walk(s, 1, 10**9)) == sorted(walk(s, 3, 7_300_000_000))


def test_zipf_spacing_must_fit_the_rate() -> None:
    """Bursts spaced wider than the mean gap cannot keep the rate: a scenario error."""
    group = {"name": "g", "count": 1, "rate": 1.0, "arrival": "zipf", "burst_spacing": "2s"}
    with pytest.raises(ScenarioError, match="burst_spacing 2000ms"):
        parse_scenario({"name": "z", "duration": "1s", "fleet": [group]})


def test_message_mix_follows_weights() -> None:
    """A 3:1 weighted mix picks the first message about 75% of the time."""
    s = parse_scenario(SHAPED)
    rows = [r for r in walk(s, 1, 10**10) if 40 <= r[0] < 65]
    share = sum(1 for r in rows if r[4] == 0) / len(rows)
    assert 0.68 < share < 0.82


@settings(max_examples=40, deadline=None)
@given(
    rate=st.floats(0.05, 50),
    count=st.integers(1, 30),
    level=st.floats(0, 3),
    dur_ms=st.integers(1, 20_000),
    workers=st.integers(1, 4),
    step_ms=st.integers(1, 5_000),
    arrival=st.sampled_from(["periodic", "poisson", "pareto", "zipf"]),
)
def test_plan_matches_any_walk(
    rate: float, count: int, level: float, dur_ms: int, workers: int, step_ms: int, arrival: str
) -> None:
    """For arbitrary rates, levels and chunkings, the walked rows number exactly the plan."""
    s = parse_scenario(
        {
            "name": "h",
            "seed": count,
            "duration": f"{dur_ms}ms",
            "fleet": [{"name": "g", "count": count, "rate": rate, "arrival": arrival}],
            "phase": [
                {
                    "name": "a",
                    "duration": f"{dur_ms // 2 + 1}ms",
                    "shape": "ramp",
                    "start": level,
                    "end": 0.0,
                },
                {"name": "b", "duration": f"{dur_ms}ms", "level": level},
            ],
        }
    )
    rows = walk(s, workers, step_ms * 1_000_000)
    assert len(rows) == plan_counts(s).total_publishes
    assert len(set((r[0], r[1]) for r in rows)) == len(rows)


@pytest.mark.parametrize("shape", ["constant", "ramp", "step", "burst", "sine"])
def test_every_shape_compiles_to_its_integral(shape: str) -> None:
    """The compiled M(end) equals the shape's integral (sine within its linear pieces)."""
    phase = {
        "name": "p",
        "duration": "60s",
        "shape": shape,
        "level": 1.0,
        "start": 0.0,
        "end": 2.0,
        "levels": [1.0, 3.0],
        "peak": 4.0,
        "burst_at": "10s",
        "burst_length": "5s",
        "amplitude": 0.5,
        "period": "20s",
    }
    s = parse_scenario(
        {"name": "x", "fleet": [{"name": "g", "count": 1, "rate": 1.0}], "phase": [phase]}
    )
    expected = {"constant": 60.0, "ramp": 60.0, "step": 120.0, "burst": 55.0 + 20.0, "sine": 60.0}[
        shape
    ]
    assert compile_shape(s).m_end == pytest.approx(expected, rel=1e-3)


def test_a_connect_ramp_starts_each_device_at_its_place() -> None:
    """With connect_rate r, the group's devices start one every 1/r seconds in a seeded order
    (so every worker's slice ramps the whole time); none publishes before its start."""
    from simd.plan.schedule import layout_groups

    s = parse_scenario(SHAPED)
    rows = walk(s, 3, 1_500_000_000)
    first: dict[int, int] = {}
    for dev, _, t, _, _ in rows:
        first[dev] = min(first.get(dev, t), t)
    for gi, lo, period in ((3, 72, 2_000_000_000), (4, 81, 4_000_000_000)):
        layout = layout_groups(s)[gi]
        starts = layout.start_ns(np.arange(layout.count))
        assert sorted(starts.tolist()) == [k * period for k in range(layout.count)]
        assert starts.tolist() != sorted(starts.tolist())  # shuffled, not by index
        for local, start in enumerate(starts.tolist()):
            assert first[lo + local] >= start


@settings(max_examples=60, deadline=None)
@given(
    start=st.floats(0.05, 5.0),
    end=st.floats(0.05, 5.0),
    level=st.floats(0.05, 5.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_time_of_one_segment_is_the_gathered_arithmetic(
    start: float, end: float, level: float, seed: int
) -> None:
    """Shape.time_of with every point in one segment (its constants as scalars) gives exactly
    the instants the per-point gathered arithmetic gives: schedules do not depend on how a
    chunk's points fall across segments."""
    sc = parse_scenario({
        "name": "t", "duration": "30s", "target": "null:",
        "fleet": [{"name": "g", "count": 1, "rate": 1.0}],
        "phase": [
            {"name": "r", "duration": "10s", "shape": "ramp", "start": start, "end": end},
            {"name": "h", "duration": "20s", "level": level},
        ],
    })  # fmt: skip
    sh = compile_shape(sc)
    rng = np.random.default_rng(seed)
    for k in range(len(sh.a)):
        hi = sh.m_at(int(sh.t1[k]))
        w = sh.m0[k] + rng.random(500) * (hi - sh.m0[k])
        seg = np.full(len(w), k)
        gathered = sh._invert(w, sh.m0[seg], sh.a[seg], sh.b[seg], sh.t0[seg], sh.t1[seg])
        assert np.array_equal(sh.time_of(w, seg), gathered)
