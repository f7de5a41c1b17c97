"""Reading a damaged event log: the cost of resynchronising after a bad frame, format 2 (frames
start with a SYNC marker: the reader jumps to the next one) against format 1 (no marker: every
offset whose byte would start a msgpack map is a candidate), and against reading the whole
segment undamaged (the ceiling, measured in the same run).

    python benchmarks/bench_damage.py [--frames 100] [--rows 10000]

Prints seconds per read and the ratios. No broker: pure reading, one core.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simd.log.eventlog import SegmentWriter, read_segment, segment_paths
from simd.log.events import COLUMNS
from tests.test_log_damage import _to_format_1


def _rows(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {name: np.zeros(n, dtype=dt) for name, dt in COLUMNS}
    out["device"][:] = rng.integers(0, 100_000, n)
    out["seq"][:] = np.arange(n)
    out["t_intended"][:] = np.sort(rng.integers(0, 7 * 86_400 * 10**9, n))
    out["t_sent"][:] = out["t_intended"] + rng.integers(0, 10**6, n)
    out["t_done"][:] = out["t_sent"] + rng.integers(0, 10**8, n)
    out["bytes"][:] = rng.integers(10, 500, n)
    return out


def _time(path: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        read_segment(path)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        w = SegmentWriter(d / "ev", "bench", 0, segment_bytes=1 << 40)
        for i in range(a.frames):
            w.write(_rows(a.rows, i), a.rows, {})
        w.close()
        good = segment_paths(d / "ev")[0]
        _, batches = read_segment(good)
        data = good.read_bytes()
        at = (batches[0].end_offset + batches[1].end_offset) // 2  # inside frame 2
        bad2 = d / "bad2.simlog"
        flipped = bytearray(data)
        flipped[at] ^= 0x10
        bad2.write_bytes(bytes(flipped))
        v1, spans = _to_format_1(data, 8)
        good1, bad1 = d / "good1.simlog", d / "bad1.simlog"
        good1.write_bytes(v1)
        flipped1 = bytearray(v1)
        flipped1[(spans[1][0] + spans[1][1]) // 2] ^= 0x10
        bad1.write_bytes(bytes(flipped1))
        assert len(read_segment(bad2)[0].damaged) == 1 and len(read_segment(bad1)[0].damaged) == 1
        ceiling = _time(good, a.repeat)
        r2 = _time(bad2, a.repeat)
        c1 = _time(good1, a.repeat)
        r1 = _time(bad1, a.repeat)
        mb = len(data) / 1e6
        print(f"segment: {a.frames} frames x {a.rows:,} rows, {mb:.1f} MB; frame 2 damaged")
        print(f"format 2: whole {ceiling * 1e3:8.1f} ms   damaged {r2 * 1e3:8.1f} ms   "
              f"ratio {r2 / ceiling:.2f}")  # fmt: skip
        print(f"format 1: whole {c1 * 1e3:8.1f} ms   damaged {r1 * 1e3:8.1f} ms   "
              f"ratio {r1 / c1:.2f}")  # fmt: skip
        print(
            f"resync after one damaged frame: format 2 {max(r2 - ceiling, 0) * 1e3:.1f} ms "
            f"(within noise of a whole read), format 1 {max(r1 - c1, 0) * 1e3:.0f} ms"
        )


if __name__ == "__main__":
    main()
