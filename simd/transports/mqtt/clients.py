"""What each device of a worker's slice connects as: its client id, login, topics and filters.

A `Client` is one simulated MQTT client: who it is (built once, before any connection, by
`build_clients`) and what it has now (its session, which outlives a connection when the session
is persistent, and its current link).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from simd.errors import UserError
from simd.model.scenario import MqttOptions, Scenario, fill_template, resolve_path
from simd.transports._base import DeviceSet
from simd.transports._net import Target
from simd.transports.mqtt.connection import Link
from simd.transports.mqtt.session import ClientSession, topic_bytes


@dataclass
class Client:
    index: int  # within the worker's slice
    device: int  # global index
    group: int
    local: int  # index within its group
    client_id: str
    username: str | None
    password: bytes | None
    session: ClientSession | None = None  # from its first connection on
    link: Link | None = None  # while connected
    up: bool = False  # CONNACK received, not lost: can publish
    window: int = 1000
    attempts: int = 0  # connection attempts since the last success (the backoff's exponent)
    subs: list[tuple[str, int]] = field(default_factory=list)  # its own filters, if it listens


def build_clients(
    scenario: Scenario, devices: DeviceSet, target: Target, base: Path
) -> tuple[list[Client], list[list[bytes]], list[dict[str, str]]]:
    """Every device's Client, its encoded topic per message of its group (b"" for a
    commander's: each command goes to its target's topic) and its template fields."""
    offsets = scenario.group_offsets()
    messages = [g.resolved_messages() for g in scenario.fleet]  # once, not per device
    tokens = _tokens(scenario, base)
    clients: list[Client] = []
    topics: list[list[bytes]] = []
    fields_of: list[dict[str, str]] = []
    for i, (dev, gi, did) in enumerate(
        zip(devices.device.tolist(), devices.group.tolist(), devices.ids, strict=True)
    ):
        g = scenario.fleet[gi]
        local = dev - offsets[gi]
        fields = {"device_id": did, "index": str(local), "group": g.name}
        username, password = _login(g.mqtt, fields, target, tokens.get(gi), local)
        clients.append(
            Client(i, dev, gi, local, fill_template(g.mqtt.client_id, fields), username, password)
        )
        topics.append(
            [
                b""
                if g.commands is not None
                else topic_bytes(fill_template(m.topic or "", {**fields, "message": m.name}))
                for m in messages[gi]
            ]
        )
        fields_of.append(fields)
    return clients, topics, fields_of


def _tokens(scenario: Scenario, base: Path) -> dict[int, list[str]]:
    """Per group with a token_file: one token per device, by its index in the group."""
    tokens: dict[int, list[str]] = {}
    for gi, g in enumerate(scenario.fleet):
        if g.mqtt.token_file:
            path = resolve_path(g.mqtt.token_file, base)
            tokens[gi] = [t.strip() for t in path.read_text().splitlines() if t.strip()]
    return tokens


def _login(
    opts: MqttOptions,
    fields: dict[str, str],
    target: Target,
    tokens: list[str] | None,
    local: int,
) -> tuple[str | None, bytes | None]:
    """A device's user name and password: its group's, else the target URL's; a token from
    the group's token_file replaces one of them."""
    username = fill_template(opts.username, fields) if opts.username else None
    password = _password(opts)
    if username is None and password is None and target.username is not None:
        username, password = target.username, target.password  # mqtt://user:pass@host
    if tokens is not None:
        if opts.token_as == "username":
            username = tokens[local]
        else:
            password = tokens[local].encode()
    return username, password


def _password(opts: MqttOptions) -> bytes | None:
    if opts.password_env is not None:
        value = os.environ.get(opts.password_env)
        if value is None:
            raise UserError(
                f"mqtt.password_env: environment variable {opts.password_env} is not set"
            )
        return value.encode()
    return opts.password.encode() if opts.password is not None else None
