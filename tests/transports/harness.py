"""Drive one transport in-process through the contract (simd.transports._base.Transport), as a
worker does — connect, publish batches, drain, close — and collect every row it logs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trio

from simd.clock import RunClock, parse_clock
from simd.log.events import COLUMN_NAMES, EventBuffer
from simd.log.ragged import Ragged
from simd.model.scenario import Scenario, parse_scenario
from simd.transports import DeviceSet, PublishBatch, Transport, TransportContext, open_transport

FINAL = {"acked", "sent", "timeout", "error", "dropped", "unsent"}


@dataclass
class Under:
    """A transport under test: its target and what its scenario group needs; `stall` and
    `restart` act on the real server behind it (None where there is none)."""

    name: str
    url: str
    group: dict[str, Any] = field(default_factory=dict)
    top: dict[str, Any] = field(default_factory=dict)
    sessions: bool = True  # devices hold connections: connect and disconnect rows
    bodies: bool = True  # payloads in the batch (an HTTP GET's is empty, as the worker's is)
    folder: Path = Path(".")
    stall: Callable[[], None] | None = None
    unstall: Callable[[], None] | None = None
    restart: Callable[[], None] | None = None


class Rows:
    """What a transport logged: columns (kind and status as names) and error texts."""

    def __init__(self, chunks: list[dict[str, np.ndarray]], errors: dict[int, str]) -> None:
        from simd.log.events import KINDS, STATUSES

        self.cols = {
            n: np.concatenate([c[n] for c in chunks]) if chunks else np.zeros(0, np.int64)
            for n in COLUMN_NAMES
        }
        self.kind = np.array([KINDS[k] for k in self.cols["kind"]], dtype=object)
        self.status = np.array([STATUSES[s] for s in self.cols["status"]], dtype=object)
        self.errors = errors

    def of(self, kind: str) -> np.ndarray:
        return self.kind == kind

    def publishes(self) -> list[tuple[int, int]]:
        sel = self.of("publish")
        return list(
            zip(self.cols["device"][sel].tolist(), self.cols["seq"][sel].tolist(), strict=True)
        )

    def statuses(self, kind: str = "publish") -> dict[str, int]:
        values, counts = np.unique(self.status[self.of(kind)], return_counts=True)
        return dict(zip(values.tolist(), counts.tolist(), strict=True))

    def texts(self, kind: str = "publish") -> set[str]:
        codes = set(self.cols["error"][self.of(kind)].tolist()) - {0}
        return {self.errors.get(c, f"code {c}") for c in codes}


def scenario_for(under: Under, devices: int, qos: int) -> Scenario:
    group = {"name": "g", "count": devices, "rate": 1.0, "qos": qos, **under.group}
    return parse_scenario(
        {
            "name": "conformance",
            "duration": "60s",
            "target": under.url,
            "fleet": [group],
            **under.top,
        }
    )


class Harness:
    """`async with Harness(under) as h:` connects `devices` devices; `await h.publish()` hands
    over one publish per device (seq = its round); `await h.finish()` drains and closes."""

    def __init__(self, under: Under, devices: int = 6, qos: int = 1) -> None:
        self.under = under
        self.scenario = scenario_for(under, devices, qos)
        self.devices = devices
        self.qos = qos
        self.chunks: list[dict[str, np.ndarray]] = []
        self.errors: dict[int, str] = {}
        self.rounds = 0
        self.finished = False

    def _sink(self, cols: dict[str, np.ndarray], n: int, errors: dict[int, str], _s: Any) -> None:
        self.chunks.append({k: v[:n].copy() for k, v in cols.items()})
        self.errors.update(errors)

    async def __aenter__(self) -> Harness:
        self.clock = RunClock(parse_clock("real"), time.time_ns())
        self.log = EventBuffer(self._sink, capacity=4096)
        ctx = TransportContext(self.scenario, 0, 1, self.log, self.clock, self.under.folder)
        self.transport: Transport = open_transport(self.under.url, ctx)
        self._nursery_cm = trio.open_nursery()
        self.nursery = await self._nursery_cm.__aenter__()
        ids = [f"g-{i:05d}" for i in range(self.devices)]
        device_set = DeviceSet(
            np.arange(self.devices, dtype=np.int64), np.zeros(self.devices, np.int16), ids
        )
        with trio.fail_after(30):
            await self.transport.connect(device_set, self.clock.now_ns(), self.nursery)
        return self

    def batch(self) -> PublishBatch:
        n = self.devices
        now = self.clock.now_ns()
        seq = np.full(n, self.rounds, dtype=np.int64)
        self.rounds += 1
        body = [
            b'{"device":%d,"seq":%d}' % (d, self.rounds - 1) if self.under.bodies else b""
            for d in range(n)
        ]
        return PublishBatch(
            device=np.arange(n, dtype=np.int64),
            seq=seq,
            t_intended=np.full(n, now, np.int64),
            t_sent=np.full(n, now, np.int64),
            phase=np.zeros(n, np.int16),
            message=np.zeros(n, np.uint8),
            group=np.zeros(n, np.int16),
            qos=np.full(n, self.qos, np.uint8),
            payload=Ragged.from_list(body),
        )

    async def publish(self) -> PublishBatch:
        batch = self.batch()
        with trio.fail_after(30):  # publish must not block on the network for long
            await self.transport.publish(batch)
        return batch

    async def finish(self, drain_s: float = 5.0) -> Rows:
        if not self.finished:
            self.finished = True
            await self.transport.drain(self.clock.now_ns() + int(drain_s * 1e9))
            with trio.fail_after(10):
                await self.transport.close(self.clock.now_ns())
            self.nursery.cancel_scope.cancel()
            await self._nursery_cm.__aexit__(None, None, None)
        self.log.flush()
        return Rows(self.chunks, self.errors)

    def rows(self) -> Rows:
        """The rows so far (flushing what the transport staged)."""
        self.log.flush()
        return Rows(self.chunks, self.errors)

    async def __aexit__(self, *exc: object) -> None:
        if not self.finished:
            self.finished = True
            self.nursery.cancel_scope.cancel()
            await self._nursery_cm.__aexit__(None, None, None)


async def wait_for(pred: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Until `pred()` holds (facts, not the machine's pace), polling on trio's clock."""
    with trio.fail_after(timeout_s):
        while not pred():
            await trio.sleep(0.02)
