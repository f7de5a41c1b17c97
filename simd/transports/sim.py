"""`sim:` models a system under test in virtual time, reproducible to the byte.

Per publish, from (seed, device, seq) only: a network latency drawn from a lognormal with the
scenario's p50 and p99; an injected error with probability `error_rate`; an error during outage
windows. With a `capacity`, the worker's share of it (capacity / workers) is a FIFO server:
a publish waits for the server, is rejected when its wait would pass `queue_limit`, and times
out when its total latency passes `timeout`. So latency grows, then requests fail, once the
offered rate passes capacity.

Acks are modelled as arriving at their t_done: a publish stays in flight until the run's clock
passes it, so a stop drains them for real (bounded by drain_timeout; the rest time out).
"""

from __future__ import annotations

import math

import numpy as np
import trio

from simd.log.events import ACKED, CONNECT, FAILED, NULL_NS, OK, PUBLISH, TIMEOUT
from simd.plan.hashing import hash2, stream_key, uniform01
from simd.transports._base import DeviceSet, PublishBatch, TransportContext, set_event

Z99 = 2.3263478740408408  # standard normal quantile at 0.99


class SimTransport:
    def __init__(self, ctx: TransportContext) -> None:
        opts = ctx.scenario.sim
        self.opts = opts
        self.log = ctx.log
        self.paced_done = set_event()  # paces no publish itself (Transport.paced_done)
        self.clock = ctx.clock
        self.in_flight: list[dict[str, np.ndarray]] = []
        self.mu = math.log(opts.latency_p50)
        self.sigma = math.log(opts.latency_p99 / opts.latency_p50) / Z99
        self.lat_key = stream_key(ctx.scenario.seed, "sim", "latency")
        self.err_key = stream_key(ctx.scenario.seed, "sim", "error")
        self.service_ns = (1e9 * ctx.workers / opts.capacity) if opts.capacity else 0.0
        self.busy_until = 0.0
        self.outages = [(o.start, o.end) for o in opts.outages]
        self.code_outage = self.log.errors.code("outage: target unavailable")
        self.code_injected = self.log.errors.code("injected error")
        self.code_full = self.log.errors.code("overloaded: queue full")

    async def connect(self, devices: DeviceSet, now_ns: int, nursery: trio.Nursery) -> None:
        n = len(devices.device)
        self.log.append(
            n, device=devices.device, kind=CONNECT, status=OK, t_sent=now_ns, t_done=now_ns
        )

    def _latency(self, device: np.ndarray, seq: np.ndarray) -> np.ndarray:
        u1 = uniform01(hash2(self.lat_key, device, seq))
        u2 = uniform01(hash2(self.lat_key ^ 0x5DEECE66D, device, seq))
        z = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
        return np.exp(self.mu + self.sigma * z)

    def _queue(self, t_sent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """FIFO server: (start of service, rejected) per publish, in send order."""
        start = np.empty(len(t_sent), dtype=np.float64)
        rejected = np.zeros(len(t_sent), dtype=bool)
        busy = self.busy_until
        service = self.service_ns
        limit = float(self.opts.queue_limit)
        sent = t_sent.tolist()
        for i in range(len(sent)):
            s = sent[i]
            begin = busy if busy > s else s
            if begin - s > limit:
                rejected[i] = True
                start[i] = s
            else:
                start[i] = begin
                busy = begin + service
        self.busy_until = busy
        return start, rejected

    async def publish(self, batch: PublishBatch) -> None:
        n = len(batch)
        t_sent = batch.t_sent
        lat = self._latency(batch.device, batch.seq)
        if self.service_ns:
            start, rejected = self._queue(t_sent)
            done = start + self.service_ns + lat
        else:
            rejected = np.zeros(n, dtype=bool)
            done = t_sent + lat
        t_done = np.rint(done).astype(np.int64)
        status = np.full(n, ACKED, dtype=np.uint8)
        error = np.zeros(n, dtype=np.uint16)
        timed_out = (t_done - t_sent) > self.opts.timeout
        status[timed_out] = TIMEOUT
        if self.opts.error_rate > 0:
            inj = uniform01(hash2(self.err_key, batch.device, batch.seq)) < self.opts.error_rate
            status[inj] = FAILED
            error[inj] = self.code_injected
        status[rejected] = FAILED
        error[rejected] = self.code_full
        for a, b in self.outages:
            down = (t_sent >= a) & (t_sent < b)
            status[down] = FAILED
            error[down] = self.code_outage
        t_done = np.where(
            status == ACKED, t_done, np.where(status == TIMEOUT, t_sent + self.opts.timeout, t_sent)
        )
        self.in_flight.append(
            dict(
                device=batch.device,
                seq=batch.seq,
                status=status,
                phase=batch.phase,
                message=batch.message,
                t_intended=batch.t_intended,
                t_sent=t_sent,
                t_done=t_done,
                bytes=np.diff(batch.payload.offsets),
                qos=batch.qos,
                error=error,
            )
        )
        self._release(int(t_sent[-1]) if n else 0)

    def _release(self, now_ns: int, final: bool = False) -> None:
        """Log the publishes whose outcome time has come (all of them when final)."""
        keep = []
        for rows in self.in_flight:
            done = rows["t_done"] <= now_ns
            if final or done.all():
                self.log.append(len(done), kind=PUBLISH, **rows)
            elif done.any():
                self.log.append(
                    int(done.sum()), kind=PUBLISH, **{k: v[done] for k, v in rows.items()}
                )
                keep.append({k: v[~done] for k, v in rows.items()})
            else:
                keep.append(rows)
        self.in_flight = keep

    async def drain(self, deadline_ns: int) -> None:
        """Wait (in run time) for the last modelled ack, at most until the deadline."""
        try:
            if self.in_flight:
                last = max(int(rows["t_done"].max()) for rows in self.in_flight)
                await self.clock.sleep_until_ns(min(last, deadline_ns))
        finally:  # cancelled or not, every publish gets its row
            now = self.clock.now_ns()
            for rows in self.in_flight:
                late = rows["t_done"] > now
                rows["status"][late] = TIMEOUT
                rows["t_done"][late] = NULL_NS
            self._release(now, final=True)

    async def close(self, now_ns: int) -> None:
        return None

    def oldest_pending_ns(self) -> int | None:
        return min(
            (int(r["t_intended"].min()) for r in self.in_flight if len(r["seq"])), default=None
        )
