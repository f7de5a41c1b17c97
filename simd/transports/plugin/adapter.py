"""A plugin's per-device client class, adapted onto the batch contract (simd.transports._base).

Per device: one client instance per connection; a queue of the publishes handed over, worked
through by `concurrency` tasks (one by default: in order); each publish one row, from its
completion, failure, timeout or — at the run's end — the drain. A lost connection marks the
device down (its publishes are dropped, as MQTT's are) and it connects again with jittered
exponential backoff.
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import trio

from simd.errors import UserError
from simd.log.events import (
    ACKED,
    CONNECT,
    DISCONNECT,
    DROPPED,
    FAILED,
    NULL_NS,
    OK,
    PUBLISH,
    SENT,
    TIMEOUT,
    UNSENT,
)
from simd.model.scenario import PluginOptions, fill_template
from simd.model.secrets import REDACTED, is_redacted, redact_text
from simd.model.targets import class_spec
from simd.plan.hashing import hash2, stream_key, uniform01
from simd.transports._base import (
    DeviceSet,
    PublishBatch,
    Row,
    RowStage,
    TransportContext,
    flush_every,
    set_event,
    task_nursery,
)
from simd.transports.plugin.api import ConnectionLost, Device, Message
from simd.transports.plugin.finding import construct, load_client, targets_for

CONNECT_CONCURRENCY = 256  # connects in flight at once per worker
CLOSE_BOUND_S = 2.0  # close: how long all clients' close() together may take
FLUSH_S = 0.05  # staged rows reach the log at least this often
ERROR_TEXT_MAX = 160  # a plugin's exception text, cut (the error table holds distinct texts)
_NULL = int(NULL_NS)  # no time (simd.log.events)


@dataclass
class _Pending:
    seq: int
    t_intended: int
    phase: int
    message: int
    qos: int
    payload: bytes
    t_sent: int = _NULL


@dataclass
class _Device:
    index: int  # in the worker's slice
    number: int  # in the fleet
    group: int
    info: Device
    topics: list[str]
    client: Any = None
    up: bool = False
    reconnecting: bool = False
    attempts: int = 0
    queue: deque[_Pending] = field(default_factory=deque)
    running: dict[int, _Pending] = field(default_factory=dict)  # being published, by id
    ready: trio.Event = field(default_factory=trio.Event)


class PluginTransport:
    """The transport of `plugin:module:Class` targets and entry-point schemes."""

    def __init__(self, ctx: TransportContext, url: str) -> None:
        self.scenario = ctx.scenario
        self.log = ctx.log
        self.paced_done = set_event()  # paces no publish itself (Transport.paced_done)
        self.clock = ctx.clock
        self.cls = load_client(url, ctx.scenario_dir)
        self.spec, _ = class_spec(url)
        self.targets = targets_for(url, self.scenario)
        if is_redacted(url) or any(v == REDACTED for t in self.targets for v in t.options.values()):
            raise UserError(
                f"target {redact_text(url)!r}: a secret option was taken out of run.json; give "
                "it as <name>_env (an environment variable) to resume"
            )
        self.confirms = bool(getattr(self.cls, "confirms", True))
        self.concurrency = max(1, int(getattr(self.cls, "concurrency", 1)))
        self.opts: list[PluginOptions] = [g.plugin for g in self.scenario.fleet]
        # each group's messages, resolved once (resolving builds models: never per publish)
        self.messages = [g.resolved_messages() for g in self.scenario.fleet]
        self.stage = RowStage()
        self.devices: list[_Device] = []
        self.codes: dict[str, int] = {}
        self.lo = 0
        self.closing = False
        self.tasks: trio.Nursery | None = None
        self.tasks_gone = trio.Event()
        self.outstanding = 0  # publishes queued or running, all devices
        self.idle = trio.Event()  # set when outstanding falls to 0
        self.backoff_key = stream_key(self.scenario.seed, "plugin", "backoff")

    def _code(self, text: str) -> int:
        text = redact_text(text)[:ERROR_TEXT_MAX]
        code = self.codes.get(text)
        if code is None:
            code = self.codes[text] = self.log.errors.code(text)
        return code

    # ------------------------------------------------------------------ devices

    def _make_devices(self, devices: DeviceSet) -> None:
        self.lo = int(devices.device[0]) if len(devices.device) else 0
        offsets = self.scenario.group_offsets()
        for i, (dev, gi, did) in enumerate(
            zip(devices.device.tolist(), devices.group.tolist(), devices.ids, strict=True)
        ):
            g = self.scenario.fleet[gi]
            local = dev - offsets[gi]
            fields = {"device_id": did, "index": str(local), "group": g.name}
            topics = [
                fill_template(m.topic or "", {**fields, "message": m.name})
                for m in self.messages[gi]
            ]
            info = Device(id=did, index=local, group=g.name, number=dev)
            self.devices.append(_Device(i, dev, gi, info, topics))

    def _client(self, d: _Device) -> Any:
        return construct(self.cls, self.spec, self.targets[d.group], d.info)

    def _conn_row(self, d: _Device, kind: int, status: int, t_sent: int, error: int = 0) -> None:
        now = self.clock.now_ns()
        self.stage.add(Row(d.number, -1, kind, status, t_sent=t_sent, t_done=now, error=error))

    async def connect(self, devices: DeviceSet, now_ns: int, nursery: trio.Nursery) -> None:
        """Connect every device (bounded concurrency) before t=0; returns when all tried."""
        self._make_devices(devices)
        self.tasks = await nursery.start(task_nursery, self.tasks_gone)
        nursery.start_soon(flush_every, self.stage, self.log, FLUSH_S)
        limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)
        async with trio.open_nursery() as opening:
            for d in self.devices:
                opening.start_soon(self._connect_one, d, limiter)
        for d in self.devices:
            for _ in range(self.concurrency):
                self.tasks.start_soon(self._work, d)
        self.stage.flush(self.log)

    async def _connect_one(self, d: _Device, limiter: trio.CapacityLimiter | None = None) -> None:
        t0 = self.clock.now_ns()
        client = self._client(d)
        try:
            if limiter is not None:
                async with limiter:
                    await self._connect_client(d, client)
            else:
                await self._connect_client(d, client)
        except trio.TooSlowError:
            self._conn_row(d, CONNECT, FAILED, t0, self._code("connect: timed out"))
        except Exception as exc:
            self._conn_row(d, CONNECT, FAILED, t0, self._code(f"connect: {_reason(exc)}"))
        else:
            d.client, d.up, d.attempts = client, True, 0
            self._conn_row(d, CONNECT, OK, t0)
            return
        if not self.closing:
            self._reconnect(d)

    async def _connect_client(self, d: _Device, client: Any) -> None:
        with trio.fail_after(self.opts[d.group].connect_timeout / 1e9):
            await client.connect()

    def _reconnect(self, d: _Device) -> None:
        if not d.reconnecting and self.tasks is not None:
            d.reconnecting = True
            self.tasks.start_soon(self._reconnect_later, d)

    async def _reconnect_later(self, d: _Device) -> None:
        """Jittered exponential backoff (deterministic jitter per device and attempt)."""
        opts = self.opts[d.group]
        while not d.up and not self.closing:
            d.attempts += 1
            base = min(opts.reconnect_max, opts.reconnect_min * 2 ** min(d.attempts - 1, 20))
            key = hash2(self.backoff_key, np.array([d.number]), np.array([d.attempts]))
            await trio.sleep(base * (0.5 + float(uniform01(key)[0])) / 1e9)
            if not self.closing:
                d.reconnecting = False
                await self._connect_one(d)
                return
        d.reconnecting = False

    async def _lost(self, d: _Device, client: Any, reason: str) -> None:
        """`client`'s connection is gone (or in an unknown state): a disconnect row, the
        client closed, then a new one connects in the background."""
        if not d.up or d.client is not client:
            return  # another of the device's publishers saw it first
        d.up = False
        d.client = None
        now = self.clock.now_ns()
        self._conn_row(d, DISCONNECT, FAILED, now, self._code(f"connection lost: {reason}"))
        await _close_quietly(client, 1.0)
        if not self.closing:
            self._reconnect(d)

    # ------------------------------------------------------------------ publishing

    async def publish(self, batch: PublishBatch) -> None:
        """Queue each publish on its device; each device works through its queue."""
        payloads = batch.payload.to_list()
        cols = zip(
            (batch.device - self.lo).tolist(),
            batch.seq.tolist(),
            batch.t_intended.tolist(),
            batch.phase.tolist(),
            batch.message.tolist(),
            batch.qos.tolist(),
            payloads,
            strict=True,
        )
        for i, seq, t_int, phase, msg, qos, body in cols:
            d = self.devices[i]
            d.queue.append(_Pending(seq, t_int, phase, msg, qos, body))
            d.ready.set()
        self.outstanding += len(payloads)
        self.stage.flush(self.log)

    def _row(self, d: _Device, p: _Pending, status: int, t_done: int, reason: str = "") -> None:
        """The publish's one row; it no longer counts as outstanding."""
        self.outstanding -= 1
        if self.outstanding <= 0:
            self.idle.set()
        self.stage.add(
            Row(d.number, p.seq, PUBLISH, status, p.phase, p.message, p.t_intended, p.t_sent,
                t_done, len(p.payload), p.qos, self._code(reason) if reason else 0)
        )  # fmt: skip

    async def _work(self, d: _Device) -> None:
        """One of a device's publishers: takes the next publish of its queue, in order."""
        while True:
            if not d.queue:
                d.ready = trio.Event()
                await d.ready.wait()
                continue
            p = d.queue.popleft()
            client = d.client
            if not d.up or client is None:
                self._row(d, p, DROPPED, _NULL, "not connected")
                continue
            d.running[id(p)] = p
            try:
                await self._publish_one(d, client, p)
            finally:
                d.running.pop(id(p), None)

    async def _publish_one(self, d: _Device, client: Any, p: _Pending) -> None:
        topic = d.topics[p.message] if p.message < len(d.topics) else ""
        name = self.messages[d.group][p.message].name
        message = Message(topic=topic, payload=p.payload, qos=p.qos, seq=p.seq, name=name)
        p.t_sent = self.clock.now_ns()
        timeout = self.opts[d.group].publish_timeout
        lost = None
        with trio.move_on_after(timeout / 1e9) as scope:
            try:
                await client.publish(message)
            except (ConnectionLost, OSError) as exc:
                lost = _reason(exc)
            except Exception as exc:
                self._row(d, p, FAILED, self.clock.now_ns(), _reason(exc))
                return
        if lost is not None:
            self._row(d, p, FAILED, self.clock.now_ns(), f"connection lost: {lost}")
            await self._lost(d, client, lost)
        elif scope.cancelled_caught:
            self._row(d, p, TIMEOUT, _NULL, "no completion within publish_timeout")
            await self._lost(d, client, "a publish timed out (its connection's state is unknown)")
        else:
            self._row(d, p, ACKED if self.confirms else SENT, self.clock.now_ns())

    def oldest_pending_ns(self) -> int | None:
        """The oldest publish queued or being published (Transport)."""
        self.stage.flush(self.log)
        times = [d.queue[0].t_intended for d in self.devices if d.queue]
        times += [p.t_intended for d in self.devices for p in d.running.values()]
        return min(times, default=None)

    async def drain(self, deadline_ns: int) -> None:
        """Wait for the queues to empty; then what is still running times out and what is
        still queued is unsent."""
        try:
            with trio.move_on_at(self.clock.deadline(deadline_ns)):
                while self.outstanding > 0:
                    self.idle = trio.Event()
                    await self.idle.wait()
        finally:
            self.closing = True
            if self.tasks is not None:
                self.tasks.cancel_scope.cancel()
            for d in self.devices:
                for p in d.running.values():
                    self._row(d, p, TIMEOUT, _NULL, "no completion before the run ended")
                d.running.clear()
                for p in d.queue:
                    self._row(d, p, UNSENT, _NULL, "not sent before the run ended")
                d.queue.clear()
            self.stage.flush(self.log)

    async def close(self, now_ns: int) -> None:
        """Close every connected client, all at once within CLOSE_BOUND_S."""
        self.closing = True
        if self.tasks is not None:
            self.tasks.cancel_scope.cancel()
            with trio.move_on_after(2):
                await self.tasks_gone.wait()
        done: set[int] = set()
        with trio.move_on_after(CLOSE_BOUND_S):
            async with trio.open_nursery() as closing:
                for d in self.devices:
                    if d.up:
                        closing.start_soon(self._close_one, d, now_ns, done)
        why = self._code(f"close not done within {CLOSE_BOUND_S:g} s")
        for d in self.devices:
            if d.up and d.index not in done:
                self._conn_row(d, DISCONNECT, FAILED, now_ns, why)
            d.up = False
        self.stage.flush(self.log)

    async def _close_one(self, d: _Device, now_ns: int, done: set[int]) -> None:
        try:
            await d.client.close()
        except Exception as exc:
            self._conn_row(d, DISCONNECT, FAILED, now_ns, self._code(f"close: {_reason(exc)}"))
        else:
            self._conn_row(d, DISCONNECT, OK, now_ns)
        done.add(d.index)


async def _close_quietly(client: Any, bound_s: float) -> None:
    """Close a client whose connection is already gone; what it raises does not matter."""
    if client is None:
        return
    # the connection is gone; a failing close tells nothing new
    with trio.move_on_after(bound_s), contextlib.suppress(Exception):
        await client.close()


def _reason(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
