"""Frames: the length + CRC envelope of event logs and recordings, and what a reader makes of
bytes that are not frames.

A file is its magic, then frames. Format 2 (what simd writes) frames are
`SYNC (4 bytes) | length (u32 LE) | crc32 of body (u32 LE) | msgpack body`; format 1 frames had no
SYNC marker and are still read. When the bytes at a position are not a whole valid frame, the
reader looks for the next position where one is (at a SYNC marker in format 2; at any offset in
format 1, slower, and only for old files):

- nothing valid follows: a **torn tail** (a crash while writing the last frame). A resuming writer
  may truncate it; nothing else is lost.
- a valid frame follows: **damage** (a flipped bit, a bad sector, garbage written over frames).
  The range is reported with its byte offsets, every frame after it is read, and nothing may
  ever remove it or the frames after it.

Prior art for the rules: LevelDB's log reader (a bad record is reported and skipped, reading goes
on), Kafka's log loader (only the unreadable suffix is truncated), Prometheus' WAL repair.
The CRC32 makes a false resync (random bytes that validate as a frame) about 2^-32 per SYNC
candidate: the marker and the length check leave few candidates.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

SYNC = b"\xd5\x1fsF"  # format 2's frame marker: bytes unlikely in msgpack maps and columns
_FRAME = struct.Struct("<II")
MAX_FRAME = 1 << 30  # a length above this is damage, not a frame

# msgpack type bytes a frame body (always a map) starts with: fixmap, map16, map32
_MAP_FIRST = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])


@dataclass(frozen=True)
class TornTail:
    """Where a file stops being readable, with nothing valid after it, and why."""

    offset: int
    size: int  # bytes from offset to the end of the file
    reason: str


@dataclass(frozen=True)
class Damage:
    """A range of bytes that are not frames, with valid frames after it: never a tail."""

    offset: int
    end: int  # the offset of the next valid frame
    reason: str  # why the frame at `offset` did not read

    @property
    def size(self) -> int:
        return self.end - self.offset

    def describe(self) -> str:
        return f"bytes {self.offset}-{self.end} ({self.size} bytes: {self.reason})"


Frame = tuple[int, int, Any]  # (start offset, end offset, decoded body)


def encode_frame(body: Any) -> bytes:
    """One format-2 frame holding `body` (msgpack)."""
    payload = msgpack.packb(body, use_bin_type=True)
    return SYNC + _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def is_marked(data: bytes | memoryview, pos: int) -> bool:
    """Whether the frame at `pos` (a file's first, just past its magic) is format 2."""
    return bytes(data[pos : pos + len(SYNC)]) == SYNC


def _frame_at(data: bytes | memoryview, pos: int, marked: bool) -> tuple[int, Any] | str:
    """(end, body) of the whole valid frame at `pos`, or why there is none."""
    end = len(data)
    head = pos
    if marked:
        if end - pos < len(SYNC):
            return "incomplete frame header"
        if not is_marked(data, pos):
            return "no frame marker"
        head = pos + len(SYNC)
    if end - head < _FRAME.size:
        return "incomplete frame header"
    length, crc = _FRAME.unpack_from(data, head)
    if length > MAX_FRAME:
        return f"frame length {length} is not plausible"
    body_end = head + _FRAME.size + length
    if body_end > end:
        return f"frame of {length} bytes cut at {end - head - _FRAME.size}"
    body = data[head + _FRAME.size : body_end]
    if zlib.crc32(body) != crc:
        return "crc mismatch"
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # a CRC-valid body that is not msgpack: damage
        return f"undecodable frame ({type(exc).__name__})"
    return body_end, obj


def _candidates(data: bytes | memoryview, start: int, marked: bool) -> Iterator[int]:
    """Offsets from `start` on where a frame might begin, in order."""
    if marked:
        raw = data.obj if isinstance(data, memoryview) else data
        find = getattr(raw, "find", None)
        if find is None:  # a buffer without find: copy once (format 2 only finds markers)
            raw = bytes(data)
            find = raw.find
        i = find(SYNC, start)
        while i >= 0 and i < len(data):
            yield i
            i = find(SYNC, i + 1)
        return
    # format 1: any offset whose body would start as a msgpack map keyed by a short string (every
    # simd body does) and whose length fits in the file (prefilters in numpy, then the CRC)
    end = len(data)
    if end - start <= _FRAME.size + 1:
        return
    arr = np.frombuffer(data, dtype=np.uint8)
    body = arr[start + _FRAME.size : end - 1]
    key = arr[start + _FRAME.size + 1 : end]
    ok = np.isin(body, np.fromiter(_MAP_FIRST, dtype=np.uint8)) & (key >= 0xA0) & (key <= 0xBF)
    cand = np.flatnonzero(ok) + start
    if not len(cand):
        return
    lengths = (
        arr[cand].astype(np.int64)
        | arr[cand + 1].astype(np.int64) << 8
        | arr[cand + 2].astype(np.int64) << 16
        | arr[cand + 3].astype(np.int64) << 24
    )
    fits = cand + _FRAME.size + lengths <= end
    yield from cand[fits].tolist()


def _resync(data: bytes | memoryview, start: int, marked: bool) -> int | None:
    """The first offset from `start` on where a whole valid frame begins, or None."""
    for c in _candidates(data, start, marked):
        if not isinstance(_frame_at(data, c, marked), str):
            return c
    return None


def scan_frames(
    data: bytes | memoryview, pos: int, *, marked: bool = True
) -> Iterator[Frame | Damage | TornTail]:
    """Yield each valid frame (start, end, body) from `pos` on; a Damage for each unreadable
    range that has a valid frame after it; a TornTail last if the file ends in one."""
    end = len(data)
    while pos < end:
        got = _frame_at(data, pos, marked)
        if not isinstance(got, str):
            yield pos, got[0], got[1]
            pos = got[0]
            continue
        nxt = _resync(data, pos + 1, marked)
        if nxt is None:
            yield TornTail(pos, end - pos, got)
            return
        yield Damage(pos, nxt, got)
        pos = nxt
