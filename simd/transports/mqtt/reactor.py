"""One task that reads every plain-TCP connection of a worker.

A reader task per connection costs a trio wake-up per read: with 1,000 devices at QoS 1 that
is a task switch (and a wait_readable registration) for nearly every PUBACK, and at 80k acks/s
those switches alone filled the worker's core. The reactor keeps its own epoll set of the
connections' sockets and waits on that one descriptor; each wake-up reads every socket that has
bytes (`Link.read_now`), hands them to the connection's handler and writes what the session
queued in answer, without a task switch per connection. Level-triggered: a socket with more than
one read's worth is read again on the next round. TLS and WebSocket links keep a reader task
each (`Link.run`): their bytes pass through a layer that may buffer.

A connection leaves the reactor when its link is aborted (`Link.abort` calls `drop` before the
descriptor closes, so a new connection reusing the number is never mistaken for it); a read that
fails (end of stream, a reset, a DISCONNECT from the broker, a protocol error) calls the
connection's `lost` with the reason.
"""

from __future__ import annotations

import contextlib
import select
from collections.abc import Callable

import trio

from simd.transports._net import reason_of
from simd.transports.mqtt.connection import LINK_ERRORS, Link
from simd.transports.mqtt.session import Event

MAX_EVENTS = 1024  # sockets handled per wake-up at most (the rest on the next)

Handler = Callable[[list[int], list[Event]], None]
Lost = Callable[[Link, str], None]


class Reactor:
    """Reads a worker's plain-TCP links in one task (see the module docstring)."""

    def __init__(self) -> None:
        self.epoll = select.epoll()
        self.links: dict[int, tuple[Link, Handler, Lost]] = {}

    def add(self, link: Link, handle: Handler, lost: Lost) -> None:
        assert link.fd is not None
        self.links[link.fd] = (link, handle, lost)
        self.epoll.register(link.fd, select.EPOLLIN)
        link.on_abort = self.drop

    def drop(self, link: Link, reason: str) -> None:
        """`link` is closing: stop reading it; its `lost` hears why (once)."""
        entry = self.links.get(link.fd) if link.fd is not None else None
        if entry is None or entry[0] is not link:
            return
        del self.links[link.fd]  # type: ignore[arg-type]
        with contextlib.suppress(OSError, ValueError):
            self.epoll.unregister(link.fd)  # type: ignore[arg-type]
        entry[2](link, reason)

    async def run(self) -> None:
        try:
            while True:
                await trio.lowlevel.wait_readable(self.epoll.fileno())
                for fd, _ in self.epoll.poll(0, MAX_EVENTS):
                    entry = self.links.get(fd)
                    if entry is None:
                        continue
                    link, handle, _lost = entry
                    try:
                        got = link.read_now()
                    except LINK_ERRORS as exc:
                        self.drop(link, link.failed or reason_of(exc))
                        continue
                    if got is not None:
                        handle(*got)
                        link.flush()
        finally:
            self.close()

    def close(self) -> None:
        self.links.clear()
        self.epoll.close()
