"""Where a restarted worker stands, read from its own log, and the rows it owes.

A worker that died (kill -9, OOM, a machine reboot) left a log whose frames are whole up to a
torn tail (which SegmentWriter truncates on resume). Per device of its slice that log holds the
publish rows whose outcome was known: mostly seq 0..m in a run, with holes where a publish was
in flight when the worker died. The resumed worker must log every planned (device, seq) exactly
once: it walks the deterministic schedule up to the instant it resumes, and logs each planned
publish that has no row yet as `missed` (in flight at the crash: outcome unknown; due while it
was down: never sent), then continues the schedule from there. Nothing is sent twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simd.errors import LogFormatError
from simd.log.eventlog import LogPosition, read_segment
from simd.log.events import NULL_NS, PUBLISH
from simd.plan.schedule import Chunk, SliceSchedule

MISSED_TEXT = "the worker died before logging an outcome, or was down when it was due"


@dataclass
class LogState:
    """What one worker's log says about its slice [lo, hi) (from a checkpoint on: about the
    publishes due at or after the checkpoint's horizon)."""

    lo: int
    max_seq: np.ndarray  # per device of the slice, the highest logged publish seq (-1: none)
    min_seq: np.ndarray  # ... and the lowest (NO_SEQ: none)
    count: np.ndarray  # publish rows per device
    logged: dict[int, np.ndarray] = field(default_factory=dict)  # slice index -> seqs (holes)
    last_intended_ns: int = -1  # the latest intended time of a logged publish
    rows: int = 0

    @property
    def empty(self) -> bool:
        return self.rows == 0


NO_SEQ = np.iinfo(np.int64).max


def read_log_state(
    paths: list[Path],
    lo: int,
    hi: int,
    observe: Callable[[dict[str, np.ndarray], int], None] | None = None,
    start: LogPosition | None = None,
    since_ns: int | None = None,
) -> LogState:
    """Scan a worker's segments (oldest first; from a checkpoint's `start` on, counting only
    publishes due at or after its horizon `since_ns`); `observe(cols, n)` sees every frame
    read (so live counters can be rebuilt). Devices whose rows are not one run of seqs get
    their seqs kept."""
    n = hi - lo
    state = LogState(
        lo,
        np.full(n, -1, dtype=np.int64),
        np.full(n, NO_SEQ, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
    )
    frames = []
    for p in paths:
        number = int(p.stem.rsplit("-", 1)[1])
        if start is not None and number < start.segment:
            continue
        offset = start.offset if start is not None and number == start.segment else None
        try:
            _, batches = read_segment(p, offset)
        except LogFormatError:
            continue  # torn at creation: no rows
        for b in batches:
            state.rows += b.n
            if observe is not None:
                observe(b.cols, b.n)
            dev = b.cols["device"]
            t_all = b.cols["t_intended"]
            pub = (b.cols["kind"] == PUBLISH) & (dev >= lo) & (dev < hi)
            t = t_all[pub & (t_all != NULL_NS)]
            if len(t):
                state.last_intended_ns = max(state.last_intended_ns, int(t.max()))
            if since_ns is not None:
                pub &= t_all >= since_ns
            if not pub.any():
                continue
            local = dev[pub].astype(np.int64) - lo
            seq = b.cols["seq"][pub].astype(np.int64)
            np.maximum.at(state.max_seq, local, seq)
            np.minimum.at(state.min_seq, local, seq)
            state.count += np.bincount(local, minlength=n)
            frames.append((local, seq))
    holes = np.nonzero((state.count > 0) & (state.count != state.max_seq - state.min_seq + 1))[0]
    if len(holes):
        keep = np.zeros(n, dtype=bool)
        keep[holes] = True
        parts: dict[int, list[np.ndarray]] = {}
        for local, seq in frames:
            sel = keep[local]
            for d in np.unique(local[sel]).tolist():
                parts.setdefault(d, []).append(seq[sel][local[sel] == d])
        state.logged = {d: np.unique(np.concatenate(v)) for d, v in parts.items()}
    return state


def owed_rows(
    state: LogState, schedule: SliceSchedule, until_ns: int, span_ns: int, from_ns: int = 0
) -> list[tuple[Chunk, np.ndarray]]:
    """Walk `schedule` (fresh, or restored at `from_ns` from a checkpoint whose `state` holds
    the rows logged after it) up to `until_ns`; return, chunk by chunk, the planned publishes
    with no row yet (chunk, mask): above a device's highest logged seq, or a hole below it. The
    schedule is left at `until_ns`, ready to continue. (A publish in flight when the worker
    died and one due while it was down look alike in the log: neither has an outcome.)"""
    out = []
    t = from_ns
    while t < until_ns:
        t = min(until_ns, t + span_ns)
        c = schedule.chunk_until(t)
        if len(c) == 0:
            continue
        local = c.device - state.lo
        owed = (c.seq > state.max_seq[local]) | (c.seq < state.min_seq[local])
        for d, seqs in state.logged.items():
            sel = np.nonzero((local == d) & ~owed)[0]
            if len(sel):
                owed[sel] = ~np.isin(c.seq[sel], seqs)
        if owed.any():
            out.append((c, owed))
    return out
