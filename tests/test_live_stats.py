"""A worker's live counters (simd.runtime.live_stats) against a plain count of the same rows:
any frame, empty ones, rows of other kinds and of other slices, damaged codes included."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simd.log.events import COLUMNS, COMPLETED_STATUSES, FAILED_STATUSES, NULL_NS, PUBLISH
from simd.runtime.live_stats import LiveStats

LO, N_DEV, GROUPS, MESSAGES, PHASES = 10, 20, 3, 2, 3

row = st.tuples(
    st.integers(0, 40),  # device: some outside the slice [10, 30)
    st.sampled_from([PUBLISH, PUBLISH, PUBLISH, 1, 3]),  # kind: mostly publishes
    st.integers(0, 6),  # status
    st.integers(0, 4),  # message: 2-4 are out of range (a damaged log)
    st.integers(0, 255),  # phase: mostly out of range
    st.integers(0, 3),  # error code
    st.booleans(),  # done time known
)


def _frame(rows: list[tuple]) -> tuple[dict[str, np.ndarray], int]:
    size = len(rows) + 5  # a buffer longer than the frame: only n rows count
    cols = {c: np.zeros(size, dtype=d) for c, d in COLUMNS}
    for i, (dev, kind, status, msg, phase, err, done) in enumerate(rows):
        cols["device"][i], cols["kind"][i], cols["status"][i] = dev, kind, status
        cols["message"][i], cols["phase"][i], cols["error"][i] = msg, phase, err
        cols["t_intended"][i], cols["t_sent"][i] = 1000 * i, 1000 * i + 10
        cols["t_done"][i] = 1000 * i + 500 if done else NULL_NS
    cols["kind"][len(rows) :] = PUBLISH  # beyond n: must not be counted
    return cols, len(rows)


@settings(max_examples=200)
@given(st.lists(st.lists(row, max_size=30), max_size=4))
def test_counters_are_a_plain_count_of_the_rows(frames: list[list[tuple]]) -> None:
    group_of = np.arange(N_DEV) % GROUPS
    ls = LiveStats(group_of, LO, GROUPS, MESSAGES, PHASES)
    want_msg = np.zeros((GROUPS, MESSAGES, 8), dtype=np.int64)
    want_phase = np.zeros((PHASES, 8), dtype=np.int64)
    want_errors: dict[int, int] = {}
    want_other = np.zeros((7, 8), dtype=np.int64)
    done_n = 0
    for rows in frames:
        ls.observe(*_frame(rows))
        for dev, kind, status, msg, phase, err, done in rows:
            if kind != PUBLISH:
                want_other[kind, status] += 1
                continue
            if not LO <= dev < LO + N_DEV:
                continue
            g = group_of[dev - LO]
            want_msg[g, min(msg, MESSAGES - 1), status] += 1
            want_phase[min(phase, PHASES - 1), status] += 1
            if status in FAILED_STATUSES:
                want_errors[err] = want_errors.get(err, 0) + 1
            done_n += status in COMPLETED_STATUSES and done
    assert (ls.by_message == want_msg).all()
    assert (ls.by_phase == want_phase).all()
    assert (ls.by_kind == want_other).all()
    assert ls.error_codes == want_errors
    assert ls.buckets.sum() == done_n
    n, quantiles = ls.take_interval()
    assert n == done_n and len(quantiles) == 7
    if done_n:
        assert quantiles[0] == 500 and quantiles[4] == 490  # from intended; from sent
