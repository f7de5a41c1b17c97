"""A worker's checkpoint: where a restarted worker can take up its schedule without walking
it from t=0 (simd.runtime.resume).

At the first chunk boundary after every CHECKPOINT_EVERY_NS of run time (a slice with few
publishes has long chunks: one a chunk then, so a restart walks at most one), the worker
flushes its log and
notes a candidate: the schedule's horizon H (every publish due before H has been handed to
the transport), the schedule's own state there, the log's position P (every row of a publish
due at or after H lies after P) and the live counters at P. A candidate is *settled* once the
transport holds no publish due before H (Transport.oldest_pending_ns): from then on every
publish due before H has its row in the log. The newest settled candidate is written, after
the log is on disk, to `events/wNNN.cursor` (one CRC-checked frame, replaced atomically).

A restarted worker that finds a valid cursor restores the schedule at H and the counters at
P, reads only the log after P, and owes (logs as missed) the publishes due from H to now that
have no row: work in proportion to the time since the checkpoint, not since t=0. A cursor that
is missing, damaged, of another run or slice, or points past the end of the log is ignored
and the worker walks from t=0 as before. Closed-model groups (their seqs continue from the
log's highest) and transports that cannot say what they hold (`oldest_pending_ns` absent)
take no checkpoints.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simd.log.eventlog import LogPosition, SegmentWriter
from simd.log.events import EventBuffer
from simd.log.framing import encode_frame, scan_frames
from simd.plan.schedule import SliceSchedule
from simd.runtime.live_stats import LiveStats
from simd.transports import Transport

CHECKPOINT_EVERY_NS = 10_000_000_000  # a candidate this often (run time)
CANDIDATES = 32  # kept until one settles: 5 minutes of publishes in flight at most
FORMAT = "simd-cursor"
VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """A settled place in a worker's schedule and log (see the module docstring)."""

    horizon_ns: int
    schedule: dict[str, Any]  # SliceSchedule.state()
    position: LogPosition
    live: dict[str, Any]  # LiveStats.snapshot()


def cursor_path(events_dir: Path, worker: int) -> Path:
    return events_dir / f"w{worker:03d}.cursor"


def _pack(value: Any) -> Any:
    """numpy arrays as tagged maps, recursively (msgpack knows no arrays)."""
    if isinstance(value, np.ndarray):
        return {"__nd__": value.dtype.str, "shape": list(value.shape), "data": value.tobytes()}
    if isinstance(value, dict):
        return {k: _pack(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_pack(v) for v in value]
    return value


def _unpack(value: Any) -> Any:
    if isinstance(value, dict):
        if "__nd__" in value:
            arr = np.frombuffer(value["data"], dtype=np.dtype(value["__nd__"]))
            return arr.reshape(value["shape"]).copy()
        return {k: _unpack(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v) for v in value]
    return value


def write_cursor(path: Path, run_id: str, worker: int, lo: int, hi: int, cp: Checkpoint) -> None:
    """Replace the cursor file with `cp` (written beside it, synced, then renamed)."""
    pos = cp.position
    body = {
        "format": FORMAT,
        "version": VERSION,
        "run": run_id,
        "worker": worker,
        "slice": [lo, hi],
        "horizon": cp.horizon_ns,
        "schedule": _pack(cp.schedule),
        "position": [pos.segment, pos.offset, pos.row],
        "errors": {int(k): v for k, v in pos.errors.items()},
        "live": _pack(cp.live),
    }
    tmp = path.with_suffix(".cursor-new")
    with open(tmp, "wb") as f:
        f.write(encode_frame(body))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_cursor(path: Path, run_id: str, worker: int, lo: int, hi: int) -> Checkpoint | None:
    """The checkpoint in `path` if it is whole and this worker's, with its log position
    still inside the log; None otherwise (the worker then walks from t=0)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    frames = [f for f in scan_frames(data, 0, marked=True) if isinstance(f, tuple)]
    if not frames or frames[0][0] != 0:
        return None
    body = frames[0][2]
    try:
        if (body["format"], body["version"], body["run"], body["worker"]) != (
            FORMAT, VERSION, run_id, worker,
        ) or list(body["slice"]) != [lo, hi]:  # fmt: skip
            return None
        segment, offset, row = (int(x) for x in body["position"])
        errors = {int(k): str(v) for k, v in body["errors"].items()}
        cp = Checkpoint(
            int(body["horizon"]),
            _unpack(body["schedule"]),
            LogPosition(segment, offset, row, errors),
            _unpack(body["live"]),
        )
    except (KeyError, TypeError, ValueError):
        return None
    segment_file = path.parent / f"w{worker:03d}-{segment:06d}.simlog"
    try:
        if segment_file.stat().st_size < offset:
            return None  # the log lost what the cursor says it had
    except OSError:
        return None
    return cp


class Checkpointer:
    """Candidates of one worker, the settled one written (see the module docstring)."""

    def __init__(self, path: Path, run_id: str, worker: int, lo: int, hi: int) -> None:
        self.path = path
        self.key = (run_id, worker, lo, hi)
        self.candidates: deque[Checkpoint] = deque(maxlen=CANDIDATES)
        self.next_ns = CHECKPOINT_EVERY_NS
        self.written: int | None = None  # horizon of the cursor on disk

    def due(self, horizon_ns: int) -> bool:
        return horizon_ns >= self.next_ns

    def add(self, cp: Checkpoint) -> None:
        self.candidates.append(cp)
        self.next_ns = cp.horizon_ns + CHECKPOINT_EVERY_NS

    def settle(self, oldest_pending_ns: int | None, sync: Callable[[], None]) -> None:
        """Write the newest candidate nothing older is pending for (`sync()` first puts the
        log on disk); older candidates are dropped."""
        best = None
        for cp in self.candidates:  # strictly before: a publish due at H may be H's chunk's
            if oldest_pending_ns is None or cp.horizon_ns < oldest_pending_ns:
                best = cp
        if best is None or best.horizon_ns == self.written:
            return
        while self.candidates and self.candidates[0] is not best:
            self.candidates.popleft()
        sync()
        with contextlib.suppress(OSError):  # a cursor is a shortcut: without it, a walk
            write_cursor(self.path, *self.key, best)
            self.written = best.horizon_ns

    def take(
        self,
        horizon_ns: int,
        schedule: SliceSchedule,
        transport: Transport,
        log: EventBuffer,
        writer: SegmentWriter,
        live: LiveStats,
    ) -> None:
        """At a chunk boundary (every publish due before `horizon_ns` handed over): a new
        candidate at the log's position, then the newest settled one written."""
        oldest = transport.oldest_pending_ns()  # (hands its held-back rows to the log)
        log.flush()
        self.add(Checkpoint(horizon_ns, schedule.state(), writer.position(), live.snapshot()))
        self.settle(oldest, writer.sync)


def restore_checkpoint(
    path: Path, key: tuple[str, int, int, int], schedule: SliceSchedule, live: LiveStats
) -> Checkpoint | None:
    """A restarted worker's checkpoint, its schedule and live counters restored from it; None
    (both left as they were) when there is none that fits."""
    cp = read_cursor(path, *key)
    if cp is None:
        return None
    try:
        live_before = live.snapshot()
        live.restore(cp.live)
        try:
            schedule.restore(cp.schedule)
        except (KeyError, TypeError, ValueError):
            live.restore(live_before)
            raise
    except (KeyError, TypeError, ValueError):
        return None
    return cp
