"""The transport contract every transport implements (docs/architecture.md, Where to add)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import trio

from simd.clock import RunClock
from simd.log.events import NO_PHASE, NULL_NS, EventBuffer
from simd.log.ragged import Ragged
from simd.model.scenario import Scenario


@dataclass(frozen=True)
class SelfPacing:
    """What a transport that paces publishes itself needs from the worker: closed-model users
    (fleet.http.users) send their next request when the last one ended, so they cannot be
    scheduled ahead. `render(group, local device, seq, intended ns)` gives one publish's
    (message index, phase index, payload); `first_seq` (per device of the slice) is where each
    resumes after a worker restart, None on a fresh start."""

    render: Callable[[int, int, int, int], tuple[int, int, bytes]]
    first_seq: np.ndarray | None = None


@dataclass(frozen=True)
class TransportContext:
    """What a transport may know about the run it serves."""

    scenario: Scenario
    worker: int
    workers: int
    log: EventBuffer
    clock: RunClock
    scenario_dir: Path
    pacing: SelfPacing | None = None  # for publishes the transport paces itself, if any


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


_NULL = int(NULL_NS)


class Row(NamedTuple):
    """One event row, by name (the log's columns; simd.log.events): what is not given is
    absent (no phase, no time, no bytes, no error)."""

    device: int
    seq: int
    kind: int
    status: int
    phase: int = NO_PHASE
    message: int = 0
    t_intended: int = _NULL
    t_sent: int = _NULL
    t_done: int = _NULL
    bytes: int = 0
    qos: int = 0
    error: int = 0


class RowStage:
    """Rows staged one at a time and appended to the event buffer in one vector call
    (transports that finish publishes one at a time stage them here and flush at each
    wake-up)."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def flush(self, log: EventBuffer) -> None:
        if not self.rows:
            return
        cols = np.array(self.rows, dtype=np.int64).T
        self.rows = []
        log.append(cols.shape[1], **{n: cols[i] for i, n in enumerate(Row._fields)})


def set_event() -> trio.Event:
    """An event already set (Transport.paced_done of a transport that paces nothing itself)."""
    event = trio.Event()
    event.set()
    return event


async def task_nursery(gone: trio.Event, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """A nursery for a transport's own tasks, handed back by `nursery.start` so the transport
    can cancel them (at drain's end) apart from the worker's; `gone` is set when they ended."""
    try:
        async with trio.open_nursery() as n:
            task_status.started(n)
            await trio.sleep_forever()
    finally:
        gone.set()


async def flush_every(stage: RowStage, log: EventBuffer, interval_s: float) -> None:
    """Staged rows reach the event buffer at least every `interval_s` (a background task)."""
    while True:
        await trio.sleep(interval_s)
        stage.flush(log)


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

    # Set when every publish the transport paces itself (SelfPacing) has been sent; set from
    # `connect` on by a transport that paces none. The worker waits on it (until the run's
    # end) before it drains, when its slice has closed-model groups.
    paced_done: trio.Event

    async def connect(self, devices: DeviceSet, now_ns: int, nursery: trio.Nursery) -> None:
        """Open a session per device (logging a connect row each attempt), before the run's
        t=0 where it can (a group with a connect_rate may go on connecting in the background).
        Background tasks (readers, reconnects) go in `nursery`, which outlives `close`."""

    async def publish(self, batch: PublishBatch) -> None:
        """Send a batch; log rows as their final status becomes known."""

    async def drain(self, deadline_ns: int) -> None:
        """Wait (until the run-time deadline) for in-flight publishes; log the rest as timeout.
        Every in-flight publish gets its row even when the wait is cancelled."""

    async def close(self, now_ns: int) -> None:
        """Close every session (logging a disconnect row each where sessions exist)."""

    def oldest_pending_ns(self) -> int | None:
        """The intended time of the oldest publish handed to `publish` that has no row yet
        (in flight, queued, waiting for a connection or for room), None when there is none:
        what a worker's checkpoint needs to know which part of the schedule is settled. Rows
        the transport has made but holds back are first handed to `ctx.log`."""
