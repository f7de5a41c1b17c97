"""`simd record`: subscribe to a broker and write every message to a recording (simd.log.recording).

One MQTT connection (3.1.1 or 5) subscribes to the given filters and writes each message it
receives, with its receive time (ns since the recording's t=0, from trio's clock), topic, payload,
qos, retain flag and MQTT 5 properties. Frames go to disk every `FLUSH_S`, so a crash loses at
most that much. When the connection drops it reconnects with backoff and subscribes again; the
gap is written into the recording. MQTT 5 reconnects resume the session (the broker keeps
queued qos 1/2 messages for `SESSION_EXPIRY_S`); 3.1.1 starts clean, so what was published while
it was away is not in the recording. SIGINT/SIGTERM or the end of `duration` close the file
cleanly. If the first connection fails, nothing is written: the error is raised.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from simd.errors import RunError, SimdError, UserError, first_leaf
from simd.log.recording import RecordingWriter
from simd.model.scenario import TlsOptions
from simd.model.secrets import strip_credentials
from simd.transports._net import Target, reason_of, ssl_context_for
from simd.transports.mqtt import codec as c
from simd.transports.mqtt.connection import LINK_ERRORS, ConnectRefused, Link, open_link
from simd.transports.mqtt.session import ClientSession, Event, Received
from simd.transports.mqtt.transport import parse_target

FLUSH_S = 0.1  # a frame at least this often: what a crash of the recorder can lose
KEEPALIVE_S = 30
SESSION_EXPIRY_S = 60  # MQTT 5: how long the broker keeps our session across a reconnect
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 10.0
CONNECT_TIMEOUT_S = 10.0


@dataclass
class RecordOptions:
    url: str
    filters: list[str]
    out: Path
    duration_s: float | None = None
    qos: int = 1
    version: str = "5"
    client_id: str | None = None
    username: str | None = None
    password: bytes | None = None
    tls: TlsOptions = field(default_factory=TlsOptions)


@dataclass
class RecordResult:
    path: Path
    messages: int = 0
    bytes: int = 0
    topics: int = 0
    duration_s: float = 0.0
    reconnects: int = 0
    stopped_by: str = "duration"


class Recorder:
    def __init__(self, opts: RecordOptions, say: Callable[[str], None]) -> None:
        if not opts.filters:
            raise UserError("give at least one --topic FILTER")
        self.opts = opts
        self.say = say
        self.target: Target = parse_target(opts.url)
        self.ssl = ssl_context_for(opts.tls) if self.target.tls else None
        self.version = c.V5 if opts.version == "5" else c.V311
        self.client_id = opts.client_id or f"simd-record-{os.getpid()}-{time.time_ns() % 10**6}"
        self.topics: set[str] = set()
        self.writer: RecordingWriter | None = None
        self.t0 = 0.0
        self.result = RecordResult(opts.out)
        self.live: Link | None = None
        self.on_subscribed: Callable[[], None] = lambda: None

    def now_ns(self) -> int:
        return int((trio.current_time() - self.t0) * 1e9)

    async def run(self) -> RecordResult:
        self.t0 = trio.current_time()
        t0_epoch = time.time_ns()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._signals, nursery.cancel_scope)
                if self.opts.duration_s is not None:
                    nursery.cancel_scope.deadline = self.t0 + self.opts.duration_s
                await self._first_connection(nursery, t0_epoch)
                nursery.start_soon(self._flusher)
                await self._stay_connected(nursery)
        finally:
            with trio.CancelScope(shield=True):
                await self._goodbye()
            if self.writer is not None:
                self.writer.close(self.now_ns())
                self.result.messages = self.writer.messages
                self.result.bytes = self.writer.bytes
        self.result.topics = len(self.topics)
        self.result.duration_s = self.now_ns() / 1e9
        return self.result

    async def _goodbye(self) -> None:
        """DISCONNECT (MQTT 5: and let the broker drop our session now), then close."""
        if self.live is not None:
            props: c.Properties = ()
            if self.version == c.V5:
                props = (("session_expiry_interval", 0),)
            await self.live.goodbye(props)

    async def _signals(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                self.result.stopped_by = signal.Signals(signum).name
                scope.cancel()
                return

    async def _flusher(self) -> None:
        while True:
            await trio.sleep(FLUSH_S)
            assert self.writer is not None
            self.writer.flush()

    async def _first_connection(self, nursery: trio.Nursery, t0_epoch: int) -> None:
        def open_writer() -> None:
            if self.writer is None:
                self.writer = RecordingWriter(
                    self.opts.out,
                    t0_epoch_ns=t0_epoch,
                    source=self.opts.url,
                    filters=self.opts.filters,
                    mqtt_version=self.opts.version,
                )

        self.on_subscribed = open_writer
        try:
            self.live = await self._connect(nursery, clean=True)
        except ConnectRefused as exc:
            raise UserError(f"{strip_credentials(self.opts.url)}: {exc}") from None
        except LINK_ERRORS as exc:
            where = strip_credentials(self.opts.url)
            raise RunError(f"cannot record from {where}: {reason_of(exc)}") from None

    async def _stay_connected(self, nursery: trio.Nursery) -> None:
        assert self.live is not None
        link = self.live
        backoff = BACKOFF_MIN_S
        while True:
            try:
                await link.run(self._on_read, keepalive_s=KEEPALIVE_S)
            except LINK_ERRORS as exc:
                reason = reason_of(exc)
            self.live = None
            with trio.CancelScope(shield=True):
                await link.abort()
            lost = self.now_ns()
            while True:
                self.say(f"connection lost ({reason}); reconnecting in {backoff:g}s")
                await trio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                try:
                    link = await self._connect(nursery, clean=False)
                    break
                except (ConnectRefused, *LINK_ERRORS) as exc:
                    reason = str(exc) if isinstance(exc, ConnectRefused) else reason_of(exc)
            self.live = link
            backoff = BACKOFF_MIN_S
            self.result.reconnects += 1
            assert self.writer is not None
            self.writer.gap(lost, self.now_ns(), reason)
            self.say(f"reconnected after {(self.now_ns() - lost) / 1e9:.1f}s")

    async def _connect(self, nursery: trio.Nursery, clean: bool) -> Link:
        """Connect and subscribe; messages that arrive before the SUBACK are kept."""
        props: c.Properties = ()
        if self.version == c.V5:
            props = (("session_expiry_interval", SESSION_EXPIRY_S),)
        packet = c.Connect(
            self.client_id,
            self.version,
            clean or self.version == c.V311,
            KEEPALIVE_S,
            self.opts.username or self.target.username,
            self.opts.password or self.target.password,
            None,
            props,
        )
        with trio.fail_after(CONNECT_TIMEOUT_S):
            link, _, rest = await open_link(
                self.target, self.ssl, self.opts.tls, nursery, ClientSession(self.version), packet
            )
            try:
                self._on_read([], rest)
                filters = [(f, self.opts.qos) for f in self.opts.filters]
                _, after = await link.subscribe(filters, self._on_read)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await link.abort()
                raise
        self.on_subscribed()
        self._on_read([], after)
        return link

    def _on_read(self, done: list[int], events: list[Event]) -> None:
        now = self.now_ns()
        for ev in events:
            if isinstance(ev, Received):  # retained ones come right after SUBACK
                self._write(ev.publish, now)

    def _write(self, p: c.Publish, now: int) -> None:
        if self.writer is None:  # before the first SUBACK of the very first connection
            return
        self.topics.add(p.topic)
        self.writer.add(now, p.topic, p.payload, p.qos, p.retain, p.properties)


def record(opts: RecordOptions, say: Callable[[str], None]) -> RecordResult:
    """Record until the duration ends or a signal arrives; returns what was written."""
    try:
        return trio.run(Recorder(opts, say).run)
    except BaseExceptionGroup as group:
        leaf = first_leaf(group)
        if isinstance(leaf, SimdError):
            raise leaf from None
        raise
