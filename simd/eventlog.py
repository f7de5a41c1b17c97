"""The event log: append-only segments of length+CRC framed msgpack frames.

A segment is `MAGIC` then frames. A frame is `length (u32 LE) | crc32 (u32 LE) | body`, body a
msgpack map. The first frame is the header (format version, run id, worker, segment, columns,
first row); each later frame is a column batch: `{"first": row, "n": rows, "cols": [bytes...],
"errors": {code: text}, "samples": [[t_ns, rss_bytes, cpu_ns, open_fds], ...]}`, each column a
little-endian fixed-width array, so reading is a buffer copy. "errors" and "samples" are optional
(a frame may carry only samples, with n = 0): resource samples of the worker process ride in the
next frame after they are taken (simd.resources). A reader stops at the first incomplete or
corrupt frame (the torn tail) and reports it; a resuming writer truncates it.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from simd.errors import LogFormatError
from simd.events import COLUMNS

MAGIC = b"SIMDLOG\n"
FORMAT_VERSION = 1
_FRAME = struct.Struct("<II")
MAX_FRAME = 1 << 30  # a length above this is corruption, not a frame


def encode_frame(body: dict[str, Any]) -> bytes:
    payload = msgpack.packb(body, use_bin_type=True)
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def segment_name(worker: int, segment: int) -> str:
    return f"w{worker:03d}-{segment:06d}.simlog"


@dataclass
class TornTail:
    """Where a segment stops being readable, and why."""

    offset: int
    size: int  # bytes from offset to the end of the file
    reason: str


@dataclass
class Batch:
    """One column batch as read back: numpy views over the frame's bytes."""

    first: int
    n: int
    cols: dict[str, np.ndarray]
    errors: dict[int, str]
    end_offset: int  # byte offset just past this frame
    samples: list[tuple[int, int, int, int]] = field(default_factory=list)


@dataclass
class SegmentInfo:
    path: Path
    header: dict[str, Any]
    data_start: int = 0  # byte offset of the first batch frame (just past the header)
    frames: int = 0
    rows: int = 0
    valid_bytes: int = 0
    torn: TornTail | None = None
    errors: dict[int, str] = field(default_factory=dict)


def scan_frames(data: bytes | memoryview, pos: int) -> Iterator[tuple[int, int, Any] | TornTail]:
    """Yield (start, end, body) per good frame, then a TornTail if bytes remain that are not one.
    The framing (and this torn-tail rule) is shared by event logs and recordings."""
    end = len(data)
    while pos < end:
        if end - pos < _FRAME.size:
            yield TornTail(pos, end - pos, "incomplete frame header")
            return
        length, crc = _FRAME.unpack_from(data, pos)
        if length > MAX_FRAME:
            yield TornTail(pos, end - pos, f"frame length {length} is not plausible")
            return
        body_end = pos + _FRAME.size + length
        if body_end > end:
            yield TornTail(pos, end - pos, f"frame of {length} bytes cut at {end - pos - 8}")
            return
        body = data[pos + _FRAME.size : body_end]
        if zlib.crc32(body) != crc:
            yield TornTail(pos, end - pos, "crc mismatch")
            return
        try:
            obj = msgpack.unpackb(body, raw=False, strict_map_key=False)
        except Exception as exc:  # a CRC-valid body that is not msgpack: corruption
            yield TornTail(pos, end - pos, f"undecodable frame ({type(exc).__name__})")
            return
        yield pos, body_end, obj
        pos = body_end


def _read_header(data: bytes | memoryview, path: Path) -> tuple[dict[str, Any], int]:
    head = bytes(data[: len(MAGIC)])
    if len(data) < len(MAGIC) or head != MAGIC:
        if MAGIC.startswith(head):
            raise LogFormatError(f"{path}: segment too short to hold its header (torn at creation)")
        raise LogFormatError(f"{path}: not a simd event log (bad magic)")
    for item in scan_frames(data, len(MAGIC)):
        if isinstance(item, TornTail):
            raise LogFormatError(f"{path}: header frame unreadable ({item.reason})")
        _, end, header = item
        if not isinstance(header, dict) or header.get("format") != "simd-events":
            raise LogFormatError(f"{path}: first frame is not a simd segment header")
        if header.get("version") != FORMAT_VERSION:
            raise LogFormatError(
                f"{path}: log format version {header.get('version')}"
                f" (this simd reads {FORMAT_VERSION})"
            )
        return header, end
    raise LogFormatError(f"{path}: segment too short to hold its header (torn at creation)")


