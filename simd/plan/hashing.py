"""Counter-based randomness: every random draw is a pure function of (seed, stream, keys).

splitmix64's finaliser (Steele, Lea, Flood 2014) over uint64 arrays. Integer arithmetic only, so
a draw does not depend on array length, SIMD path, worker count or machine.
"""

from __future__ import annotations

import zlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_INV53 = 1.0 / (1 << 53)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, element-wise, wrapping uint64 arithmetic (arrays never warn)."""
    z = np.asarray(x, dtype=np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def stream_key(seed: int, *names: str | int) -> int:
    """A 64-bit key for one named random stream (e.g. seed, 'phase', group name)."""
    acc = np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
    for name in names:
        part = zlib.crc32(name.encode()) if isinstance(name, str) else int(name)
        acc = mix64(acc ^ np.array([part & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    return int(acc[0])


def hash2(key: int, a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """uint64 hash of (key, a[, b]) element-wise."""
    h = mix64(np.asarray(a, dtype=np.uint64) ^ np.uint64(key))
    if b is not None:
        h = mix64(h ^ (np.asarray(b, dtype=np.uint64) * _M2))
    return h


def uniform01(h: np.ndarray) -> np.ndarray:
    """Floats in [0, 1) from uint64 hashes (the top 53 bits)."""
    return (h >> np.uint64(11)).astype(np.float64) * _INV53
