"""The trio shell of an MQTT session: one network connection, its bytes and its time.

The one connect and receive loop of simd's MQTT clients — devices, probes, listening devices and
commanders (simd.transports.mqtt.transport, .probes) and `simd record` (.recorder). A `Link`
moves what its `ClientSession` queued to the socket and what the socket gave to the session;
it builds no packet and keeps no protocol state (STYLE.md habit 16).

Writes: `flush` writes straight to a plain TCP socket when it takes the bytes (no task switch,
which is what lets one worker drive thousands of connections); when it does not (buffer full,
TLS, WebSocket) a writer task is started for the link and sends the rest. One sender at a time:
`send` (for handshakes and goodbyes) waits for a running write to end first.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Callable

import trio

from simd.model.scenario import TlsOptions
from simd.transports._net import NETWORK_ERRORS, Target, open_stream, reason_of
from simd.transports.mqtt import codec as c
from simd.transports.mqtt.reasons import reason_text
from simd.transports.mqtt.session import (
    ClientSession,
    Connected,
    Event,
    Refused,
    ServerDisconnected,
    State,
    Subscribed,
)

LINK_ERRORS = (*NETWORK_ERRORS, trio.TooSlowError, c.ProtocolError)
READ_SIZE = 65536

# what a read hands on: the tags of completed publishes and the other events, in order
Handler = Callable[[list[int], list[Event]], None]


class ConnectRefused(Exception):
    """The broker answered CONNECT (or SUBSCRIBE) and said no; the text names the reason."""


class Link:
    """One network connection of a session (see the module docstring)."""

    def __init__(self, stream: trio.abc.Stream, session: ClientSession, nursery: trio.Nursery):
        self.stream = stream
        self.session = session
        self.nursery = nursery
        sock = getattr(stream, "socket", None)
        self.fd: int | None = sock.fileno() if sock is not None else None  # plain TCP only
        self.wake = trio.Event()
        self.writing = False  # the writer task is inside send_all
        self.written = trio.Event()  # set when a send_all ends
        self.writer = False
        self.failed: str | None = None  # why the writer gave up (the reader then ends too)
        self.closed = False
        self.last_in = self.last_out = trio.current_time()
        # set by the reactor that reads it (simd.transports.mqtt.reactor): told before it closes
        self.on_abort: Callable[[Link, str], None] | None = None

    # ------------------------------------------------------------- writing

    def flush(self) -> None:
        """Write everything queued: straight to the socket when it takes it (plain TCP, no
        write in progress); otherwise the link's writer task sends it."""
        session = self.session
        if self.closed or not session.outbound:
            return
        if self.fd is not None and not self.writing:
            data = session.take_outbound()
            try:
                n = os.write(self.fd, data)
            except BlockingIOError:
                n = 0
            except OSError:
                n = 0  # the writer's send_all raises it again, and the link ends
            self.last_out = trio.current_time()
            if n >= len(data):
                return
            session.outbound[:0] = data[n:]
        self._start_writer()
        self.wake.set()

    def _start_writer(self) -> None:
        """Started the first time a write cannot be direct: most plain connections never need
        one (memory per device)."""
        if not self.writer:
            self.writer = True
            self.nursery.start_soon(self._writer)

    async def _writer(self) -> None:
        try:
            while not self.closed:
                await self.wake.wait()
                self.wake = trio.Event()
                if self.session.outbound and not self.closed:
                    self.last_out = trio.current_time()
                    self.writing = True
                    try:
                        await self.stream.send_all(self.session.take_outbound())
                    finally:
                        self.writing = False
                        self.written.set()
        except (*NETWORK_ERRORS, trio.BusyResourceError) as exc:
            self.failed = reason_of(exc)
            with trio.CancelScope(shield=True):
                await self.abort()  # the reader's receive ends with it

    async def send(self) -> None:
        """Send everything queued now, after any write in progress (handshakes, goodbyes)."""
        while self.writing:
            self.written = trio.Event()
            await self.written.wait()
        if self.session.outbound:
            self.last_out = trio.current_time()
            await self.stream.send_all(self.session.take_outbound())

    # ------------------------------------------------------------- reading

    async def receive(self) -> tuple[list[int], list[Event]]:
        """One read: (tags of completed publishes, other events). Raises when the connection
        ended (end of stream, a DISCONNECT from the broker, a protocol error)."""
        return self._received(await self.stream.receive_some(READ_SIZE))

    def read_now(self) -> tuple[list[int], list[Event]] | None:
        """One read of what the socket holds, without waiting (a reactor saw it readable; plain
        TCP only): None if it held nothing after all. Raises as `receive` does."""
        assert self.fd is not None
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise trio.BrokenResourceError(f"read failed: {exc.strerror or exc}") from exc
        return self._received(data)

    def _received(self, data: bytes) -> tuple[list[int], list[Event]]:
        if not data:
            raise trio.BrokenResourceError("connection closed by the broker")
        self.last_in = trio.current_time()
        done, events = self.session.receive_acks(data)
        for ev in events:
            if isinstance(ev, ServerDisconnected):
                why = reason_text(ev.reason_code, self.session.version)
                raise trio.BrokenResourceError(f"broker sent DISCONNECT: {why}")
        return done, events

    async def run(self, handle: Handler, keepalive_s: float | None = None) -> None:
        """Read until the connection ends, handing every read to `handle` and writing what the
        session queued in answer. With `keepalive_s`, ping when idle and give up when the
        broker was silent for 1.5 keepalives (MQTT-3.1.2-24, the server's side of it); without
        it the caller keeps the link alive (the transport sweeps all devices at once)."""
        while True:
            if keepalive_s is None:
                done, events = await self.receive()
            else:
                with trio.move_on_after(keepalive_s / 2) as idle:
                    done, events = await self.receive()
                if idle.cancelled_caught:
                    if trio.current_time() - self.last_in > 1.5 * keepalive_s:
                        raise trio.TooSlowError("keepalive expired")
                    self.session.ping()
                    await self.send()
                    continue
            handle(done, events)
            self.flush()

    async def subscribe(
        self, filters: list[tuple[str, int]], handle: Handler
    ) -> tuple[Subscribed, list[Event]]:
        """SUBSCRIBE and wait for the SUBACK, handing what arrives before it to `handle` (a
        resumed session's messages); returns the SUBACK and the events read after it in the
        same read (retained messages come right after the SUBACK), for the caller to handle.
        A refused filter raises ConnectRefused naming it."""
        self.session.subscribe(filters)
        await self.send()
        while True:
            done, events = await self.receive()
            for i, ev in enumerate(events):
                if isinstance(ev, Subscribed):
                    handle(done, events[:i])
                    self.flush()
                    bad = [
                        f"{f} (reason 0x{rc:02x})"
                        for (f, _), rc in zip(filters, ev.reason_codes, strict=False)
                        if rc >= 0x80
                    ]
                    if bad:
                        raise ConnectRefused(f"subscription refused: {', '.join(bad)}")
                    return ev, events[i + 1 :]
            handle(done, events)
            self.flush()

    # ------------------------------------------------------------- ending

    async def goodbye(self, properties: c.Properties = (), bound_s: float = 1.0) -> bool:
        """DISCONNECT and close, within `bound_s`; True when the DISCONNECT was written."""
        sent = False
        with trio.move_on_after(bound_s):
            with contextlib.suppress(*LINK_ERRORS, trio.BusyResourceError):
                self.session.disconnect(properties)
                await self.send()
                sent = True
        await self.abort()
        return sent

    async def abort(self) -> None:
        """Close the connection without a word (at most 1 s; its tasks end with it)."""
        self.closed = True
        self.wake.set()
        if self.on_abort is not None:  # before its descriptor closes (and is reused)
            self.on_abort(self, self.failed or "connection closed")
        with trio.move_on_after(1):
            await trio.aclose_forcefully(self.stream)


