"""Ragged byte arrays: many byte strings as one flat uint8 buffer plus offsets, built vectorised.

Payloads are assembled this way so a batch of thousands costs a few numpy calls per template
part, not a Python string per message (docs/architecture.md; hot-path rules in docs/decisions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Ragged:
    """Strings i = 0..n-1 as data[offsets[i]:offsets[i+1]]."""

    data: np.ndarray  # uint8
    offsets: np.ndarray  # int64, n + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def item(self, i: int) -> bytes:
        return self.data[self.offsets[i] : self.offsets[i + 1]].tobytes()

    def to_list(self) -> list[bytes]:
        buf = self.data.tobytes()
        o = self.offsets.tolist()
        return [buf[o[i] : o[i + 1]] for i in range(len(o) - 1)]

    @staticmethod
    def from_list(items: Sequence[bytes]) -> Ragged:
        lengths = np.fromiter((len(b) for b in items), dtype=np.int64, count=len(items))
        offsets = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        data = np.frombuffer(b"".join(items), dtype=np.uint8).copy()
        return Ragged(data, offsets)

    @staticmethod
    def constant(value: bytes, n: int) -> Ragged:
        v = np.frombuffer(value, dtype=np.uint8)
        data = np.tile(v, n)
        return Ragged(data, np.arange(n + 1, dtype=np.int64) * len(v))

    def take(self, idx: np.ndarray) -> Ragged:
        """Strings idx[0], idx[1], ... as a new Ragged."""
        lengths = self.lengths[idx]
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        total = int(offsets[-1])
        src = np.repeat(self.offsets[:-1][idx] - offsets[:-1], lengths) + np.arange(total)
        return Ragged(self.data[src], offsets)


def concat_columns(parts: Sequence[Ragged]) -> Ragged:
    """Row-wise concatenation: out[i] = parts[0][i] + parts[1][i] + ..."""
    n = len(parts[0])
    lengths = np.zeros(n, dtype=np.int64)
    for p in parts:
        lengths += p.lengths
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    start = offsets[:-1].copy()
    for p in parts:
        pl = p.lengths
        total = int(p.offsets[-1] - p.offsets[0])
        dst = np.repeat(start - (p.offsets[:-1] - p.offsets[0]), pl) + np.arange(total)
        out[dst] = p.data[p.offsets[0] : p.offsets[-1]]
        start += pl
    return Ragged(out, offsets)


def scatter_rows(n: int, pieces: Sequence[tuple[np.ndarray, Ragged]]) -> Ragged:
    """Merge (row positions, strings) pieces that partition rows 0..n-1 into one Ragged."""
    lengths = np.zeros(n, dtype=np.int64)
    for rows, r in pieces:
        lengths[rows] = r.lengths
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    for rows, r in pieces:
        pl = r.lengths
        total = int(r.offsets[-1] - r.offsets[0])
        dst = np.repeat(offsets[rows] - (r.offsets[:-1] - r.offsets[0]), pl) + np.arange(total)
        out[dst] = r.data[r.offsets[0] : r.offsets[-1]]
    return Ragged(out, offsets)


_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)


def format_ints(values: np.ndarray) -> Ragged:
    """Decimal ASCII of int64 values (with '-' for negatives), vectorised."""
    v = values.astype(np.int64)
    neg = v < 0
    a = np.abs(v).astype(np.uint64)
    width = 20
    mat = np.empty((len(v), width + 1), dtype=np.uint8)
    mat[:, 0] = ord("-")
    x = a.copy()
    nd = np.ones(len(v), dtype=np.int64)
    for col in range(width, 0, -1):
        mat[:, col] = _DIGITS[(x % np.uint64(10)).astype(np.int64)]
        x //= np.uint64(10)
        nd += (x > 0).astype(np.int64)
        if not x.any():
            break
    cols = np.arange(width + 1)[None, :]
    keep = cols > width - nd[:, None]
    keep[:, 0] = neg
    return from_mask(mat, keep)


def format_fixed(values: np.ndarray, decimals: int) -> Ragged:
    """`%.{decimals}f` of float values, vectorised (round half to even on the scaled value)."""
    if decimals == 0:
        return format_ints(np.rint(values).astype(np.int64))
    scaled = np.rint(values * (10.0**decimals)).astype(np.int64)
    a = np.abs(scaled)
    unit = 10**decimals
    frac = np.empty((len(a), decimals), dtype=np.uint8)
    x = (a % unit).astype(np.int64)
    for col in range(decimals - 1, -1, -1):
        frac[:, col] = _DIGITS[x % 10]
        x //= 10
    n = len(a)
    sign = from_mask(np.full((n, 1), ord("-"), dtype=np.uint8), (scaled < 0)[:, None])
    frac_r = Ragged(frac.ravel(), np.arange(n + 1, dtype=np.int64) * decimals)
    return concat_columns([sign, format_ints(a // unit), Ragged.constant(b".", n), frac_r])


def from_mask(mat: np.ndarray, keep: np.ndarray) -> Ragged:
    """Row i: the bytes of mat[i] where keep[i] is true, in column order."""
    lengths = keep.sum(axis=1)
    offsets = np.zeros(len(mat) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Ragged(mat[keep], offsets)
