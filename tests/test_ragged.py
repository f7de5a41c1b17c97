"""Vectorised number formatting matches Python's, byte for byte."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from simd.log.ragged import Ragged, concat_columns, format_fixed, format_ints, scatter_rows
from simd.plan.payloads import _fixed


@given(st.lists(st.integers(-(2**62), 2**62), max_size=50))
def test_format_ints(values: list[int]) -> None:
    """format_ints == b'%d'."""
    got = format_ints(np.array(values, dtype=np.int64)).to_list()
    assert got == [b"%d" % v for v in values]


@given(st.lists(st.floats(-1e9, 1e9, allow_nan=False), max_size=50), st.integers(0, 6))
def test_format_fixed_matches_row_path(values: list[float], decimals: int) -> None:
    """The vectorised and the per-row formatting agree, and both parse back to the rounded value."""
    got = format_fixed(np.array(values, dtype=np.float64), decimals).to_list()
    assert got == [_fixed(v, decimals) for v in values]
    for v, b in zip(values, got, strict=True):
        assert abs(float(b) - v) <= 0.5 * 10**-decimals + abs(v) * 1e-12


@given(st.lists(st.lists(st.binary(max_size=5), min_size=3, max_size=3), max_size=20))
def test_concat_and_take(rows: list[list[bytes]]) -> None:
    """Row-wise concatenation and gathering behave like Python's."""
    cols = [Ragged.from_list([r[i] for r in rows]) for i in range(3)]
    if rows:
        assert concat_columns(cols).to_list() == [b"".join(r) for r in rows]
        idx = np.arange(len(rows))[::-1]
        assert cols[0].take(idx).to_list() == [rows[i][0] for i in idx]
        half = np.arange(0, len(rows), 2)
        other = np.arange(1, len(rows), 2)
        merged = scatter_rows(len(rows), [(half, cols[1].take(half)), (other, cols[2].take(other))])
        assert merged.to_list() == [
            rows[i][1] if i % 2 == 0 else rows[i][2] for i in range(len(rows))
        ]
