"""Damaged logs: a torn tail is only a tail when nothing valid follows it; damage in the middle
is reported with its byte range and every frame after it is read (event logs and recordings,
format 2 and the old format 1 alike).

The matrix follows LevelDB's log reader tests (bad length, bad CRC, resync), Kafka's
LogLoaderTest (garbage appended, every record intact) and Prometheus' WAL repair test.
"""

from __future__ import annotations

import itertools
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgpack
import numpy as np
import pytest

from simd.log.eventlog import SegmentWriter, read_segment, segment_paths
from simd.log.events import COLUMNS
from simd.log.framing import SYNC
from simd.log.recording import RecordingWriter, parse_recording


@dataclass
class Read:
    """What a reader made of a file: the ids of the frames it read, its tail, its damage."""

    ids: list[int]
    torn: bool
    damage: list[tuple[int, int]]  # byte ranges


@dataclass
class Format:
    name: str
    make: Callable[[Path, int], tuple[bytes, list[tuple[int, int]]]]  # -> data, frame spans
    read: Callable[[Path, bytes], Read]


def _event_rows(i: int, n: int = 7) -> dict[str, np.ndarray]:
    rows = {name: np.zeros(n, dtype=dt) for name, dt in COLUMNS}
    rows["device"][:] = i
    rows["seq"][:] = np.arange(n)
    rows["t_intended"][:] = np.arange(n) * 1_000_003 + i * 10**9
    return rows


def _make_events(tmp: Path, frames: int) -> tuple[bytes, list[tuple[int, int]]]:
    d = tmp / "ev"
    w = SegmentWriter(d, "run-x", 0, segment_bytes=1 << 30)
    for i in range(frames):
        w.write(_event_rows(i), 7, {})
    w.close()
    path = segment_paths(d)[0]
    _, batches = read_segment(path)
    spans = []
    prev = read_segment(path)[0].data_start
    for b in batches:
        spans.append((prev, b.end_offset))
        prev = b.end_offset
    return path.read_bytes(), spans


def _read_events(tmp: Path, data: bytes) -> Read:
    p = tmp / "read" / "w000-000000.simlog"
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(data)
    info, batches = read_segment(p)
    assert info.rows == sum(b.n for b in batches)
    return Read(
        [int(b.cols["device"][0]) for b in batches],
        info.torn is not None,
        [(d.damage.offset, d.damage.end) for d in info.damaged],
    )


def _make_recording(tmp: Path, frames: int) -> tuple[bytes, list[tuple[int, int]]]:
    p = tmp / "r.simrec"
    w = RecordingWriter(p, t0_epoch_ns=1, source="mqtt://127.0.0.1:1883")
    offsets = []
    for i in range(frames):
        offsets.append(p.stat().st_size)
        w.add(i * 10**9, f"dev/{i}", b"x" * (i + 3), 1)
        w.flush()
    size = p.stat().st_size
    w._f.close()  # no clean-close frame: the matrix is about message frames only
    offsets.append(size)
    return p.read_bytes(), list(itertools.pairwise(offsets))


