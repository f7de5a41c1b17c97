"""What a plugin's code sees: the target, its device, each message; and what it implements."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol
from urllib.parse import urlsplit

from simd.errors import UserError
from simd.model.secrets import redact_text


class ConnectionLost(Exception):
    """Raised by a client's `publish` when its connection is gone: the publish fails with this
    text, the device is marked down (its next publishes are `dropped` until it is back) and simd
    connects it again in the background, with backoff. An OSError from `publish` counts as this
    too; any other exception fails that one publish and keeps the connection."""


@dataclass(frozen=True)
class Target:
    """Where the fleet publishes: the target as written and its options.

    `url` is the scenario's target without the class (`plugin:mod:Class?host=h` gives
    `?host=h`; a scheme of an entry point gives the whole URL). `options` are the URL's query
    parameters, then the group's `[fleet.plugin.options]` (which win)."""

    url: str
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str | None:
        """The `host` option, else the URL's host (`redis://h:6379` gives h)."""
        return self.options.get("host") or urlsplit(self.url).hostname

    @property
    def port(self) -> int | None:
        """The `port` option, else the URL's port."""
        given = self.options.get("port")
        if given is not None:
            try:
                return int(given)
            except ValueError:
                raise UserError(f"target option port={given!r}: not a number") from None
        try:
            return urlsplit(self.url).port
        except ValueError:
            raise UserError(f"target {redact_text(self.url)!r}: the port is not a number") from None

    def option(self, name: str, default: str | None = None) -> str | None:
        """An option's value, or `default` when it is not given."""
        return self.options.get(name, default)

    def secret(self, name: str) -> str | None:
        """A secret option: read from the environment variable named by `<name>_env` (so it
        never sits in the scenario or the run's files), else the option itself."""
        env = self.options.get(f"{name}_env")
        if env is not None:
            value = os.environ.get(env)
            if value is None:
                raise UserError(f"target option {name}_env: environment variable {env} is not set")
            return value
        return self.options.get(name)


@dataclass(frozen=True)
class Device:
    """One simulated device: its id (the group's `id` template), its index in its group, its
    group's name and its number in the whole fleet."""

    id: str
    index: int
    group: str
    number: int


@dataclass(frozen=True)
class Message:
    """One scheduled publish: its rendered topic and payload, QoS, the device's sequence number
    and the message's name in the group (`[[fleet.messages]]`, or "default")."""

    topic: str
    payload: bytes
    qos: int
    seq: int
    name: str


class Client(Protocol):
    """A device's client, written for trio (or AnyIO, which runs on trio).

    Construction must not do I/O; `connect` opens the device's session and raises when it
    cannot. `publish` returns when the message is complete (acknowledged, or written for a
    protocol without acknowledgements: set `confirms = False` and rows say `sent`, not
    `acked`) and raises when it failed. simd bounds each call by the group's
    `[fleet.plugin]` timeouts and cancels it at the bound; after a cancelled publish the
    connection is closed and opened again (its state is unknown). At most `concurrency`
    publishes of one device run at once (default 1: in order). `close` ends the session."""

    confirms: ClassVar[bool]
    concurrency: ClassVar[int]

    def __init__(self, target: Target, device: Device) -> None: ...

    async def connect(self) -> None: ...

    async def publish(self, message: Message) -> None: ...

    async def close(self) -> None: ...
