"""The MQTT transport: one trio connection per device, on the sans-IO session.

This module holds the connections' lifecycle: the connect ramp, handshakes, reconnects with
backoff, losses, keepalive and the close. The pieces it composes, each in its own module:
clients (who each device connects as), session (the sans-IO MQTT state), connection (the trio
shell that moves a session's bytes: one reader per connection, direct writes, a writer task
only when a write cannot be direct), publishing (batches to packets to rows), probes, commands.

Final status of every publish: qos 0 `sent` once written to the socket buffer; qos 1/2 `acked`
(PUBACK / PUBCOMP), `error` (a v5 reason >= 0x80, or the connection lost while in flight),
`timeout` (no ack within publish_timeout); `dropped` when the device was not connected.
"""

from __future__ import annotations

import select
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import trio

from simd.errors import UserError
from simd.log.events import CONNECT, DISCONNECT, FAILED, OK
from simd.model.scenario import Scenario
from simd.model.secrets import is_redacted, redact_text, url_credentials
from simd.plan.hashing import hash2, stream_key, uniform01
from simd.plan.schedule import layout_groups
from simd.transports._base import (
    DeviceSet,
    PublishBatch,
    Row,
    RowStage,
    TransportContext,
    set_event,
)
from simd.transports._net import Target, reason_of, ssl_context_for
from simd.transports.mqtt import codec as c
from simd.transports.mqtt.clients import Client, build_clients
from simd.transports.mqtt.commands import Commands
from simd.transports.mqtt.connection import LINK_ERRORS, ConnectRefused, Link, open_link
from simd.transports.mqtt.encoder import BatchEncoder
from simd.transports.mqtt.probes import Probes
from simd.transports.mqtt.publishing import Publisher
from simd.transports.mqtt.reactor import Reactor
from simd.transports.mqtt.session import Abandoned, ClientSession, Event, Received

CONNECT_CONCURRENCY = 64  # handshakes in flight at once per worker when no connect_rate is set
SWEEP_S = 0.05  # how often timeouts and keepalives are checked
CONNECT_LEAD_NS = 20_000_000  # a ramped device connects this long before its start
KEEPALIVE_SWEEP_S = 1.0  # keepalive checks; keepalives are seconds to minutes
PROBE_GRACE_S = 0.5  # at close, how long probes keep listening for messages still in transit
CLOSE_BOUND_S = 2.0  # close: how long all DISCONNECTs together may take (a stalled broker)


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


