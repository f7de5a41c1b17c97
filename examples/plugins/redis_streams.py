"""A simd transport plugin: each device appends its messages to a Redis stream (XADD).

simd does not speak Redis; this file is all it takes. Use it with

    target = "plugin:redis_streams:RedisStreams?host=127.0.0.1&port=6379"

from a scenario in this folder (the scenario's folder is importable). The stream's key is the
message's topic (`devices/{device_id}/telemetry` by default), the entry has one field,
`payload`. A publish completes when Redis answers XADD with the entry's id, so rows are
`acked` with the round trip as latency.

Options (URL query or `[fleet.plugin.options]`): host, port, maxlen (trim each stream to about
this many entries, `MAXLEN ~`), username, and the password as `password_env` (the name of an
environment variable; a password never belongs in a scenario).

The protocol is RESP2 over one TCP connection per device, written with trio's streams.
"""

from __future__ import annotations

import trio

from simd.transports.plugin import ConnectionLost, Device, Message, Target


class RedisError(Exception):
    """Redis answered with an error reply (`-ERR ...`)."""


def command(*parts: bytes) -> bytes:
    """One RESP2 command: an array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


class Replies:
    """RESP2 replies read from a stream: simple strings, errors, integers, bulk strings."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buf = bytearray()

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise ConnectionLost("redis closed the connection")
        self.buf += data

    async def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            await self._fill()
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    async def read(self) -> bytes | int | None:
        line = await self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self.buf) < size + 2:
                await self._fill()
            value = bytes(self.buf[:size])
            del self.buf[: size + 2]
            return value
        raise ConnectionLost(f"unexpected reply {line[:40]!r}")


class RedisStreams:
    """One device's connection to Redis."""

    confirms = True  # XADD answers with the entry id: rows are acked
    concurrency = 1  # one command at a time per connection, replies in order

    def __init__(self, target: Target, device: Device) -> None:
        self.host = target.host or "127.0.0.1"  # ?host=, or redis://HOST:port as a scheme
        self.port = target.port or 6379
        maxlen = target.option("maxlen")
        self.trim = (b"MAXLEN", b"~", maxlen.encode()) if maxlen else ()
        self.username = target.option("username")
        self.password = target.secret("password")
        self.device = device
        self.stream: trio.SocketStream | None = None
        self.replies: Replies | None = None

    async def _call(self, *parts: bytes) -> bytes | int | None:
        assert self.stream is not None and self.replies is not None
        await self.stream.send_all(command(*parts))
        return await self.replies.read()

    async def connect(self) -> None:
        self.stream = await trio.open_tcp_stream(self.host, self.port)
        self.replies = Replies(self.stream)
        if self.password is not None:
            login = [self.username.encode()] if self.username else []
            await self._call(b"AUTH", *login, self.password.encode())
        await self._call(b"CLIENT", b"SETNAME", self.device.id.replace(" ", "_").encode())

    async def publish(self, message: Message) -> None:
        await self._call(
            b"XADD", message.topic.encode(), *self.trim, b"*", b"payload", message.payload
        )

    async def close(self) -> None:
        if self.stream is None:
            return
        try:
            await self._call(b"QUIT")
        finally:
            await self.stream.aclose()
