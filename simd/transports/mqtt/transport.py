"""The MQTT transport: one trio connection per device, on the sans-IO session.

Per connection: a reader task (bytes -> session events -> rows) and a writer task that sends
whatever the session queued since its last write, so a wake-up of the scheduler costs one
socket write per connection however many publishes it queued. Rows are staged in Python lists
and appended to the event buffer a batch at a time.

Final status of every publish: qos 0 `sent` once written to the socket buffer; qos 1/2 `acked`
(PUBACK / PUBCOMP), `error` (a v5 reason >= 0x80, or the connection lost while in flight),
`timeout` (no ack within publish_timeout); `dropped` when the device was not connected.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import trio

from simd.errors import UserError
from simd.log.events import (
    CONNECT,
    DISCONNECT,
    DROPPED,
    FAILED,
    OK,
    PUBLISH,
    RECEIVE,
    SENT,
    TIMEOUT,
)
from simd.log.ragged import Ragged
from simd.model.scenario import MqttOptions, Probe, Scenario, fill_template, resolve_path
from simd.model.secrets import is_redacted, redact_text, url_credentials
from simd.plan.hashing import hash2, stream_key, uniform01
from simd.plan.schedule import layout_groups
from simd.transports._base import DeviceSet, PublishBatch, Row, RowStage, TransportContext
from simd.transports._net import NETWORK_ERRORS, Target, open_stream, reason_of, ssl_context_for
from simd.transports.mqtt import codec as c
from simd.transports.mqtt.commands import Commands, parse_trace
from simd.transports.mqtt.encoder import BatchEncoder
from simd.transports.mqtt.inflight import InFlight
from simd.transports.mqtt.reasons import reason_text
from simd.transports.mqtt.session import (
    ClientSession,
    Completed,
    Connected,
    Received,
    Refused,
    ServerDisconnected,
    Subscribed,
    topic_bytes,
)

CONNECT_CONCURRENCY = 256  # handshakes in flight at once per worker when no connect_rate is set
SWEEP_S = 0.05  # how often timeouts and keepalives are checked
CONNECT_LEAD_NS = 20_000_000  # a ramped device connects this long before its start
KEEPALIVE_SWEEP_S = 1.0  # keepalive checks; keepalives are seconds to minutes
PROBE_GRACE_S = 0.5  # at close, how long probes keep listening for messages still in transit
WINDOW_POLL_S = 0.002  # window_full = "wait": how often a full window is looked at again


def parse_target(url: str) -> Target:
    """Where an MQTT target is; a user name and password in the URL are the devices' login
    (unless their group names its own)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "ws", "wss") or not parts.hostname:
        raise UserError(
            f"target {redact_text(url)!r}: expected mqtt://, mqtts://, ws:// or wss:// with a host"
        )
    if is_redacted(url):
        raise UserError(
            f"target {url!r}: its credentials were not kept in run.json; give them as "
            "[fleet.mqtt] username and password_env to resume such a run"
        )
    user, text = url_credentials(url)
    password = text.encode() if text is not None else None
    tls = parts.scheme in ("mqtts", "wss")
    if parts.scheme in ("ws", "wss"):
        port = parts.port or (443 if tls else 80)
        path = parts.path or "/mqtt"
        ws_url = f"{parts.scheme}://{parts.hostname}:{port}{path}"
        return Target(parts.hostname, port, tls, ws_url, user, password)
    return Target(parts.hostname, parts.port or (8883 if tls else 1883), tls, None, user, password)


@dataclass
class _Conn:
    index: int
    device: int
    group: int
    local: int  # index within its group
    client_id: str
    username: str | None
    password: bytes | None
    stream: trio.abc.Stream | None = None
    session: ClientSession | None = None
    pending: dict[int, int] = field(default_factory=dict)  # packet id -> InFlight key
    wake: trio.Event = field(default_factory=trio.Event)
    up: bool = False
    fd: int | None = None  # plain TCP: written directly, no task switch
    writing: bool = False  # the writer task is inside send_all
    written: trio.Event = field(default_factory=trio.Event)  # set when a send_all ends
    writer: bool = False  # a writer task runs for this connection
    packets: dict[int, bytes] = field(default_factory=dict)  # clean_start = false: for resume
    released: set[int] = field(default_factory=set)
    window: int = 1000
    attempts: int = 0
    last_out: float = 0.0
    last_in: float = 0.0
    subs: list[tuple[str, int]] = field(default_factory=list)  # filters to subscribe to


