"""The event log: frames round-trip, a torn tail is found at any cut, resuming truncates it.

Every reader/writer of the format must pass these (STYLE.md habit 7).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simd.errors import LogFormatError
from simd.log.eventlog import SegmentWriter, read_segment, segment_paths
from simd.log.events import COLUMNS, NULL_NS, EventBuffer


def _rows(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, dt in COLUMNS:
        info = np.iinfo(np.dtype(dt))
        out[name] = rng.integers(info.min, info.max, size=n, dtype=np.dtype(dt), endpoint=True)
    return out


def _write(tmp: Path, batches: list[dict[str, np.ndarray]], **kw: object) -> SegmentWriter:
    w = SegmentWriter(tmp, "run-x", 0, segment_bytes=kw.pop("segment_bytes", 1 << 30), **kw)  # type: ignore[arg-type]
    for i, b in enumerate(batches):
        n = len(b["device"])
        w.write(b, n, {i + 1: f"error text {i}"} if i % 2 == 0 else {})
    w.close()
    return w


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 300), min_size=1, max_size=6), seed=st.integers(0, 2**32))
def test_frames_round_trip(
    sizes: list[int], seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Whatever rows go in come back out, column for column, with their error texts."""
    tmp = tmp_path_factory.mktemp("log")
    batches = [_rows(n, seed + i) for i, n in enumerate(sizes)]
    _write(tmp, batches)
    info, got = read_segment(segment_paths(tmp)[0])
    assert info.torn is None
    assert [b.n for b in got] == sizes
    first = 0
    for want, b in zip(batches, got, strict=True):
        assert b.first == first
        first += b.n
        for name, _ in COLUMNS:
            np.testing.assert_array_equal(b.cols[name], want[name])
    assert info.errors == {i + 1: f"error text {i}" for i in range(0, len(sizes), 2)}
    assert info.header["run"] == "run-x" and info.header["worker"] == 0


def test_resource_samples_ride_in_frames(tmp_path: Path) -> None:
    """Samples queued on the buffer come back with the frame that carried them, even a frame
    of no rows; rows around them are untouched."""
    w = SegmentWriter(tmp_path, "run-x", 3, segment_bytes=1 << 30)
    buf = EventBuffer(w.write, capacity=100)
    buf.add_sample(0, 50_000_000, 1_000, 12)
    buf.append(5, device=np.arange(5), seq=0, t_intended=np.arange(5))
    buf.flush()
    buf.add_sample(5_000_000_000, 51_000_000, 2_000, 13)
    buf.add_sample(10_000_000_000, 52_000_000, 3_000, 13)
    buf.flush()  # samples only
    buf.flush()  # nothing: no frame
    w.close()
    _, got = read_segment(segment_paths(tmp_path)[0])
    assert [b.n for b in got] == [5, 0]
    assert got[0].samples == [(0, 50_000_000, 1_000, 12)]
    assert got[1].samples == [
        (5_000_000_000, 51_000_000, 2_000, 13),
        (10**10, 52_000_000, 3_000, 13),
    ]
    np.testing.assert_array_equal(got[0].cols["device"], np.arange(5))


def test_truncation_at_every_offset_reads_a_prefix(tmp_path: Path) -> None:
    """Cut a segment at every byte: the reader returns a prefix of the frames and flags the rest."""
    batches = [_rows(n, n) for n in (3, 1, 5, 2)]
    _write(tmp_path, batches)
    path = segment_paths(tmp_path)[0]
    data = path.read_bytes()
    whole_info, full = read_segment(path)
    ends = [b.end_offset for b in full]
    cut = tmp_path / "cut"
    cut.mkdir()
    target = cut / path.name
    for offset in range(len(data) + 1):
        target.write_bytes(data[:offset])
        try:
            info, got = read_segment(target)
        except LogFormatError:
            assert offset < whole_info.data_start, "only a cut header is fatal"
            continue
        assert offset >= whole_info.data_start
        whole = sum(1 for e in ends if e <= offset)
        assert len(got) == whole
        for a, b in zip(got, full, strict=False):
            np.testing.assert_array_equal(a.cols["t_sent"], b.cols["t_sent"])
        if offset == whole_info.data_start or offset in ends:
            assert info.torn is None
        else:
            assert info.torn is not None and info.torn.offset == info.valid_bytes


def test_corrupt_byte_is_detected(tmp_path: Path) -> None:
    """A flipped byte inside a frame stops the reader there (crc mismatch)."""
    _write(tmp_path, [_rows(10, 1), _rows(10, 2)])
    path = segment_paths(tmp_path)[0]
    _, full = read_segment(path)
    data = bytearray(path.read_bytes())
    data[full[0].end_offset + 20] ^= 0xFF
    path.write_bytes(bytes(data))
    info, got = read_segment(path)
    assert len(got) == 1
    assert info.torn is not None and info.torn.reason == "crc mismatch"


def test_resuming_writer_truncates_torn_tail(tmp_path: Path) -> None:
    """A writer opened with resume cuts the torn tail and continues the row numbering."""
    _write(tmp_path, [_rows(4, 1), _rows(6, 2)])
    path = segment_paths(tmp_path)[0]
    with open(path, "ab") as f:
        f.write(b"\x10\x00\x00\x00\x00garbage")
    w = SegmentWriter(tmp_path, "run-x", 0, segment_bytes=1 << 30, resume=True)
    assert w.row == 10 and len(w.torn_truncated) == 1
    assert w.errors_known == {1: "error text 0"}
    w.write(_rows(2, 3), 2, {})
    w.close()
    info, got = read_segment(path)
    assert info.torn is None
    assert [b.first for b in got] == [0, 4, 10]


def test_rotation_and_buffer(tmp_path: Path) -> None:
    """Segments rotate at the size limit; EventBuffer fills frames with defaults for NULLs."""
    w = SegmentWriter(tmp_path, "r", 3, segment_bytes=64 * 1024)
    buf = EventBuffer(w.write, capacity=1000)
    for i in range(20):
        buf.append(700, device=np.arange(700) + i, seq=i)
    buf.flush()
    w.close()
    paths = segment_paths(tmp_path)
    assert len(paths) > 1
    rows = 0
    for p in paths:
        info, got = read_segment(p)
        assert info.torn is None and info.header["worker"] == 3
        assert info.header["first"] == rows
        rows += info.rows
        for b in got:
            assert (b.cols["t_done"] == NULL_NS).all()
    assert rows == 14_000


def test_not_a_log(tmp_path: Path) -> None:
    """A file that is not a segment is refused with its name."""
    p = tmp_path / "w000-000000.simlog"
    p.write_bytes(b"hello world, not a log")
    with pytest.raises(LogFormatError, match="bad magic"):
        read_segment(p)