async def open_link(
    target: Target,
    ssl_context: ssl.SSLContext | None,
    tls: TlsOptions,
    nursery: trio.Nursery,
    session: ClientSession,
    packet: c.Connect,
    local: str | None = None,
) -> tuple[Link, Connected, list[Event]]:
    """Open a connection and do the MQTT handshake: (the link, its CONNACK, what arrived in
    the same read after it — a resumed session's messages). A refusal raises ConnectRefused
    with the reason in words; network and protocol failures raise as they are (LINK_ERRORS).
    The caller bounds the time (trio.fail_after)."""
    stream = await open_stream(target, ssl_context, tls, nursery, local)
    link = Link(stream, session, nursery)
    try:
        session.connect(packet)
        if link.fd is not None:
            link.flush()  # straight to a new socket (what it does not take, the writer sends)
        else:
            await link.send()
        while True:
            _, events = await link.receive()
            for i, ev in enumerate(events):
                if isinstance(ev, Refused):
                    why = reason_text(ev.reason_code, session.version)
                    raise ConnectRefused(f"connect refused: {why}")
                if isinstance(ev, Connected):
                    link.flush()  # a resumed session's re-sends
                    return link, ev, events[i + 1 :]
    except BaseException:
        if session.state is not State.CLOSED:
            session.lost()  # no connection: the session may connect again (its state kept)
        with trio.CancelScope(shield=True):
            await link.abort()
        raise