class MqttTransport:
    def __init__(self, ctx: TransportContext, url: str) -> None:
        self.ctx = ctx
        self.log = ctx.log
        self.clock = ctx.clock
        self.scenario: Scenario = ctx.scenario
        self.target = parse_target(url)
        self.ssl_context = ssl_context_for(self.scenario.tls) if self.target.tls else None
        self.stage = RowStage()  # connect, disconnect, probe and command rows
        self.clients: list[Client] = []
        self.nursery: trio.Nursery | None = None
        self.err: dict[str, int] = {}
        self.closing = False
        self.commands: Commands | None = None  # listening devices and commanders, if any
        self.paced_done = set_event()  # paces no publish itself (Transport.paced_done)
        self.probes = Probes(
            self.scenario, self.target, self.ssl_context, self.clock, self.stage, self._code
        )
        self.backoff_key = stream_key(self.scenario.seed, "mqtt", "backoff")
        self.reactor = Reactor() if hasattr(select, "epoll") else None  # Linux; else a task each

    # ------------------------------------------------------------- setup

    def _code(self, text: str) -> int:
        code = self.err.get(text)
        if code is None:
            code = self.err[text] = self.log.errors.code(text)
        return code

    def _prepare(self, devices: DeviceSet) -> None:
        scenario = self.scenario
        self.clients, topics, fields_of = build_clients(
            scenario, devices, self.target, self.ctx.scenario_dir
        )
        for client, fields in zip(self.clients, fields_of, strict=True):
            g = scenario.fleet[client.group]
            client.window = g.mqtt.inflight
            if g.subscribe or g.commands is not None:
                if self.commands is None:
                    self.commands = Commands(scenario, devices.group)
                client.subs = self.commands.subscriptions(client.group, fields)
                self.commands.set_reply_topic(client.index, client.device, client.group, fields)
        group_of = np.array([cl.group for cl in self.clients], dtype=np.int64)
        encoder = BatchEncoder(scenario, topics, group_of)
        self.publisher = Publisher(
            scenario, self.clients, encoder, self.log, self.clock, self._code, self.commands
        )

    # ------------------------------------------------------------- connecting

    async def connect(self, devices: DeviceSet, now_ns: int, nursery: trio.Nursery) -> None:
        """Open every device's connection (paced by connect_rate); returns when all tried."""
        self.nursery = nursery
        self._prepare(devices)
        nursery.start_soon(self._sweeper)
        if self.reactor is not None:
            nursery.start_soon(self.reactor.run)
        if self.commands is not None:
            nursery.start_soon(
                self.commands.replier,
                self.clock,
                self.stage,
                self._code,
                self._send_reply,
                self.publisher.notify,
            )
        if self.ctx.worker == 0:  # probes run once per run, in the first worker
            await self.probes.start(nursery)
        limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)
        by_group: dict[int, list[Client]] = {}
        self.publisher.starting[:] = True  # what falls due before a device is up waits for it
        for client in self.clients:
            by_group.setdefault(client.group, []).append(client)
        # groups without a connect_rate connect now, before t=0; ramped groups connect from t=0
        # on, in the background, while the schedule runs (what falls due first waits for them)
        async with trio.open_nursery() as now_group:
            for gi, clients in by_group.items():
                rate = self.scenario.fleet[gi].mqtt.connect_rate
                if rate:
                    nursery.start_soon(self._ramp, clients, rate, limiter)
                else:
                    now_group.start_soon(self._ramp, clients, None, limiter)
        self.stage.flush(self.log)

    async def _ramp(self, clients: list[Client], rate: float | None, limiter: Any) -> None:
        """Connect `clients`: all at once (bounded concurrency), or each at its place in the
        group's ramp (the schedule's start for it: simd.plan.schedule.GroupLayout.start_ns), a
        little ahead so the handshake is done when its first publish is due."""
        starts = [0] * len(clients)
        if rate:
            layout = layout_groups(self.scenario)[clients[0].group]
            starts = layout.start_ns(np.array([cl.local for cl in clients])).tolist()
        async with trio.open_nursery() as n:
            for start, client in sorted(zip(starts, clients, strict=True), key=lambda x: x[0]):
                if rate:  # the first one a lead before t=0 too: connect() runs before it
                    await self.clock.sleep_until_ns(start - CONNECT_LEAD_NS)
                n.start_soon(self._connect_one, client, limiter)

    async def _connect_one(self, client: Client, limiter: Any = None) -> None:
        """One connection attempt (a connect row); a failed one tries again later."""
        t0 = self.clock.now_ns()
        try:
            if limiter is not None:
                async with limiter:
                    await self._handshake(client)
            else:
                await self._handshake(client)
        except (*LINK_ERRORS, ConnectRefused) as exc:
            why = (
                str(exc) if isinstance(exc, ConnectRefused) else f"connect failed: {reason_of(exc)}"
            )
            self._conn_row(client, CONNECT, FAILED, t0, self.clock.now_ns(), self._code(why))
            self.publisher.start_failed(client.index)
            if not self.closing:
                assert self.nursery is not None
                self.nursery.start_soon(self._reconnect_later, client)

    async def _handshake(self, client: Client) -> None:
        opts = self.scenario.fleet[client.group].mqtt
        version = c.V5 if opts.version == "5" else c.V311
        if client.session is None:  # a persistent one lives on across connections
            client.session = ClientSession(version, persistent=not opts.clean_start)
        props: c.Properties = ()
        if version == c.V5:
            props = (("receive_maximum", 65535),)
            if opts.session_expiry_s is not None:  # else the session ends with the link
                props += (("session_expiry_interval", opts.session_expiry_s),)
        packet = c.Connect(
            client.client_id, version, opts.clean_start, round(opts.keepalive / 1e9),
            client.username, client.password, None, props,
        )  # fmt: skip
        sources = self.scenario.run.source_addresses
        local = sources[client.device % len(sources)] if sources else None
        t0 = self.clock.now_ns()
        assert self.nursery is not None
        with trio.fail_after(opts.connect_timeout / 1e9):
            link, _, rest = await open_link(
                self.target,
                self.ssl_context,
                self.scenario.tls,
                self.nursery,
                client.session,
                packet,
                local,
            )
        if self.closing:
            await link.goodbye()
            return
        client.link = link
        self._set_up(client, True)
        client.attempts = 0
        self._conn_row(client, CONNECT, OK, t0, self.clock.now_ns(), 0)
        self._on_read(client, [], rest)
        if link.fd is not None and self.reactor is not None:  # plain TCP: the reactor reads it
            self.reactor.add(link, partial(self._on_read, client), partial(self._lost_soon, client))
        else:
            self.nursery.start_soon(self._reader, client, link)
        if client.subs:  # a listening device, a commander: its own filters
            client.session.subscribe(client.subs)
        for waiting in self.publisher.connected(client.index):  # what fell due before it
            self.nursery.start_soon(self.publisher.send_when_room, waiting)
        link.flush()

    def _set_up(self, client: Client, up: bool) -> None:
        """Whether a device can publish now: on the client and in the publisher's vector."""
        client.up = up
        self.publisher.up[client.index] = up

    def _conn_row(
        self, client: Client, kind: int, status: int, t_sent: int, t_done: int, error: int
    ) -> None:
        """A connect or disconnect row for one device's connection."""
        self.stage.add(
            Row(client.device, -1, kind, status, t_sent=t_sent, t_done=t_done, error=error)
        )

    async def _reconnect_later(self, client: Client) -> None:
        """Jittered exponential backoff (deterministic jitter per device and attempt)."""
        opts = self.scenario.fleet[client.group].mqtt
        client.attempts += 1
        base = min(opts.reconnect_max, opts.reconnect_min * 2 ** min(client.attempts - 1, 20))
        u = uniform01(
            hash2(self.backoff_key, np.array([client.device]), np.array([client.attempts]))
        )
        await trio.sleep(base * (0.5 + float(u[0])) / 1e9)  # run time: trio's clock is the run's
        if not self.closing and not client.up:
            await self._connect_one(client)

    # ------------------------------------------------------------- connected

    def _on_read(self, client: Client, done: list[int], events: list[Event]) -> None:
        """What one read of a device's connection brought: acks, refusals, messages."""
        now = self.clock.now_ns()
        for ev in events:
            if isinstance(ev, Abandoned):
                self.publisher.fail(
                    list(ev.tags), "connection lost and the broker did not resume the session"
                )
            elif isinstance(ev, Received) and self.commands is not None:
                p = ev.publish
                self.commands.on_message(
                    client.index, client.device, client.group, p.payload, p.qos, now, self.stage
                )
        self.publisher.on_read(done, events, now)

    async def _reader(self, client: Client, link: Link) -> None:
        try:
            await link.run(partial(self._on_read, client))
        except LINK_ERRORS as exc:
            await self._lost(client, link, link.failed or reason_of(exc))

    def _lost_soon(self, client: Client, link: Link, reason: str) -> None:
        assert self.nursery is not None
        self.nursery.start_soon(self._lost, client, link, reason)

    async def _lost(self, client: Client, link: Link, reason: str) -> None:
        """The connection died: in-flight publishes fail (a clean session; a persistent one
        keeps them for its next connection), a disconnect row, then a reconnect."""
        if client.link is not link:
            return  # already handled (a keepalive expiry, then the read that failed with it)
        client.link = None
        self._set_up(client, False)
        why = f"connection lost: {reason}"
        if client.session is not None:
            self.publisher.fail(client.session.lost(), why)
        now = self.clock.now_ns()
        self._conn_row(client, DISCONNECT, FAILED, now, now, self._code(why))
        await link.abort()
        if not self.closing:
            assert self.nursery is not None
            self.nursery.start_soon(self._reconnect_later, client)

    def _send_reply(self, index: int, topic: bytes, payload: bytes) -> bool:
        """A listening device's reply (qos 0) now; False when it is not connected."""
        client = self.clients[index]
        if not client.up or client.link is None or client.session is None:
            return False
        client.session.publish(topic, payload, 0)
        client.link.flush()
        return True

    async def _sweeper(self) -> None:
        """Publish timeouts every SWEEP_S (a look at the oldest in-flight batches); keepalive
        pings and dead-connection checks every KEEPALIVE_SWEEP_S (a pass over every connection,
        so not more often: with 19k connections it would cost a core)."""
        next_keepalive = 0.0
        while True:
            await trio.sleep(SWEEP_S)
            now_t = trio.current_time()
            now = self.clock.now_ns()
            self.publisher.expire(now)
            if self.commands is not None:
                self.commands.expire(now, self.stage, self._code)
                self.publisher.notify()
            self.stage.flush(self.log)
            if now_t >= next_keepalive:
                next_keepalive = now_t + KEEPALIVE_SWEEP_S
                self._keepalive(now_t)

    def _keepalive(self, now_t: float) -> None:
        for client in self.clients:
            link = client.link
            if link is None or not client.up:
                continue
            keep = self.scenario.fleet[client.group].mqtt.keepalive / 1e9
            if keep <= 0:
                continue
            if now_t - link.last_in > 1.5 * keep:
                # MQTT-3.1.2-24 (the server's side of it): no traffic, presume dead
                self._set_up(client, False)
                assert self.nursery is not None
                self.nursery.start_soon(self._lost, client, link, "keepalive expired")
            elif now_t - link.last_out > keep / 2:
                link.session.ping()
                link.flush()

    # ------------------------------------------------------------- the contract

    async def publish(self, batch: PublishBatch) -> None:
        """Send a batch (simd.transports.mqtt.publishing)."""
        await self.publisher.publish(batch)

    def oldest_pending_ns(self) -> int | None:
        return self.publisher.oldest_pending_ns()

    async def drain(self, deadline_ns: int) -> None:
        """Wait for outstanding acks (and command replies) until the deadline; the rest time
        out."""
        cmds = self.commands
        try:
            end = self.clock.deadline(deadline_ns)
            while trio.current_time() < end and (
                self.publisher.outstanding()
                or (cmds is not None and (cmds.outstanding or cmds.replies))
            ):
                await self.publisher.wait_progress(end)
        finally:  # cancelled or not, every publish (and command) gets its row
            self.publisher.give_up("no ack before the run ended (drain timeout)")
            if cmds is not None:
                cmds.finish(
                    self.stage,
                    self._code("command: no reply before the run ended"),
                    self._code("reply: the run ended first"),
                    self.clock.now_ns(),
                )
            self.stage.flush(self.log)

    async def close(self, now_ns: int) -> None:
        if self.scenario.probe and self.ctx.worker == 0:
            await trio.sleep(PROBE_GRACE_S)  # messages still on their way to the probes
        self.probes.stop()
        self.closing = True
        open_ = [(cl, cl.link) for cl in self.clients if cl.link is not None]
        logged: set[int] = set()
        # every connection at once, all within one bound: a broker that stopped reading costs
        # CLOSE_BOUND_S in all, not a second per device in turn
        with trio.move_on_after(CLOSE_BOUND_S):
            async with trio.open_nursery() as nursery:
                for client, link in open_:
                    nursery.start_soon(self._disconnect, client, link, now_ns, logged)
        late = [cl for cl, _ in open_ if cl.index not in logged]
        if late:
            why = self._code(f"disconnect not written within {CLOSE_BOUND_S:g} s")
            for client in late:
                self._conn_row(client, DISCONNECT, FAILED, now_ns, self.clock.now_ns(), why)
        for _, link in open_:
            with trio.CancelScope(shield=True):
                await link.abort()
        self.stage.flush(self.log)

    async def _disconnect(self, client: Client, link: Link, now_ns: int, logged: set[int]) -> None:
        """DISCONNECT one connection; its row says whether the packet went out (ok) or why
        not (error), and its index goes into `logged`. Cancelled by close's bound before that,
        close logs it."""
        client.link = None
        self._set_up(client, False)
        try:
            link.session.disconnect()
            await link.send()  # after a write in progress: one sender at a time on a stream
        except (*LINK_ERRORS, trio.BusyResourceError) as exc:
            why = self._code(f"disconnect not written: {reason_of(exc)}")
            self._conn_row(client, DISCONNECT, FAILED, now_ns, self.clock.now_ns(), why)
        else:
            self._conn_row(client, DISCONNECT, OK, now_ns, self.clock.now_ns(), 0)
        logged.add(client.index)
