"""The live timeline behind the dashboard: bounded however long the run, the whole run kept at
a coarser step, and a client told when the points it holds were merged."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from simd.runtime.timeline import FIELDS, Timeline, merge


def _point(t: float, rate: float, p99: float | None, up: float) -> dict[str, float | None]:
    return {"t_s": t, "sent_per_s": rate, "p99_ms": p99, "workers_up": up}


def test_merging_keeps_the_whole_run_bounded() -> None:
    tl = Timeline(max_points=10)
    for i in range(1000):
        tl.add(_point(float(i), 100.0, float(i % 7), 2.0))
    assert len(tl.points) <= 10 and tl.epoch > 0
    t = [p[0] for p in tl.points]
    assert t == sorted(t) and t[-1] == 999.0  # the latest point stays the latest time
    sent = FIELDS.index("sent_per_s")
    assert all(p[sent] == 100.0 for p in tl.points)  # a steady rate stays that rate
    p99 = FIELDS.index("p99_ms")
    assert max(p[p99] for p in tl.points) == 6.0  # the worst is kept, not averaged away


def test_a_client_of_an_older_epoch_gets_every_point() -> None:
    tl = Timeline(max_points=4)
    for i in range(4):
        tl.add(_point(float(i), 1.0, None, 1.0))
    assert tl.since(2, 0) == (2, tl.points[2:])
    tl.add(_point(4.0, 1.0, None, 1.0))  # a merge: epoch 1
    assert tl.since(2, 0) == (0, tl.points)
    assert tl.since(99, tl.epoch) == (0, tl.points)  # past the end: all again


@given(
    st.lists(
        st.tuples(
            st.floats(0, 1e6),
            st.none() | st.floats(0, 1e4),
            st.none() | st.floats(0, 8),
        ),
        min_size=2,
        max_size=2,
    )
)
def test_merge_averages_rates_and_keeps_the_worst(pair: list[tuple]) -> None:
    (r1, q1, u1), (r2, q2, u2) = pair
    a = Timeline()
    a.add(_point(1.0, r1, q1, u1))  # type: ignore[arg-type]
    a.add(_point(2.0, r2, q2, u2))  # type: ignore[arg-type]
    m = dict(zip(FIELDS, merge(*a.points), strict=True))
    assert m["t_s"] == 2.0
    assert abs(m["sent_per_s"] - (r1 + r2) / 2) <= 1e-9 * max(1.0, r1 + r2)  # type: ignore[operator]
    qs = [q for q in (q1, q2) if q is not None]
    assert m["p99_ms"] == (max(qs) if qs else None)
    ups = [u for u in (u1, u2) if u is not None]
    assert m["workers_up"] == (min(ups) if ups else None)
