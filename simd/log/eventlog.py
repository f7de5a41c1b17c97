"""The event log: append-only segments of framed msgpack column batches.

A segment is `MAGIC` then frames (simd.log.framing: `SYNC | length | crc32 | msgpack body`). The
first frame is the header (format version, run id, worker, segment, columns, first row); each
later frame is a column batch: `{"first": row, "n": rows, "cols": [bytes...], "errors": {code:
text}, "samples": [[t_ns, rss_bytes, cpu_ns, open_fds], ...]}`, each column a little-endian
fixed-width array, so reading is a buffer copy. "errors" and "samples" are optional (a frame may
carry only samples, with n = 0): resource samples of the worker process ride in the next frame
after they are taken (simd.runtime.resources).

Bytes that are not frames are a torn tail when nothing valid follows them (a crash mid-write; a
resuming writer truncates it) and damage when valid frames follow: the reader reports the range
and the rows it held (from the frames' `first` numbers), reads every frame after it, and no
writer ever removes it. Format 1 segments (frames without SYNC) are still read.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simd.errors import LogFormatError, TornAtCreation
from simd.log.events import COLUMNS
from simd.log.framing import Damage, TornTail, encode_frame, is_marked, scan_frames

MAGIC = b"SIMDLOG\n"
FORMAT_VERSION = 2  # 2: frames carry the SYNC marker (simd.log.framing); 1 is still read
READ_VERSIONS = (1, 2)


def segment_name(worker: int, segment: int) -> str:
    return f"w{worker:03d}-{segment:06d}.simlog"


@dataclass
class Batch:
    """One column batch as read back: numpy views over the frame's bytes."""

    first: int
    n: int
    cols: dict[str, np.ndarray]
    errors: dict[int, str]
    end_offset: int  # byte offset just past this frame
    samples: list[tuple[int, int, int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class DamagedRange:
    """Unreadable bytes inside a segment, with what the frames around them say was lost."""

    damage: Damage
    first_row: int | None  # the row number the damaged frames started at (None: not known)
    rows_lost: int | None  # from the next frame's first row (None: not known)

    def describe(self) -> str:
        lost = "rows lost unknown" if self.rows_lost is None else f"{self.rows_lost:,} rows lost"
        return f"damaged {self.damage.describe()}, {lost}"


@dataclass
class SegmentInfo:
    path: Path
    header: dict[str, Any]
    data_start: int = 0  # byte offset of the first batch frame (just past the header)
    frames: int = 0
    rows: int = 0
    valid_bytes: int = 0  # just past the last valid frame: where reading resumes
    next_row: int = 0  # the row number a frame appended after the last valid one starts at
    torn: TornTail | None = None
    damaged: list[DamagedRange] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)

    @property
    def marked(self) -> bool:
        return int(self.header.get("version", 1)) >= 2


def _read_header(data: bytes | memoryview, path: Path) -> tuple[dict[str, Any], int]:
    head = bytes(data[: len(MAGIC)])
    if len(data) < len(MAGIC) or head != MAGIC:
        if MAGIC.startswith(head):
            raise TornAtCreation(f"{path}: segment too short to hold its header (torn at creation)")
        raise LogFormatError(f"{path}: not a simd event log (bad magic)")
    marked = is_marked(data, len(MAGIC))
    item = next(scan_frames(data, len(MAGIC), marked=marked), None)
    if item is None or (isinstance(item, TornTail) and item.size + len(MAGIC) == len(data)):
        raise TornAtCreation(f"{path}: segment too short to hold its header (torn at creation)")
    if isinstance(item, TornTail | Damage):
        raise LogFormatError(f"{path}: header frame damaged ({item.reason})")
    _, end, header = item
    if not isinstance(header, dict) or header.get("format") != "simd-events":
        raise LogFormatError(f"{path}: first frame is not a simd segment header")
    if header.get("version") not in READ_VERSIONS or (header["version"] >= 2) != marked:
        raise LogFormatError(
            f"{path}: log format version {header.get('version')}"
            f" (this simd reads {', '.join(map(str, READ_VERSIONS))})"
        )
    return header, end


def _batch(obj: dict[str, Any], header: dict[str, Any], end: int) -> Batch:
    n = int(obj["n"])
    cols = {
        name: np.frombuffer(buf, dtype=dt, count=n)
        for (name, dt), buf in zip(header["columns"], obj["cols"], strict=True)
    }
    samples = [tuple(int(x) for x in row) for row in obj.get("samples") or ()]
    return Batch(int(obj["first"]), n, cols, dict(obj.get("errors") or {}), end, samples)  # type: ignore[arg-type]


def read_segment(path: str | Path, start: int | None = None) -> tuple[SegmentInfo, list[Batch]]:
    """Read a segment's header and batches (from byte offset `start`, default the first frame):
    every valid frame, the damaged ranges between them, and a torn tail if it ends in one."""
    p = Path(path)
    with open(p, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise TornAtCreation(f"{p}: segment too short to hold its header (torn at creation)")
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
    info.next_row = int(header["first"])
    batches: list[Batch] = []
    pos = first if start is None or start < first else start
    info.valid_bytes = pos
    pending: Damage | None = None
    for item in scan_frames(data, pos, marked=info.marked):
        if isinstance(item, TornTail):
            info.torn = item
            break
        if isinstance(item, Damage):
            pending = item
            continue
        _, end, obj = item
        try:
            b = _batch(obj, header, end)
        except (KeyError, TypeError, ValueError) as exc:  # CRC-valid, but not a batch
            pending = pending or Damage(info.valid_bytes, end, f"not a batch ({exc!r})")
            continue
        if pending is not None:
            known = bool(batches) or pos == first  # the row before the damage is known
            before = info.next_row if known else None
            lost = None if before is None else max(0, b.first - before)
            damage = Damage(pending.offset, item[0], pending.reason)
            info.damaged.append(DamagedRange(damage, before, lost))
            pending = None
        batches.append(b)
        info.frames += 1
        info.rows += b.n
        info.errors.update(b.errors)
        info.valid_bytes = end
        info.next_row = b.first + b.n
    return info, batches


@dataclass(frozen=True)
class LogPosition:
    """A place in one worker's log: the segment, the byte offset in it, the number the next
    row gets there, and the error texts known by then."""

    segment: int
    offset: int
    row: int
    errors: dict[int, str]


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
        resume_from: LogPosition | None = None,
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
            self._resume(resume_from)
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

    def position(self) -> LogPosition:
        """Where the next frame goes, with the error texts written before it (a checkpoint)."""
        return LogPosition(self.segment, self._f.tell(), self.row, dict(self.errors_known))

    def sync(self) -> None:
        """Everything written so far on disk (before a checkpoint says it is there)."""
        self._f.flush()
        os.fsync(self._f.fileno())

    def _resume(self, start: LogPosition | None) -> None:
        """Continue this worker's log: learn rows and errors, truncate a genuine torn tail
        (nothing valid after it). Damaged ranges stay where they are; a segment whose header
        cannot be read is kept as it is and writing goes on in a new segment, as it does after
        a format 1 segment (frames of two formats never share a file). From a checkpoint's
        `start`, only what lies after it is read."""
        append = False
        if start is not None:
            self.errors_known.update(start.errors)
            self.row = start.row
        for p in sorted(self.dir.glob(f"w{self.worker:03d}-*.simlog")):
            number = int(p.stem.rsplit("-", 1)[1])
            if start is not None and number < start.segment:
                continue
            offset = start.offset if start is not None and number == start.segment else None
            try:
                info, _ = read_segment(p, offset)
            except TornAtCreation:
                p.unlink()  # cut while its header was written: it held no rows
                continue
            except LogFormatError:
                self.segment, append = number + 1, False  # kept, never written to again
                continue
            self.errors_known.update(info.errors)
            if info.frames or offset is None:
                self.row = info.next_row
            self.segment, append = number, info.marked
            if info.torn is not None:
                self.torn_truncated.append(info.torn)
                with open(p, "r+b") as f:
                    f.truncate(info.valid_bytes)
            if not append:
                self.segment += 1
        if not append:
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
            self.errors_known.update(errors)
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
