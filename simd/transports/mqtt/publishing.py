"""Publishing over a worker's MQTT clients: batches in, packets to sessions, rows out.

A batch is split by qos: qos 0 rows are encoded vectorised and logged `sent` at once; qos 1/2
rows take packet ids from their client's session (up to its window), are encoded vectorised
with them and go in flight (simd.transports.mqtt.inflight), tagged with their row key, until
the session reports their ack. Rows due while their device's first connection is still being
made wait for it (a device publishes once it is connected: late, and the latency from the
intended time shows it) and are `dropped` if it fails; rows whose client is not connected
otherwise are `dropped`; rows beyond a full window are dropped or wait for room
(mqtt.window_full = "wait", up to publish_timeout: the worker's schedule waits with them, so a
slow target shows as lag, not as memory).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import trio

from simd.clock import RunClock
from simd.log.events import DROPPED, FAILED, NULL_NS, PUBLISH, SENT, TIMEOUT, EventBuffer
from simd.log.ragged import Ragged
from simd.model.scenario import Scenario
from simd.transports._base import PublishBatch, RowStage
from simd.transports.mqtt import codec as c
from simd.transports.mqtt.clients import Client
from simd.transports.mqtt.commands import Commands
from simd.transports.mqtt.encoder import BatchEncoder
from simd.transports.mqtt.inflight import InFlight
from simd.transports.mqtt.reasons import reason_text
from simd.transports.mqtt.session import Completed

_NULL = int(NULL_NS)  # no time (simd.log.events)


class Publisher:
    """The publish path of one worker's MQTT transport (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        clients: list[Client],
        encoder: BatchEncoder,
        log: EventBuffer,
        clock: RunClock,
        code: Callable[[str], int],
        commands: Commands | None,
    ) -> None:
        self.clients = clients
        self.encoder = encoder
        self.log = log
        self.clock = clock
        self.code = code
        self.commands = commands
        self.stage = RowStage()
        self.inflight = InFlight()
        self.lo = clients[0].device if clients else 0
        self.up = np.zeros(len(clients), dtype=bool)  # per client: can publish now
        self.starting = np.zeros(len(clients), dtype=bool)  # its first handshake is to come
        self.held: dict[int, list[PublishBatch]] = {}  # per starting client: rows due already
        self.room_oldest: dict[int, int] = {}  # per batch in send_when_room: its oldest row
        fleet = scenario.fleet
        self.timeouts = [g.mqtt.publish_timeout for g in fleet]
        self.timeout_of = np.array(self.timeouts, dtype=np.int64)
        self.wait_for_room = np.array([g.mqtt.window_full == "wait" for g in fleet])
        self.progress = trio.Event()  # set (and replaced) when publishes finished and
        self.waiting = 0  # ... someone waits for that: a full window, the drain

    # ------------------------------------------------------------- sending

    async def publish(self, batch: PublishBatch) -> None:
        """Send a batch; rows whose window is full and may wait are retried as acks make room,
        until their group's publish_timeout."""
        if self.encoder.stamping:
            batch = self.encoder.stamped(batch)
        if self.commands is not None and self.commands.commanders:
            self.commands.sent(batch)
        waiting = self._publish_now(batch)
        if waiting is not None:
            await self.send_when_room(batch.take(waiting))  # its own arrays: t_sent is set below

    async def send_when_room(self, sub: PublishBatch) -> None:
        """Send rows that found their window full as acks make room, until their group's
        publish_timeout; then they are dropped."""
        deadline = self.clock.now_ns() + int(self.timeout_of[sub.group].min())
        key = id(sub)
        self.room_oldest[key] = int(sub.t_intended.min())
        try:
            await self._retry_until(sub, deadline)
        finally:
            del self.room_oldest[key]

    async def _retry_until(self, sub: PublishBatch, deadline: int) -> None:
        while True:
            await self.wait_progress(self.clock.deadline(deadline))  # room made, or the end
            now = self.clock.now_ns()
            if now >= deadline:
                self._log_dropped(sub, np.arange(len(sub)), self.code("in-flight window full"))
                return
            sub.t_sent[:] = now
            rest = self._publish_now(sub)
            if rest is None:
                return
            if len(rest) < len(sub):
                sub = sub.take(rest)

    def connected(self, index: int) -> list[PublishBatch]:
        """Client `index` is up: the rows it held while starting go now (sent late, in their
        order); returns those that found the window full, for send_when_room."""
        self.starting[index] = False
        rest = []
        now = self.clock.now_ns()
        for sub in self.held.pop(index, []):
            sub.t_sent[:] = now
            waiting = self._publish_now(sub)
            if waiting is not None:
                rest.append(sub.take(waiting))
        return rest

    def start_failed(self, index: int) -> None:
        """Client `index`'s first connection failed: what it held is dropped."""
        self.starting[index] = False
        self._drop_held(self.held.pop(index, []))

    def _drop_held(self, subs: list[PublishBatch]) -> None:
        code = self.code("not connected")
        for sub in subs:
            self._log_dropped(sub, np.arange(len(sub)), code)

    def _hold(self, batch: PublishBatch, rows: np.ndarray) -> None:
        """Keep `rows` (of starting clients) until their client is up or has failed."""
        rows, client_idx, starts, ends = _by_client(rows, batch.device[rows] - self.lo)
        for a, b in zip(starts, ends, strict=True):
            self.held.setdefault(int(client_idx[a]), []).append(batch.take(rows[a:b]))

    def _publish_now(self, batch: PublishBatch) -> np.ndarray | None:
        """Send what can go now; return the rows (of `batch`) left waiting for window room."""
        idx = batch.device - self.lo
        up = self.up[idx]
        if not up.all():
            down = ~up
            hold = down & self.starting[idx]
            if hold.any():
                self._hold(batch, np.nonzero(hold)[0])
                down &= ~hold
            if down.any():
                self._log_dropped(batch, down, self.code("not connected"))
        qos0 = up & (batch.qos == 0)
        touched: set[int] = set()
        if qos0.any():
            self._publish_qos0(batch, np.nonzero(qos0)[0], touched)
        rest = up & (batch.qos > 0)
        waiting = None
        if rest.any():
            waiting = self._publish_acked(batch, np.nonzero(rest)[0], touched)
        for i in touched:
            link = self.clients[i].link
            if link is not None:
                link.flush()
        self.stage.flush(self.log)
        self.inflight.flush(self.log)
        return waiting

    def _log_dropped(self, batch: PublishBatch, sel: np.ndarray, code: int) -> None:
        k = int(sel.sum()) if sel.dtype == bool else len(sel)
        self.log.append(
            k,
            device=batch.device[sel],
            seq=batch.seq[sel],
            kind=PUBLISH,
            status=DROPPED,
            phase=batch.phase[sel],
            message=batch.message[sel],
            t_intended=batch.t_intended[sel],
            t_sent=batch.t_sent[sel],
            bytes=np.diff(batch.payload.offsets)[sel],
            qos=batch.qos[sel],
            error=code,
        )

    def _topics(
        self, batch: PublishBatch, rows: np.ndarray, client_idx: np.ndarray, msg: np.ndarray
    ) -> Ragged:
        """Each row's encoded topic: the device's, or for a command its target's."""
        topics = self.encoder.topics(client_idx, msg)
        if self.commands is not None and self.commands.commanders:
            topics = self.commands.topics(batch, rows, topics)
        return topics

    def _publish_qos0(self, batch: PublishBatch, rows: np.ndarray, touched: set[int]) -> None:
        rows, client_idx, starts, ends = _by_client(rows, batch.device[rows] - self.lo)
        msg = batch.message[rows].astype(np.int64)
        topics = self._topics(batch, rows, client_idx, msg)
        packets, payload = self.encoder.packets(batch, rows, client_idx, topics)
        data = packets.data.tobytes()
        off = packets.offsets
        for a, b in zip(starts, ends, strict=True):
            ci = int(client_idx[a])
            session = self.clients[ci].session
            assert session is not None
            session.send_publishes(data[off[a] : off[b]])
            touched.add(ci)
        self.log.append(
            len(rows),
            device=batch.device[rows],
            seq=batch.seq[rows],
            kind=PUBLISH,
            status=SENT,
            phase=batch.phase[rows],
            message=batch.message[rows],
            t_intended=batch.t_intended[rows],
            t_sent=batch.t_sent[rows],
            t_done=batch.t_sent[rows],
            bytes=payload.lengths,
            qos=0,
        )

    def _publish_acked(
        self, batch: PublishBatch, rows: np.ndarray, touched: set[int]
    ) -> np.ndarray | None:
        """qos 1/2: packet ids are taken per client from its session, then packets are built
        vectorised. Rows beyond a full window are dropped, or returned to wait."""
        rows, client_idx, starts, ends = _by_client(rows, batch.device[rows] - self.lo)
        pids = np.zeros(len(rows), dtype=np.int64)
        keep = np.ones(len(rows), dtype=bool)
        for a, b in zip(starts, ends, strict=True):
            client = self.clients[int(client_idx[a])]
            session = client.session
            assert session is not None
            take = min(session.room(client.window), b - a)
            pids[a : a + take] = session.allocate(take)
            keep[a + take : b] = False
        waiting = None
        if not keep.all():
            full = rows[~keep]
            wait = self.wait_for_room[batch.group[full]]
            if wait.any():
                waiting = np.sort(full[wait])  # back in send order
            if not wait.all():
                self._log_dropped(batch, full[~wait], self.code("in-flight window full"))
            rows, client_idx, starts, ends = _by_client(rows[keep], client_idx[keep])
            pids = pids[keep]
        if not len(rows):
            return waiting
        msg = batch.message[rows].astype(np.int64)
        topics = self._topics(batch, rows, client_idx, msg)
        packets, payload = self.encoder.packets(batch, rows, client_idx, topics, pids)
        data = packets.data.tobytes()
        off = packets.offsets.tolist()
        keys = self.inflight.add(
            {
                "device": batch.device[rows],
                "seq": batch.seq[rows],
                "t_intended": batch.t_intended[rows],
                "t_sent": batch.t_sent[rows],
                "phase": batch.phase[rows],
                "message": batch.message[rows],
                "bytes": payload.lengths,
                "qos": batch.qos[rows],
                "conn": client_idx,
                "pid": pids,
            }
        ).tolist()
        pid_list = pids.tolist()
        for a, b in zip(starts, ends, strict=True):
            ci = int(client_idx[a])
            session = self.clients[ci].session
            assert session is not None
            first = off[a]
            offsets = [o - first for o in off[a : b + 1]] if session.persistent else None
            session.send_publishes(data[first : off[b]], pid_list[a:b], keys[a:b], offsets)
            touched.add(ci)
        return waiting

    # ------------------------------------------------------------- finishing

    def on_read(self, done: list[int], events: list[object], now: int) -> None:
        """A client's read: acked publishes (their tags) and refusals (v5 reason >= 0x80)."""
        if done:
            self.inflight.acked(done, now)
        for ev in events:
            if isinstance(ev, Completed) and ev.tag >= 0:
                if ev.reason_code >= 0x80:
                    why = self.code(f"refused: {reason_text(ev.reason_code, c.V5)}")
                    self.inflight.finish([ev.tag], FAILED, now, why, self.log)
                else:
                    self.inflight.acked([ev.tag], now)
        self.notify()

    def fail(self, tags: list[int], why: str) -> None:
        """These in-flight publishes end as errors (a lost connection, a lost session)."""
        if tags:
            self.inflight.flush(self.log)
            self.inflight.finish(tags, FAILED, self.clock.now_ns(), self.code(why), self.log)
            self.notify()

    def notify(self) -> None:
        """Wake whatever waits for window room or for the drain (nothing to do when nothing
        waits: the common case, once per read)."""
        if self.waiting:
            self.progress.set()
            self.progress = trio.Event()

    async def wait_progress(self, deadline: float) -> None:
        """Until publishes finish (an ack, a loss, a timeout) or the trio deadline."""
        self.waiting += 1
        try:
            with trio.move_on_at(deadline):
                await self.progress.wait()
        finally:
            self.waiting -= 1

    def expire(self, now: int) -> None:
        """Publishes without an ack within their group's publish_timeout: status timeout."""
        self.inflight.flush(self.log)
        keys, clients, pids, sent = self.inflight.older_than(now - min(self.timeouts))
        if not len(keys):
            return
        expired = []
        for key, ci, pid, t_sent in zip(
            keys.tolist(), clients.tolist(), pids.tolist(), sent.tolist(), strict=True
        ):
            client = self.clients[ci]
            if t_sent >= now - self.timeouts[client.group]:
                continue
            if client.session is not None and client.session.expire(pid, key):
                expired.append(key)
        why = self.code("no ack within publish_timeout")
        self.inflight.finish(expired, TIMEOUT, _NULL, why, self.log)
        if expired:
            self.notify()

    def oldest_pending_ns(self) -> int | None:
        """The intended time of the oldest publish without its row (Transport)."""
        self.stage.flush(self.log)
        self.inflight.flush(self.log)
        times = [int(sub.t_intended.min()) for subs in self.held.values() for sub in subs]
        oldest = self.inflight.oldest_intended()
        if oldest is not None:
            times.append(oldest)
        times += self.room_oldest.values()
        return min(times, default=None)

    def outstanding(self) -> int:
        """Publishes still waiting for their ack (or for their device's first connection)."""
        self.inflight.flush(self.log)
        return len(self.inflight) + sum(len(s) for subs in self.held.values() for s in subs)

    def give_up(self, why: str) -> None:
        """The run ended: every publish still in flight ends as timeout, every one held for a
        connection that did not come as dropped."""
        self.inflight.flush(self.log)
        held, self.held = self.held, {}
        for subs in held.values():
            self._drop_held(subs)
        code = self.code(why)
        for client in self.clients:
            if client.session is not None:
                self.inflight.finish(client.session.abandon(), TIMEOUT, _NULL, code, self.log)


def _by_client(
    rows: np.ndarray, client_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
    """Rows grouped by client (stable: each device keeps its send order), with each client's
    [start, end) in the grouped order."""
    order = np.argsort(client_idx, kind="stable")
    rows, client_idx = rows[order], client_idx[order]
    bounds = np.nonzero(np.diff(client_idx))[0] + 1
    return rows, client_idx, np.r_[0, bounds].tolist(), np.r_[bounds, len(rows)].tolist()
