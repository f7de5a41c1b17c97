"""Histogram percentiles agree with exact ones within the bucket width."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simd.log.events import ACKED, NULL_NS, PUBLISH
from simd.results.histograms import Histograms, bucket_of, bucket_value


@given(st.lists(st.integers(1, 2**62), min_size=1, max_size=200))
def test_bucket_midpoint_within_half_a_bucket(values: list[int]) -> None:
    """Any positive ns value is within 0.05 % of its bucket's midpoint; buckets are monotonic."""
    v = np.array(sorted(values), dtype=np.int64)
    b = bucket_of(v)
    assert np.all(np.diff(b) >= 0)
    assert np.all(np.abs(bucket_value(b) / v - 1) <= 0.0005)


def test_zero_and_negative_share_bucket_zero() -> None:
    """Zero lag (virtual clock) and impossible negatives land in bucket 0, value 0."""
    assert bucket_of(np.array([0, -3])).tolist() == [0, 0]
    assert bucket_value(np.array([0])).tolist() == [0.0]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(1, 5000))
def test_counts_and_maxima_are_exact(seed: int, n: int) -> None:
    """Counts per (group, phase) and maxima equal numpy's; frames can be added in any split."""
    rng = np.random.default_rng(seed)
    lat = rng.lognormal(15, 1.5, n).astype(np.int64)
    cols = {
        "kind": np.full(n, PUBLISH, np.uint8),
        "status": np.full(n, ACKED, np.uint8),
        "phase": rng.integers(0, 3, n).astype(np.uint8),
        "t_intended": np.zeros(n, np.int64),
        "t_sent": np.zeros(n, np.int64),
        "t_done": lat,
    }
    cols["t_done"][0] = NULL_NS  # not completed: not counted
    grp = rng.integers(0, 2, n).astype(np.int16)
    h = Histograms()
    cut = n // 2
    h.add({k: v[:cut] for k, v in cols.items()}, grp[:cut])
    h.add({k: v[cut:] for k, v in cols.items()}, grp[cut:])
    rows = h.rows()
    m0 = rows.hist["metric"] == 0
    total = int(rows.hist["count"][m0].sum())
    assert total == n - 1
    for g in (0, 1):
        for p in (0, 1, 2):
            sel = (grp == g) & (cols["phase"] == p)
            sel[0] = False
            want = lat[sel]
            mx = rows.maxima
            hit = (mx["grp"] == g) & (mx["phase"] == p) & (mx["metric"] == 0)
            if len(want):
                assert int(mx["max_ns"][hit][0]) == int(want.max())
            else:
                assert not hit.any()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(0, 3000), cut=st.floats(0, 1))
def test_failure_totals_count_every_kind_with_first_and_last_send(
    seed: int, n: int, cut: float
) -> None:
    """Failed rows of any kind per (kind, status, error): counts and the first and last send
    time among those sent, the same however the rows are split into frames."""
    from simd.log.events import FAILED_STATUSES
    from simd.results.series import FailureTotals

    rng = np.random.default_rng(seed)
    cols = {
        "kind": rng.integers(0, 7, n).astype(np.uint8),
        "status": rng.integers(0, 8, n).astype(np.uint8),
        "error": rng.integers(0, 4, n).astype(np.uint16),
        "t_sent": rng.integers(-(10**9), 10**12, n).astype(np.int64),
    }
    cols["t_sent"][rng.random(n) < 0.3] = NULL_NS  # never sent
    want: dict[tuple[int, int, int], list[int | None]] = {}
    for k, s, e, t in zip(*(cols[c].tolist() for c in ("kind", "status", "error", "t_sent")),
                          strict=True):  # fmt: skip
        if s not in FAILED_STATUSES:
            continue
        w = want.setdefault((k, s, e), [0, None, None])
        w[0] = int(w[0] or 0) + 1
        if t != NULL_NS:
            w[1] = t if w[1] is None else min(int(w[1]), t)
            w[2] = t if w[2] is None else max(int(w[2]), t)
    totals = FailureTotals()
    i = int(n * cut)
    failed = np.isin(cols["status"], FAILED_STATUSES)
    totals.add({c: v[:i] for c, v in cols.items()}, failed[:i])
    totals.add({c: v[i:] for c, v in cols.items()}, failed[i:])
    rows = totals.rows(worker=3)
    got = {
        (k, s, e): [c, None if lo == 2**63 - 1 else lo, None if hi == -(2**63) else hi]
        for k, s, e, c, lo, hi in zip(
            *(
                rows[c].tolist()
                for c in ("kind", "status", "error", "count", "first_ns", "last_ns")
            ),
            strict=True,
        )
    }
    assert got == want
    assert set(rows["worker"].tolist()) <= {3}