def _batch(obj: dict[str, Any], header: dict[str, Any], end: int) -> Batch:
    n = int(obj["n"])
    cols = {
        name: np.frombuffer(buf, dtype=dt, count=n)
        for (name, dt), buf in zip(header["columns"], obj["cols"], strict=True)
    }
    samples = [tuple(int(x) for x in row) for row in obj.get("samples") or ()]
    return Batch(int(obj["first"]), n, cols, dict(obj.get("errors") or {}), end, samples)  # type: ignore[arg-type]


def read_segment(path: str | Path, start: int | None = None) -> tuple[SegmentInfo, list[Batch]]:
    """Read a segment's header and batches (from byte offset `start`, default the first frame)."""
    p = Path(path)
    with open(p, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise LogFormatError(f"{p}: segment too short to hold its header (torn at creation)")
        # mapped, not read: frames are checked and decoded in place (decoding copies columns)
        with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                return _read_mapped(view, p, start)
            finally:
                view.release()


def _read_mapped(data: memoryview, p: Path, start: int | None) -> tuple[SegmentInfo, list[Batch]]:
    header, first = _read_header(data, p)
    info = SegmentInfo(p, header, data_start=first, valid_bytes=first)
    batches: list[Batch] = []
    pos = first if start is None or start < first else start
    info.valid_bytes = pos
    for item in scan_frames(data, pos):
        if isinstance(item, TornTail):
            info.torn = item
            break
        _, end, obj = item
        b = _batch(obj, header, end)
        batches.append(b)
        info.frames += 1
        info.rows += b.n
        info.errors.update(b.errors)
        info.valid_bytes = end
    return info, batches


def segment_paths(events_dir: str | Path) -> list[Path]:
    return sorted(Path(events_dir).glob("w*-*.simlog"))


class SegmentWriter:
    """Appends frames to one worker's segments, rotating at `segment_bytes`.

    fsync policy: "frame" after every frame, "segment" when a segment closes, "never".
    """

    def __init__(
        self,
        events_dir: Path,
        run_id: str,
        worker: int,
        *,
        segment_bytes: int,
        fsync: str = "segment",
        first_row: int = 0,
        segment: int = 0,
        resume: bool = False,
    ) -> None:
        self.dir = events_dir
        self.run_id = run_id
        self.worker = worker
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.row = first_row
        self.segment = segment
        self.errors_known: dict[int, str] = {}
        self.torn_truncated: list[TornTail] = []
        self._f: Any = None
        self.dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self._resume()
        else:
            self._open_new()

    @property
    def path(self) -> Path:
        return self.dir / segment_name(self.worker, self.segment)

    def _open_new(self) -> None:
        self._f = open(self.path, "wb")  # noqa: SIM115 - lives as long as the writer
        header = {
            "format": "simd-events",
            "version": FORMAT_VERSION,
            "run": self.run_id,
            "worker": self.worker,
            "segment": self.segment,
            "columns": [list(c) for c in COLUMNS],
            "first": self.row,
        }
        self._f.write(MAGIC + encode_frame(header))
        self._f.flush()

    def _resume(self) -> None:
        """Continue this worker's newest segment: truncate a torn tail, learn rows and errors."""
        mine = sorted(self.dir.glob(f"w{self.worker:03d}-*.simlog"))
        if not mine:
            self._open_new()
            return
        for p in mine:
            try:
                info, _ = read_segment(p)
            except LogFormatError:
                p.unlink()  # torn while being created: it held no rows
                continue
            self.errors_known.update(info.errors)
            self.row = int(info.header["first"]) + info.rows
            self.segment = int(info.header["segment"])
            if info.torn is not None:
                self.torn_truncated.append(info.torn)
                with open(p, "r+b") as f:
                    f.truncate(info.valid_bytes)
        if not any(True for _ in self.dir.glob(f"w{self.worker:03d}-*.simlog")):
            self._open_new()
            return
        self._f = open(self.path, "ab")  # noqa: SIM115

    def write(
        self,
        cols: dict[str, np.ndarray],
        n: int,
        errors: dict[int, str],
        samples: list[tuple[int, int, int, int]] | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "first": self.row,
            "n": n,
            "cols": [np.ascontiguousarray(cols[name], dtype=dt).tobytes() for name, dt in COLUMNS],
        }
        if errors:
            body["errors"] = errors
        if samples:
            body["samples"] = [list(r) for r in samples]
        frame = encode_frame(body)
        self._f.write(frame)
        self._f.flush()
        if self.fsync == "frame":
            os.fsync(self._f.fileno())
        self.row += n
        if self._f.tell() >= self.segment_bytes:
            self._close_file()
            self.segment += 1
            self._open_new()

    def _close_file(self) -> None:
        if self._f is None:
            return
        self._f.flush()
        if self.fsync != "never":
            os.fsync(self._f.fileno())
        self._f.close()
        self._f = None

    def close(self) -> None:
        self._close_file()