class MqttTransport:
    def __init__(self, ctx: TransportContext, url: str) -> None:
        self.ctx = ctx
        self.log = ctx.log
        self.clock = ctx.clock
        self.scenario: Scenario = ctx.scenario
        self.target = parse_target(url)
        self.ssl_context = ssl_context_for(self.scenario.tls) if self.target.tls else None
        self.stage = RowStage()
        self.inflight = InFlight()
        self.conns: list[_Conn] = []
        self.lo = 0
        self.topics: list[list[bytes]] = []
        self.nursery: trio.Nursery | None = None
        self.up = np.zeros(0, dtype=bool)  # per connection: can publish now
        self.err: dict[str, int] = {}
        self.closing = False
        self.probes_done = False
        self.commands: Commands | None = None  # listening devices and commanders, if any
        self.listening = False  # devices here subscribe: the worker keeps them to the run's end
        self.backoff_key = stream_key(self.scenario.seed, "mqtt", "backoff")

    # ------------------------------------------------------------- setup

    def _code(self, text: str) -> int:
        code = self.err.get(text)
        if code is None:
            code = self.err[text] = self.log.errors.code(text)
        return code

    def _prepare(self, devices: DeviceSet) -> None:
        base = self.ctx.scenario_dir
        self.lo = int(devices.device[0]) if len(devices.device) else 0
        offsets = self.scenario.group_offsets()
        messages = [g.resolved_messages() for g in self.scenario.fleet]  # once, not per device
        tokens: dict[int, list[str]] = {}
        for gi, g in enumerate(self.scenario.fleet):
            if g.mqtt.token_file:
                path = resolve_path(g.mqtt.token_file, base)
                tokens[gi] = [t.strip() for t in path.read_text().splitlines() if t.strip()]
        for i, (dev, gi, did) in enumerate(
            zip(devices.device.tolist(), devices.group.tolist(), devices.ids, strict=True)
        ):
            g = self.scenario.fleet[gi]
            opts = g.mqtt
            local = dev - offsets[gi]
            fields = {"device_id": did, "index": str(local), "group": g.name}
            username = fill_template(opts.username, fields) if opts.username else None
            password = _password(opts)
            if username is None and password is None and self.target.username is not None:
                username = self.target.username  # mqtt://user:pass@host: the URL's login
                password = self.target.password
            if gi in tokens:
                if opts.token_as == "username":
                    username = tokens[gi][local]
                else:
                    password = tokens[gi][local].encode()
            self.conns.append(
                _Conn(i, dev, gi, local, fill_template(opts.client_id, fields), username, password)
            )
            topics = []
            for msg in messages[gi]:
                assert msg.topic is not None
                if g.commands is None:
                    topics.append(
                        topic_bytes(fill_template(msg.topic, {**fields, "message": msg.name}))
                    )
                else:
                    topics.append(b"")  # per command: its target's topic (simd...commands)
            self.topics.append(topics)
            if g.subscribe or g.commands is not None:
                if self.commands is None:
                    self.commands = Commands(self.scenario, devices.group)
                self.conns[-1].subs = self.commands.subscriptions(gi, fields)
                self.listening = self.listening or bool(g.subscribe)
                self.commands.set_reply_topic(i, dev, gi, fields)
        group_of = np.array([cn.group for cn in self.conns], dtype=np.int64)
        self.encoder = BatchEncoder(self.scenario, self.topics, group_of)
        fleet = self.scenario.fleet
        self.timeout_of = np.array([g.mqtt.publish_timeout for g in fleet], dtype=np.int64)
        self.wait_for_room = np.array([g.mqtt.window_full == "wait" for g in fleet])
        self.keep_session = np.array([not g.mqtt.clean_start for g in fleet])
        self.up = np.zeros(len(self.conns), dtype=bool)

    # ------------------------------------------------------------- protocol

    async def connect(self, devices: DeviceSet, now_ns: int, nursery: trio.Nursery) -> None:
        """Open every device's connection (paced by connect_rate); returns when all tried."""
        self.nursery = nursery
        self._prepare(devices)
        nursery.start_soon(self._sweeper)
        if self.commands is not None:
            nursery.start_soon(
                self.commands.replier, self.conns, self.clock, self.stage, self._code, self._flush
            )
        if self.ctx.worker == 0:  # probes run once per run, in the first worker
            for pi, probe in enumerate(self.scenario.probe):
                ready = trio.Event()
                nursery.start_soon(self._probe, pi, probe, ready)
                with trio.move_on_after(10):
                    await ready.wait()
        limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)
        by_group: dict[int, list[_Conn]] = {}
        for conn in self.conns:
            by_group.setdefault(conn.group, []).append(conn)
        # groups without a connect_rate connect now, before t=0; ramped groups connect from t=0
        # on, in the background, while the schedule runs (their early publishes are dropped)
        async with trio.open_nursery() as now_group:
            for gi, conns in by_group.items():
                rate = self.scenario.fleet[gi].mqtt.connect_rate
                if rate:
                    nursery.start_soon(self._ramp, conns, rate, limiter)
                else:
                    now_group.start_soon(self._ramp, conns, None, limiter)
        self.stage.flush(self.log)

    async def _ramp(self, conns: list[_Conn], rate: float | None, limiter: Any) -> None:
        """Connect `conns`: all at once (bounded concurrency), or each at its place in the
        group's ramp (the schedule's start for it: simd.plan.schedule.GroupLayout.start_ns), a
        little ahead so the handshake is done when its first publish is due."""
        starts = [0] * len(conns)
        if rate:
            layout = layout_groups(self.scenario)[conns[0].group]
            starts = layout.start_ns(np.array([cn.local for cn in conns])).tolist()
        async with trio.open_nursery() as n:
            for start, conn in sorted(zip(starts, conns, strict=True), key=lambda x: x[0]):
                if rate:
                    await self.clock.sleep_until_ns(max(0, start - CONNECT_LEAD_NS))
                n.start_soon(self._connect_one, conn, limiter)

    async def _connect_one(self, conn: _Conn, limiter: Any = None) -> bool:
        opts = self.scenario.fleet[conn.group].mqtt
        version = c.V5 if opts.version == "5" else c.V311
        t0 = self.clock.now_ns()
        session = ClientSession(version)
        try:
            if limiter is not None:
                async with limiter:
                    ok = await self._handshake(conn, session, opts, version)
            else:
                ok = await self._handshake(conn, session, opts, version)
        except (
            OSError,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            c.ProtocolError,
            ssl.SSLError,
            trio.TooSlowError,
        ) as exc:
            ok = False
            reason = reason_of(exc)
            self._conn_row(
                conn,
                CONNECT,
                FAILED,
                t0,
                self.clock.now_ns(),
                self._code(f"connect failed: {reason}"),
            )
            await self._close_stream(conn)
        if not ok and not self.closing:
            assert self.nursery is not None
            self.nursery.start_soon(self._reconnect_later, conn)
        return ok

    async def _handshake(
        self, conn: _Conn, session: ClientSession, opts: MqttOptions, version: int
    ) -> bool:
        t0 = self.clock.now_ns()
        with trio.fail_after(opts.connect_timeout / 1e9):
            sources = self.scenario.run.source_addresses
            local = sources[conn.device % len(sources)] if sources else None
            assert self.nursery is not None
            stream = await open_stream(
                self.target, self.ssl_context, self.scenario.tls, self.nursery, local
            )
            conn.stream = stream
            props: c.Properties = ()
            if version == c.V5:
                props = (("receive_maximum", 65535),)
                if opts.session_expiry_s is not None:  # else the session ends with the link
                    props += (("session_expiry_interval", opts.session_expiry_s),)
            session.connect(
                c.Connect(
                    conn.client_id,
                    version,
                    opts.clean_start,
                    round(opts.keepalive / 1e9),
                    conn.username,
                    conn.password,
                    None,
                    props,
                )
            )
            await stream.send_all(session.take_outbound())
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    raise trio.BrokenResourceError("connection closed by the broker")
                for ev in session.receive(data):
                    if isinstance(ev, Refused):
                        self._conn_row(
                            conn,
                            CONNECT,
                            FAILED,
                            t0,
                            self.clock.now_ns(),
                            self._code(
                                f"connect refused: {reason_text(ev.reason_code, session.version)}"
                            ),
                        )
                        await self._close_stream(conn)
                        return False
                    if isinstance(ev, Connected):
                        conn.session = session
                        conn.up = True
                        self.up[conn.index] = True
                        sock = getattr(stream, "socket", None)
                        conn.fd = sock.fileno() if sock is not None else None
                        conn.window = min(opts.inflight, session.receive_maximum)
                        conn.attempts = 0
                        conn.last_in = conn.last_out = trio.current_time()
                        self._conn_row(conn, CONNECT, OK, t0, self.clock.now_ns(), 0)
                        assert self.nursery is not None
                        conn.wake = trio.Event()
                        conn.writer = False
                        self.nursery.start_soon(self._reader, conn, session, stream)
                        if conn.fd is None:  # TLS: every write goes through the writer task
                            self._start_writer(conn)
                        if conn.pending:  # kept from a lost connection (clean_start = false)
                            self._resume(conn, session, ev.session_present)
                        if conn.subs:  # a listening device, a commander: its own filters
                            session.subscribe(conn.subs)
                            self._flush(conn)
                        return True

    def _resume(self, conn: _Conn, session: ClientSession, present: bool) -> None:
        """Re-send what was in flight when the connection was lost, if the broker kept the
        session; otherwise those publishes end as errors."""
        if present:
            session.resume(
                {p: conn.packets[p] for p in conn.pending if p in conn.packets}, conn.released
            )
            self._flush(conn)
            return
        code = self._code("connection lost and the broker did not resume the session")
        self.inflight.flush(self.log)
        self.inflight.finish(
            list(conn.pending.values()), FAILED, self.clock.now_ns(), code, self.log
        )
        conn.pending.clear()
        conn.packets.clear()

    def _conn_row(
        self, conn: _Conn, kind: int, status: int, t_sent: int, t_done: int, error: int
    ) -> None:
        """A connect or disconnect row for one device's connection."""
        self.stage.add(
            Row(conn.device, -1, kind, status, t_sent=t_sent, t_done=t_done, error=error)
        )

    async def _reconnect_later(self, conn: _Conn) -> None:
        """Jittered exponential backoff (deterministic jitter per device and attempt)."""
        opts = self.scenario.fleet[conn.group].mqtt
        conn.attempts += 1
        base = min(opts.reconnect_max, opts.reconnect_min * 2 ** min(conn.attempts - 1, 20))
        jitter = float(
            uniform01(hash2(self.backoff_key, np.array([conn.device]), np.array([conn.attempts])))[
                0
            ]
        )
        await trio.sleep(base * (0.5 + jitter) / 1e9)  # run time: trio's clock is the run's
        if not self.closing and not conn.up:
            await self._connect_one(conn)

    async def _reader(self, conn: _Conn, session: ClientSession, stream: trio.abc.Stream) -> None:
        try:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    raise trio.BrokenResourceError("connection closed by the broker")
                conn.last_in = trio.current_time()
                now = self.clock.now_ns()
                done, events = session.receive_acks(data)
                if done:
                    pending = conn.pending
                    self.inflight.acked([pending.pop(p) for p in done if p in pending], now)
                    if conn.packets:
                        for p in done:
                            conn.packets.pop(p, None)
                for ev in events:
                    if isinstance(ev, Completed):
                        conn.packets.pop(ev.packet_id, None)
                        key = conn.pending.pop(ev.packet_id, None)
                        if key is None:
                            continue
                        if ev.reason_code >= 0x80:
                            self.inflight.finish(
                                [key],
                                FAILED,
                                now,
                                self._code(f"refused: {reason_text(ev.reason_code, c.V5)}"),
                                self.log,
                            )
                        else:
                            self.inflight.acked([key], now)
                    elif isinstance(ev, Received) and self.commands is not None:
                        p = ev.publish
                        self.commands.on_message(conn, p.payload, p.qos, now, self.stage)
                    elif isinstance(ev, ServerDisconnected):
                        raise trio.BrokenResourceError(f"broker sent DISCONNECT {ev.reason_code}")
                if session.outbound:
                    self._flush(conn)
        except (
            OSError,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            c.ProtocolError,
        ) as exc:
            if conn.session is session:
                await self._lost(conn, reason_of(exc))

    def _start_writer(self, conn: _Conn) -> None:
        """A writer task for this connection, started the first time a write cannot be direct
        (socket buffer full, or TLS): most plain connections never need one (memory per device)."""
        if conn.writer or conn.session is None or conn.stream is None:
            return
        conn.writer = True
        assert self.nursery is not None
        self.nursery.start_soon(self._writer, conn, conn.session, conn.stream)

    async def _writer(self, conn: _Conn, session: ClientSession, stream: trio.abc.Stream) -> None:
        try:
            while conn.session is session:
                await conn.wake.wait()
                conn.wake = trio.Event()
                if session.outbound:
                    conn.last_out = trio.current_time()
                    conn.writing = True
                    try:
                        await stream.send_all(session.take_outbound())
                    finally:
                        conn.writing = False
                        conn.written.set()
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            if conn.session is session:
                await self._lost(conn, reason_of(exc))

    async def _lost(self, conn: _Conn, reason: str) -> None:
        """The connection died: in-flight publishes fail, a disconnect row, then reconnect."""
        session = conn.session
        conn.up = False
        self.up[conn.index] = False
        conn.session = None
        conn.fd = None
        if session is not None:
            session.lost()
        now = self.clock.now_ns()
        code = self._code(f"connection lost: {reason}")
        if self.scenario.fleet[conn.group].mqtt.clean_start:
            self.inflight.flush(self.log)
            self.inflight.finish(list(conn.pending.values()), FAILED, now, code, self.log)
            conn.pending.clear()
        elif session is not None:  # kept for a resumed session (or the sweeper's timeout)
            conn.released = set(session.released)
        self._conn_row(conn, DISCONNECT, FAILED, now, now, code)
        conn.wake.set()
        await self._close_stream(conn)
        if not self.closing:
            assert self.nursery is not None
            self.nursery.start_soon(self._reconnect_later, conn)

    async def _close_stream(self, conn: _Conn) -> None:
        stream, conn.stream = conn.stream, None
        if stream is not None:
            with trio.move_on_after(1):
                await trio.aclose_forcefully(stream)

    def _expire(self, now: int) -> None:
        """Publishes without an ack within their group's publish_timeout: status timeout."""
        self.inflight.flush(self.log)
        timeouts = [g.mqtt.publish_timeout for g in self.scenario.fleet]
        keys, conns, pids, sent = self.inflight.older_than(now - min(timeouts))
        if not len(keys):
            return
        expired = []
        for key, ci, pid, t_sent in zip(
            keys.tolist(), conns.tolist(), pids.tolist(), sent.tolist(), strict=True
        ):
            conn = self.conns[ci]
            if t_sent >= now - timeouts[conn.group]:
                continue
            if conn.pending.get(pid) == key:
                del conn.pending[pid]
                conn.packets.pop(pid, None)
                if conn.session is not None:
                    conn.session.in_flight.discard(pid)
            expired.append(key)
        self.inflight.finish(
            expired, TIMEOUT, _NULL, self._code("no ack within publish_timeout"), self.log
        )

    async def _sweeper(self) -> None:
        """Publish timeouts every SWEEP_S (a look at the oldest in-flight batches); keepalive
        pings and dead-connection checks every KEEPALIVE_SWEEP_S (a pass over every connection,
        so not more often: with 19k connections it would cost a core)."""
        next_keepalive = 0.0
        while True:
            await trio.sleep(SWEEP_S)
            now_t = trio.current_time()
            now = self.clock.now_ns()
            self._expire(now)
            if self.commands is not None:
                self.commands.expire(now, self.stage, self._code)
            self.stage.flush(self.log)
            if now_t < next_keepalive:
                continue
            next_keepalive = now_t + KEEPALIVE_SWEEP_S
            for conn in self.conns:
                session = conn.session
                if session is None:
                    continue
                opts = self.scenario.fleet[conn.group].mqtt
                keep = opts.keepalive / 1e9
                if keep > 0:
                    if now_t - conn.last_in > 1.5 * keep:
                        # MQTT-3.1.2-24 (the server's side of it): no traffic, presume dead
                        conn.up = False
                        self.up[conn.index] = False
                        assert self.nursery is not None
                        self.nursery.start_soon(self._lost, conn, "keepalive expired")
                    elif now_t - conn.last_out > keep / 2 and conn.up:
                        session.ping()
                        self._flush(conn)
            self.stage.flush(self.log)

    async def publish(self, batch: PublishBatch) -> None:
        """Queue a batch: qos 0 rows are encoded vectorised, qos 1/2 rows one by one (they take
        packet ids); then one write per touched connection. Rows whose connection's in-flight
        window is full wait for room (mqtt.window_full = "wait", up to publish_timeout; the
        worker's schedule waits with them, so a slow target shows as lag, not as memory)."""
        if self.encoder.stamping:
            batch = self.encoder.stamped(batch)
        if self.commands is not None and self.commands.commanders:
            self.commands.sent(batch)
        waiting = self._publish_now(batch)
        if waiting is None:
            return
        deadline = self.clock.now_ns() + int(self.timeout_of[batch.group[waiting]].min())
        sub = batch.take(waiting)  # its own arrays: t_sent is set in place below
        while True:
            await trio.sleep(WINDOW_POLL_S)
            now = self.clock.now_ns()
            if now >= deadline:
                self._log_dropped(sub, np.arange(len(sub)), self._code("in-flight window full"))
                self.stage.flush(self.log)
                return
            sub.t_sent[:] = now
            rest = self._publish_now(sub)
            if rest is None:
                return
            if len(rest) < len(sub):
                sub = sub.take(rest)

    def _topics(
        self, batch: PublishBatch, rows: np.ndarray, conn_idx: np.ndarray, msg: np.ndarray
    ) -> Ragged:
        """Each row's encoded topic: the device's, or for a command its target's."""
        topics = self.encoder.topics(conn_idx, msg)
        if self.commands is not None and self.commands.commanders:
            topics = self.commands.topics(batch, rows, topics)
        return topics

    def _publish_now(self, batch: PublishBatch) -> np.ndarray | None:
        """Send what can go now; return the rows (of `batch`) left waiting for window room."""
        idx = batch.device - self.lo
        up = self.up[idx]
        if not up.all():
            down = ~up
            self._log_dropped(batch, down, self._code("not connected"))
        qos0 = up & (batch.qos == 0)
        touched: set[int] = set()
        if qos0.any():
            self._publish_qos0(batch, np.nonzero(qos0)[0], touched)
        rest = up & (batch.qos > 0)
        waiting = None
        if rest.any():
            waiting = self._publish_acked(batch, np.nonzero(rest)[0], touched)
        for i in touched:
            self._flush(self.conns[i])
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

    def _publish_qos0(self, batch: PublishBatch, rows: np.ndarray, touched: set[int]) -> None:
        conn_idx = batch.device[rows] - self.lo
        # group the batch's rows by connection (stable: each device keeps its send order)
        order = np.argsort(conn_idx, kind="stable")
        rows = rows[order]
        conn_idx = conn_idx[order]
        msg = batch.message[rows].astype(np.int64)
        topics = self._topics(batch, rows, conn_idx, msg)
        packets, payload = self.encoder.packets(batch, rows, conn_idx, topics)
        data = packets.data.tobytes()
        off = packets.offsets
        bounds = np.nonzero(np.diff(conn_idx))[0] + 1
        starts = np.r_[0, bounds].tolist()
        ends = np.r_[bounds, len(rows)].tolist()
        for a, b in zip(starts, ends, strict=True):
            ci = int(conn_idx[a])
            session = self.conns[ci].session
            assert session is not None
            session.outbound += data[off[a] : off[b]]
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
        """qos 1/2: packet ids are taken per connection, then packets are built vectorised.
        Rows beyond a full window are dropped, or returned to wait (mqtt.window_full)."""
        conn_idx = batch.device[rows] - self.lo
        order = np.argsort(conn_idx, kind="stable")
        rows = rows[order]
        conn_idx = conn_idx[order]
        bounds = np.nonzero(np.diff(conn_idx))[0] + 1
        starts = np.r_[0, bounds].tolist()
        ends = np.r_[bounds, len(rows)].tolist()
        pids = np.zeros(len(rows), dtype=np.int64)
        keep = np.ones(len(rows), dtype=bool)
        for a, b in zip(starts, ends, strict=True):
            conn = self.conns[int(conn_idx[a])]
            session = conn.session
            assert session is not None
            room = max(0, min(conn.window, session.receive_maximum) - len(conn.pending))
            take = min(room, b - a)
            pids[a : a + take] = session.allocate(take)
            keep[a + take : b] = False
        waiting = None
        if not keep.all():
            full = rows[~keep]
            wait = self.wait_for_room[batch.group[full]]
            if wait.any():
                waiting = np.sort(full[wait])  # back in send order
            if not wait.all():
                self._log_dropped(batch, full[~wait], self._code("in-flight window full"))
            rows, conn_idx, pids = rows[keep], conn_idx[keep], pids[keep]
            bounds = np.nonzero(np.diff(conn_idx))[0] + 1
            starts = np.r_[0, bounds].tolist()
            ends = np.r_[bounds, len(rows)].tolist()
        if not len(rows):
            return waiting
        msg = batch.message[rows].astype(np.int64)
        qos = batch.qos[rows]
        topics = self._topics(batch, rows, conn_idx, msg)
        packets, payload = self.encoder.packets(batch, rows, conn_idx, topics, pids)
        data = packets.data.tobytes()
        off = packets.offsets
        keys = self.inflight.add(
            {
                "device": batch.device[rows],
                "seq": batch.seq[rows],
                "t_intended": batch.t_intended[rows],
                "t_sent": batch.t_sent[rows],
                "phase": batch.phase[rows],
                "message": batch.message[rows],
                "bytes": payload.lengths,
                "qos": qos,
                "conn": conn_idx,
                "pid": pids,
            }
        ).tolist()
        pid_list = pids.tolist()
        keep = self.keep_session[self.encoder.group_of[conn_idx]]
        for a, b in zip(starts, ends, strict=True):
            ci = int(conn_idx[a])
            conn = self.conns[ci]
            conn.pending.update(zip(pid_list[a:b], keys[a:b], strict=True))
            if keep[a]:  # clean_start = false: keep each packet to re-send after a loss
                conn.packets.update((pid_list[i], data[off[i] : off[i + 1]]) for i in range(a, b))
            session = conn.session
            assert session is not None
            session.outbound += data[off[a] : off[b]]
            touched.add(ci)
        return waiting

    def _flush(self, conn: _Conn) -> None:
        """One write of everything queued: straight to the socket when it takes it (plain TCP,
        no write in progress); otherwise the connection's writer task sends it."""
        session = conn.session
        if session is None or not session.outbound:
            return
        if conn.fd is not None and not conn.writing:
            data = session.take_outbound()
            try:
                n = os.write(conn.fd, data)
            except BlockingIOError:
                n = 0
            except OSError:
                session.outbound[:0] = data  # the reader or writer will notice the loss
                self._start_writer(conn)
                conn.wake.set()
                return
            conn.last_out = trio.current_time()
            if n < len(data):
                session.outbound[:0] = data[n:]
                self._start_writer(conn)
                conn.wake.set()
            return
        self._start_writer(conn)
        conn.wake.set()

    async def drain(self, deadline_ns: int) -> None:
        """Wait for outstanding acks until the deadline; the rest time out."""
        cmds = self.commands
        try:
            while self.clock.now_ns() < deadline_ns and (
                any(c.pending for c in self.conns)
                or (cmds is not None and (cmds.outstanding or cmds.replies))
            ):
                await trio.sleep(0.01)
        finally:  # cancelled or not, every publish (and command) gets its row
            self.inflight.flush(self.log)
            code = self._code("no ack before the run ended (drain timeout)")
            for conn in self.conns:
                self.inflight.finish(list(conn.pending.values()), TIMEOUT, _NULL, code, self.log)
                conn.pending.clear()
            if cmds is not None:
                cmds.finish(
                    self.stage,
                    self._code("command: no reply before the run ended"),
                    self._code("reply: the run ended first"),
                    self.clock.now_ns(),
                )
            self.stage.flush(self.log)

    async def _probe(self, index: int, probe: Probe, ready: trio.Event) -> None:
        """Subscribe and log a receive row per message (see scenario.Probe), its `message`
        column the probe's index; away (disconnected) in its offline windows."""
        client_id = f"simd-probe-{probe.name}-{os.getpid()}"
        windows = sorted((w.start, w.end) for w in probe.offline)
        try:
            while not self.probes_done:
                until = windows[0][0] if windows else None
                await self._probe_session(index, probe, client_id, ready, until)
                if not windows or self.probes_done:
                    break
                _, end = windows.pop(0)
                now = self.clock.now_ns()
                self.stage.add(Row(-1, -1, DISCONNECT, OK, message=index, t_sent=now, t_done=now))
                await self.clock.sleep_until_ns(end)
        finally:
            ready.set()

    async def _probe_session(
        self, index: int, probe: Probe, client_id: str, ready: trio.Event, until: int | None
    ) -> None:
        """One connection of a probe: until run time `until` (an offline window) or the end."""
        version = c.V5 if probe.version == "5" else c.V311
        t0 = self.clock.now_ns()
        props: c.Properties = ()
        if not probe.clean and version == c.V5:
            props = (("session_expiry_interval", 3600),)
        try:
            assert self.nursery is not None
            stream = await open_stream(
                self.target, self.ssl_context, self.scenario.tls, self.nursery
            )
            session = ClientSession(version)
            session.connect(
                c.Connect(
                    client_id, version, probe.clean, 60, self.target.username,
                    self.target.password, properties=props,
                )
            )  # fmt: skip
            await stream.send_all(session.take_outbound())
            while not self.probes_done and (until is None or self.clock.now_ns() < until):
                with trio.move_on_after(0.05 if until is not None else 0.2):
                    data = await stream.receive_some(65536)
                    if not data:
                        raise trio.BrokenResourceError("connection closed by the broker")
                    now = self.clock.now_ns()
                    for ev in session.receive(data):
                        if isinstance(ev, Connected):
                            session.subscribe([(probe.topic, probe.qos)])
                        elif isinstance(ev, Subscribed):
                            ready.set()
                            self.stage.add(
                                Row(-1, -1, CONNECT, OK, message=index, t_sent=t0, t_done=now)
                            )
                        elif isinstance(ev, Received):
                            self._received(index, probe, ev.publish, now)
                            now += 1  # one read's messages keep their order in receive time
                        elif isinstance(ev, Refused):
                            raise trio.BrokenResourceError(
                                f"refused: {reason_text(ev.reason_code, session.version)}"
                            )
                if session.outbound:
                    await stream.send_all(session.take_outbound())
            with trio.move_on_after(1):
                session.disconnect()
                await stream.send_all(session.take_outbound())
                await stream.aclose()
        except (
            OSError,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            c.ProtocolError,
            ssl.SSLError,
        ) as exc:
            why = self._code(f"probe {probe.name}: {reason_of(exc)}")
            self.stage.add(
                Row(
                    -1,
                    -1,
                    CONNECT,
                    FAILED,
                    message=index,
                    t_sent=t0,
                    t_done=self.clock.now_ns(),
                    error=why,
                )
            )

    def _received(self, index: int, probe: Probe, p: c.Publish, now: int) -> None:
        device, seq, t_int = -1, -1, _NULL
        payload = p.payload
        trace = next(
            (v[1] for k, v in p.properties if k == "user_property" and v[0] == "simd-trace"), None
        )
        stamped = parse_trace(payload) if trace is None else None
        if stamped is not None:
            device, seq, t_int, payload = stamped
        elif trace is not None:
            with contextlib.suppress(ValueError):
                device, seq, t_int = (int(x) for x in trace.split())
        elif probe.timestamp_field is not None:
            try:
                ms = json.loads(payload)[probe.timestamp_field]
                t_int = int(ms * 1_000_000) - self.ctx.t0_epoch_ns
            except (ValueError, KeyError, TypeError):
                pass
        self.stage.add(
            Row(
                device,
                seq,
                RECEIVE,
                OK,
                message=index,
                t_intended=t_int,
                t_done=now,
                bytes=len(p.payload),
                qos=p.qos,
            )
        )

    async def _disconnect(self, conn: _Conn, now_ns: int, logged: set[int]) -> None:
        """DISCONNECT one connection and close it; its row says whether the packet went out
        (ok) or why not (error), and its index goes into `logged`. Cancelled by close's bound
        before that, close logs it."""
        session, stream = conn.session, conn.stream
        conn.session = None
        conn.up = False
        self.up[conn.index] = False
        conn.fd = None
        conn.wake.set()  # the writer task, if any, ends after its current write
        if session is not None and stream is not None:
            try:
                session.disconnect()
                # one sender at a time on a stream: a writer task still inside send_all (a
                # full socket buffer at a high rate) finishes first; two at once is
                # trio.BusyResourceError, which killed the worker at the run's end
                while conn.writing:
                    conn.written = trio.Event()
                    await conn.written.wait()
                await stream.send_all(session.take_outbound())
            except (*NETWORK_ERRORS, trio.BusyResourceError, c.ProtocolError) as exc:
                why = self._code(f"disconnect not written: {reason_of(exc)}")
                self._conn_row(conn, DISCONNECT, FAILED, now_ns, self.clock.now_ns(), why)
            else:
                self._conn_row(conn, DISCONNECT, OK, now_ns, self.clock.now_ns(), 0)
            logged.add(conn.index)
        await self._close_stream(conn)

    async def close(self, now_ns: int) -> None:
        if self.scenario.probe and self.ctx.worker == 0:
            await trio.sleep(PROBE_GRACE_S)  # messages still on their way to the probes
        self.probes_done = True
        self.closing = True
        open_ = [c_.index for c_ in self.conns if c_.session is not None and c_.stream is not None]
        logged: set[int] = set()
        # every connection at once, all within one bound: a broker that stopped reading costs
        # CLOSE_BOUND_S in all, not a second per device in turn
        with trio.move_on_after(CLOSE_BOUND_S):
            async with trio.open_nursery() as nursery:
                for conn in self.conns:
                    nursery.start_soon(self._disconnect, conn, now_ns, logged)
        late = [self.conns[i] for i in open_ if i not in logged]
        if late:
            why = self._code(f"disconnect not written within {CLOSE_BOUND_S:g} s")
            for conn in late:
                self._conn_row(conn, DISCONNECT, FAILED, now_ns, self.clock.now_ns(), why)
        for conn in self.conns:
            stream, conn.stream = conn.stream, None
            if stream is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(0.1):
                    await trio.aclose_forcefully(stream)
        self.stage.flush(self.log)


_NULL = int(np.iinfo(np.int64).min)
CLOSE_BOUND_S = 2.0  # close: how long all DISCONNECTs together may take (a stalled broker)


def _password(opts: MqttOptions) -> bytes | None:
    if opts.password_env is not None:
        value = os.environ.get(opts.password_env)
        if value is None:
            raise UserError(
                f"mqtt.password_env: environment variable {opts.password_env} is not set"
            )
        return value.encode()
    return opts.password.encode() if opts.password is not None else None
