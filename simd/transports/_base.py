"""The transport contract every transport implements (docs/architecture.md, Where to add)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import trio

from simd.clock import RunClock
from simd.log.events import EventBuffer
from simd.log.ragged import Ragged
from simd.model.scenario import Scenario


@dataclass(frozen=True)
class TransportContext:
    """What a transport may know about the run it serves."""

    scenario: Scenario
    worker: int
    workers: int
    log: EventBuffer
    clock: RunClock
    scenario_dir: Path
    t0_epoch_ns: int = 0  # wall-clock epoch of the run's t=0
    # closed-model users (http) build their own requests: (group, local device, seq, intended
    # ns) -> (message index, phase index, payload); and start at these seqs after a restart
    render: Callable[[int, int, int, int], tuple[int, int, bytes]] | None = None
    first_seq: np.ndarray | None = None  # per device of the slice


@dataclass
class DeviceSet:
    """The devices of one worker's slice: global index, group index, id."""

    device: np.ndarray  # int64 global index
    group: np.ndarray  # int16
    ids: list[str]


@dataclass
class PublishBatch:
    """Publishes handed to a transport at one wake-up, in send order.

    t_sent is when the worker sent them (virtual ns); payload row i belongs to publish i.
    """

    device: np.ndarray  # int64
    seq: np.ndarray  # int64
    t_intended: np.ndarray  # int64
    t_sent: np.ndarray  # int64
    phase: np.ndarray  # int16
    message: np.ndarray  # uint8
    group: np.ndarray  # int16
    qos: np.ndarray  # uint8
    payload: Ragged

    def __len__(self) -> int:
        return len(self.seq)

    def take(self, rows: np.ndarray) -> PublishBatch:
        """The publishes at `rows`, in that order (copies)."""
        return PublishBatch(
            device=self.device[rows],
            seq=self.seq[rows],
            t_intended=self.t_intended[rows],
            t_sent=self.t_sent[rows],
            phase=self.phase[rows],
            message=self.message[rows],
            group=self.group[rows],
            qos=self.qos[rows],
            payload=self.payload.take(rows),
        )


class RowStage:
    """Rows as Python tuples, appended to the event buffer in one vector call (transports that
    finish publishes one at a time stage them here and flush at each wake-up)."""

    NAMES = (
        "device",
        "seq",
        "kind",
        "status",
        "phase",
        "message",
        "t_intended",
        "t_sent",
        "t_done",
        "bytes",
        "qos",
        "error",
    )

    def __init__(self) -> None:
        self.rows: list[tuple[int, ...]] = []

    def add(self, *row: int) -> None:
        """One row: the NAMES, in order."""
        self.rows.append(row)

    def flush(self, log: EventBuffer) -> None:
        if not self.rows:
            return
        cols = np.array(self.rows, dtype=np.int64).T
        self.rows = []
        log.append(cols.shape[1], **{n: cols[i] for i, n in enumerate(self.NAMES)})


class Transport(Protocol):
    """Connect a worker's devices, publish batches, drain, close. Trio-native.

    Guarantees the caller may rely on:
    - Every publish handed to `publish` produces exactly one row in `ctx.log` with a final
      status (acked, sent, timeout, error, dropped, unsent), either during `publish` or later
      (when an ack arrives), and at the latest when `drain` returns.
    - `publish` does not block on the network for a whole batch: it writes what it can (one
      socket write per connection per wake-up) and tracks the rest as in flight.
    Not guaranteed: rows appear in send order; acks arrive before the next `publish`.
    Errors: a target that cannot be reached is logged as connect/publish error rows, not raised;
    a transport raises only for what makes the whole run impossible (UserError/RunError).
    Cancellation: `drain` and `close` are safe to call after a cancelled `publish`.
    """

    # True when devices of this worker listen (subscribe and answer): the worker then keeps
    # them connected until the run's end, not only while its slice has publishes due
    listening: bool

    async def connect(self, devices: DeviceSet, now_ns: int, nursery: trio.Nursery) -> None:
        """Open a session per device (logging a connect row each attempt). Background tasks
        (readers, reconnects) go in `nursery`, which outlives `close`."""

    async def publish(self, batch: PublishBatch) -> None:
        """Send a batch; log rows as their final status becomes known."""

    async def drain(self, deadline_ns: int) -> None:
        """Wait (until the run-time deadline) for in-flight publishes; log the rest as timeout.
        Every in-flight publish gets its row even when the wait is cancelled."""

    async def close(self, now_ns: int) -> None:
        """Close every session (logging a disconnect row each where sessions exist)."""
