"""`null:` discards every publish: it measures the generator's own ceiling."""

from __future__ import annotations

import numpy as np
import trio

from simd.log.events import CONNECT, OK, PUBLISH, SENT
from simd.transports._base import DeviceSet, PublishBatch, TransportContext, set_event


class NullTransport:
    def __init__(self, ctx: TransportContext) -> None:
        self.log = ctx.log
        self.paced_done = set_event()  # paces no publish itself (Transport.paced_done)

    async def connect(self, devices: DeviceSet, now_ns: int, nursery: trio.Nursery) -> None:
        n = len(devices.device)
        self.log.append(
            n, device=devices.device, kind=CONNECT, status=OK, t_sent=now_ns, t_done=now_ns
        )

    async def publish(self, batch: PublishBatch) -> None:
        self.log.append(
            len(batch),
            device=batch.device,
            seq=batch.seq,
            kind=PUBLISH,
            status=SENT,
            phase=batch.phase,
            message=batch.message,
            t_intended=batch.t_intended,
            t_sent=batch.t_sent,
            t_done=batch.t_sent,
            bytes=np.diff(batch.payload.offsets),
            qos=batch.qos,
        )

    async def drain(self, deadline_ns: int) -> None:
        return None

    def oldest_pending_ns(self) -> int | None:
        return None  # every publish has its row when `publish` returns

    async def close(self, now_ns: int) -> None:
        return None