def _read_recording(tmp: Path, data: bytes) -> Read:
    rec = parse_recording(data)
    return Read(
        [int(t // 10**9) for t in rec.t_ns.tolist()],
        rec.torn is not None,
        [(s.damage.offset, s.damage.end) for s in rec.damaged],
    )


def _to_format_1(data: bytes, magic_len: int) -> tuple[bytes, list[tuple[int, int]]]:
    """The same frames without SYNC markers and with version 1: an old file."""
    out = bytearray(data[:magic_len])
    spans = []
    pos = magic_len
    first = True
    while pos < len(data):
        assert data[pos : pos + 4] == SYNC
        length, _ = struct.unpack_from("<II", data, pos + 4)
        body = msgpack.unpackb(data[pos + 12 : pos + 12 + length], raw=False)
        if first:
            body["version"] = 1
            first = False
        else:
            spans.append((len(out), 0))
        raw = msgpack.packb(body, use_bin_type=True)
        out += struct.pack("<II", len(raw), zlib.crc32(raw)) + raw
        if len(spans) and spans[-1][1] == 0:
            spans[-1] = (spans[-1][0], len(out))
        pos += 12 + length
    return bytes(out), spans


def _v1(make: Callable[[Path, int], tuple[bytes, list[tuple[int, int]]]], magic_len: int):
    def made(tmp: Path, frames: int) -> tuple[bytes, list[tuple[int, int]]]:
        data, _ = make(tmp, frames)
        return _to_format_1(data, magic_len)

    return made


FORMATS = [
    Format("events-v2", _make_events, _read_events),
    Format("recording-v2", _make_recording, _read_recording),
    Format("events-v1", _v1(_make_events, 8), _read_events),
    Format("recording-v1", _v1(_make_recording, 8), _read_recording),
]
FRAMES = 6


@pytest.fixture(params=FORMATS, ids=[f.name for f in FORMATS])
def fmt(request: pytest.FixtureRequest) -> Format:
    return request.param


def test_cut_tail_reads_the_intact_prefix(tmp_path: Path, fmt: Format) -> None:
    """Every cut of the last k bytes, up to a frame and a half: exactly the frames before the
    cut, a torn tail unless the cut fell on a frame boundary, and never damage."""
    data, spans = fmt.make(tmp_path, FRAMES)
    last = spans[-1][1] - spans[-1][0]
    before = spans[-2][1] - spans[-2][0]
    for k in range(1, last + before // 2 + 1):  # the last frame and half the one before it
        cut = len(data) - k
        got = fmt.read(tmp_path, data[:cut])
        whole = [i for i, (_, e) in enumerate(spans) if e <= cut]
        assert got.ids == whole, k
        assert got.damage == [], k
        assert got.torn == (cut not in {e for _, e in spans}), k


@pytest.mark.parametrize("where", ["length", "crc", "body"])
def test_flipped_bit_in_a_middle_frame_is_damage(tmp_path: Path, fmt: Format, where: str) -> None:
    """A bit flipped in a middle frame's length, CRC or body: that frame is reported damaged
    with its byte range, every other frame is read, and there is no torn tail."""
    data, spans = fmt.make(tmp_path, FRAMES)
    marker = len(SYNC) if fmt.name.endswith("v2") else 0
    for victim in (1, FRAMES // 2, FRAMES - 2):
        start, end = spans[victim]
        at = {"length": start + marker + 1, "crc": start + marker + 5, "body": end - 3}[where]
        for bit in (0, 3, 7):
            bad = bytearray(data)
            bad[at] ^= 1 << bit
            got = fmt.read(tmp_path, bytes(bad))
            assert got.ids == [i for i in range(FRAMES) if i != victim], (victim, bit)
            assert got.damage == [(start, end)], (victim, bit)
            assert not got.torn


def test_garbage_appended_keeps_every_frame(tmp_path: Path, fmt: Format) -> None:
    """1-1024 bytes of garbage after the last frame (ten seeds): every frame reads, the garbage
    is a torn tail (nothing valid follows it), never damage."""
    data, _ = fmt.make(tmp_path, FRAMES)
    for seed in range(10):
        rng = random.Random(seed)
        for size in (1, 7, 12, 13, 100, rng.randint(1, 1024), 1024):
            junk = bytes(rng.getrandbits(8) for _ in range(size))
            if seed % 3 == 0:
                junk = SYNC + junk  # a marker that leads nowhere
            got = fmt.read(tmp_path, data + junk)
            assert got.ids == list(range(FRAMES)), (seed, size)
            assert got.damage == [] and got.torn


def test_garbage_between_frames_is_damage(tmp_path: Path, fmt: Format) -> None:
    """Garbage written between two frames: every frame reads, the garbage is the damage."""
    data, spans = fmt.make(tmp_path, FRAMES)
    at = spans[2][1]
    for size in (1, 9, 500):
        junk = bytes(random.Random(size).getrandbits(8) for _ in range(size))
        got = fmt.read(tmp_path, data[:at] + junk + data[at:])
        assert got.ids == list(range(FRAMES))
        assert got.damage == [(at, at + size)] and not got.torn


def test_damaged_rows_are_counted(tmp_path: Path) -> None:
    """An event log's damage says which rows it held: from the frames' row numbers."""
    data, spans = _make_events(tmp_path, FRAMES)
    bad = bytearray(data)
    bad[spans[2][0] + 20] ^= 0x10
    p = tmp_path / "seg" / "w000-000000.simlog"
    p.parent.mkdir()
    p.write_bytes(bytes(bad))
    info, _ = read_segment(p)
    (d,) = info.damaged
    assert (d.first_row, d.rows_lost) == (14, 7)
    assert "7 rows lost" in d.describe() and f"bytes {spans[2][0]}-{spans[2][1]}" in d.describe()


def test_resume_keeps_damage_and_truncates_only_the_tail(tmp_path: Path) -> None:
    """A resuming writer facing a damaged middle frame and a torn tail cuts the tail only: the
    damaged bytes and every frame after them stay, byte for byte, and numbering goes on."""
    _make_events(tmp_path, FRAMES)
    d = tmp_path / "ev"
    path = segment_paths(d)[0]
    data = bytearray(path.read_bytes())
    info, batches = read_segment(path)
    data[batches[1].end_offset + 30] ^= 0x01  # frame 2's body
    kept = bytes(data)
    path.write_bytes(kept + b"\x00\x01partial frame")
    w = SegmentWriter(d, "run-x", 0, segment_bytes=1 << 30, resume=True)
    assert w.row == FRAMES * 7 and len(w.torn_truncated) == 1
    w.write(_event_rows(99), 7, {})
    w.close()
    assert path.read_bytes()[: len(kept)] == kept
    info, batches = read_segment(path)
    assert [int(b.cols["device"][0]) for b in batches] == [0, 1, 3, 4, 5, 99]
    assert len(info.damaged) == 1 and info.torn is None


def test_a_segment_shorter_than_its_magic_is_torn_at_creation(tmp_path: Path) -> None:
    """A segment cut inside its magic (created, not yet written) held no rows: torn at
    creation, never damage (ingest would otherwise fail log_integrity for a segment being
    created when it looked)."""
    from simd.errors import TornAtCreation

    for cut in (b"", b"SIM", b"SIMDLOG\n", b"SIMDLOG\n\xd5\x1f"):
        p = tmp_path / "w000-000000.simlog"
        p.write_bytes(cut)
        with pytest.raises(TornAtCreation):
            read_segment(p)


def test_unreadable_header_is_kept_and_not_appended_to(tmp_path: Path) -> None:
    """A segment whose header frame is damaged is never deleted or written to: the resumed
    writer goes on in the next segment."""
    d = tmp_path / "ev"
    w = SegmentWriter(d, "run-x", 0, segment_bytes=1 << 30)
    w.write(_event_rows(0), 7, {})
    w.close()
    path = segment_paths(d)[0]
    data = bytearray(path.read_bytes())
    data[20] ^= 0x04  # inside the header frame's body
    path.write_bytes(bytes(data))
    w = SegmentWriter(d, "run-x", 0, segment_bytes=1 << 30, resume=True)
    w.write(_event_rows(1), 7, {})
    w.close()
    assert path.read_bytes() == bytes(data)
    assert [p.name for p in segment_paths(d)] == ["w000-000000.simlog", "w000-000001.simlog"]


def test_resume_after_a_format_1_segment_starts_a_new_one(tmp_path: Path) -> None:
    """A run begun by an older simd (format 1) resumes into a new format 2 segment."""
    data, _ = _v1(_make_events, 8)(tmp_path, 3)
    d = tmp_path / "old"
    d.mkdir()
    (d / "w000-000000.simlog").write_bytes(data)
    w = SegmentWriter(d, "run-x", 0, segment_bytes=1 << 30, resume=True)
    assert w.row == 21
    w.write(_event_rows(7), 7, {})
    w.close()
    a, b = segment_paths(d)
    assert a.read_bytes() == data
    info, batches = read_segment(b)
    assert info.header["version"] == 2 and batches[0].first == 21


# ---------------------------------------------------------------- through the CLI

SIM_RUN = """
name = "damage"
duration = "3s"
target = "sim:"
[[fleet]]
name = "g"
count = 50
rate = 4.0
[run]
flush_interval = "50ms"
"""


def _flip_middle_frame(seg: Path) -> tuple[int, int, int]:
    """Flip one bit in the body of the segment's middle frame; its (start, end, rows)."""
    _, batches = read_segment(seg)
    assert len(batches) >= 5, len(batches)
    k = len(batches) // 2
    start, end = batches[k - 1].end_offset, batches[k].end_offset
    data = bytearray(seg.read_bytes())
    data[(start + end) // 2] ^= 0x20
    seg.write_bytes(bytes(data))
    return start, end, batches[k].n


def test_damage_is_reported_by_ingest_check_report_and_inspect(tmp_path: Path) -> None:
    """A flipped bit in a middle frame: ingest warns LOG DAMAGED and keeps every other row,
    log_damage holds the range, check fails log_integrity (exit 1), the terminal and HTML
    reports say so, inspect exits 1 naming the range."""
    from tests.conftest import run_dir_from, simd, sql, write_scenario

    proc = simd(
        "run", str(write_scenario(tmp_path, SIM_RUN)), "--runs-dir", str(tmp_path / "runs"),
        "--workers", "1", "--no-progress", "--no-report", check=0,
    )  # fmt: skip
    run_dir = run_dir_from(proc)
    before = sql(run_dir, "SELECT count(*) FROM events")[0][0]
    seg = segment_paths(run_dir / "events")[0]
    start, end, rows = _flip_middle_frame(seg)
    (run_dir / "results.duckdb").unlink()
    ing = simd("ingest", str(run_dir), check=0)
    assert f"LOG DAMAGED: {seg}: damaged bytes {start}-{end}" in ing.stderr
    assert f"{rows:,} rows lost" in ing.stderr
    assert sql(run_dir, "SELECT count(*) FROM events")[0][0] == before - rows
    assert sql(run_dir, "SELECT offset_start, offset_end, rows_lost FROM log_damage") == [
        (start, end, rows)
    ]
    chk = simd("check", str(run_dir), check=1)
    assert "log_integrity: FAILED" in chk.stderr + chk.stdout
    rep = simd("report", str(run_dir), check=0)
    assert "LOG DAMAGED: 1 range(s)" in rep.stdout
    assert "id='log-damage'" in (run_dir / "report.html").read_text()
    ins = simd("inspect", str(run_dir), check=1)
    assert f"damaged bytes {start}-{end}" in ins.stderr


def test_resume_with_a_damaged_middle_frame_keeps_every_valid_row(tmp_path: Path) -> None:
    """Kill the whole run (a reboot), damage a middle frame, `simd run --resume`: the damaged
    bytes stay, every row read before the resume keeps its status, and the run fails
    log_integrity (exit 1) instead of passing."""
    import json
    import time

    from tests.conftest import kill_run, simd, sql, start_run, write_scenario

    body = SIM_RUN.replace("3s", "8s")
    runs = tmp_path / "runs"
    proc = start_run(write_scenario(tmp_path, body), runs, "r", "--no-report")
    run_dir = runs / "r"
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline and proc.poll() is None
        segs = segment_paths(run_dir / "events")
        if segs and all(read_segment(s)[0].frames >= 8 for s in segs):
            break
        time.sleep(0.1)
    kill_run(proc)
    seg = segment_paths(run_dir / "events")[0]
    start, end, _ = _flip_middle_frame(seg)
    damaged = seg.read_bytes()[start:end]
    _, batches = read_segment(seg)
    kept = {
        (int(d), int(s), int(st))
        for b in batches
        for d, s, st, k in zip(
            b.cols["device"], b.cols["seq"], b.cols["status"], b.cols["kind"], strict=True
        )
        if k == 0
    }
    r = simd("run", "--resume", str(run_dir), "--no-progress", "--no-report", check=1)
    assert "log_integrity" in r.stderr
    assert seg.read_bytes()[start:end] == damaged
    assert json.loads((run_dir / "run.json").read_text())["state"] == "completed"
    got = set(
        sql(
            run_dir,
            "SELECT device, seq, status_code FROM (SELECT device, seq, status AS status_code "
            "FROM event_rows WHERE kind = 0)",
        )
    )
    assert kept <= got  # every row read before the resume, with the same status
    assert sql(run_dir, "SELECT count(*) FROM log_damage")[0][0] == 1


def test_a_damaged_recording_warns_and_names_the_missing_span(tmp_path: Path) -> None:
    """recordings/sample.simrec (format 1) with a bit flipped in a middle frame: inspect exits
    1 naming the range, replay warns and plays every other frame, and its fidelity table names
    the span of recorded time that may be missing."""
    from simd.log.framing import Damage, scan_frames
    from simd.log.recording import MAGIC
    from tests.conftest import REPO, run_dir_from, simd, sql

    data = (REPO / "recordings" / "sample.simrec").read_bytes()
    frames = [f for f in scan_frames(data, len(MAGIC), marked=False) if not isinstance(f, Damage)]
    start, end, _ = frames[len(frames) // 2]
    bad = bytearray(data)
    bad[(start + end) // 2] ^= 0x04
    path = tmp_path / "damaged.simrec"
    path.write_bytes(bytes(bad))
    ins = simd("inspect", str(path), check=1)
    assert f"RECORDING DAMAGED: {path}: damaged bytes {start}-{end}" in ins.stderr
    assert "may be missing" in ins.stdout
    proc = simd("replay", str(path), "--target", "null:", "--clock", "virtual", "--runs-dir",
                str(tmp_path / "runs"), "--no-progress", check=0)  # fmt: skip
    assert f"recording {path}: damaged bytes {start}-{end}" in proc.stderr
    run_dir = run_dir_from(proc)
    (spans,) = sql(run_dir, "SELECT missing_spans FROM replay_fidelity")[0]
    assert spans.startswith(f"damaged bytes {start}-{end}") and "may be missing" in spans
    assert "recording damaged bytes" in proc.stdout  # the terminal report says so too
    whole = 674
    assert 0 < sql(run_dir, "SELECT count(*) FROM events WHERE kind = 'publish'")[0][0] < whole
