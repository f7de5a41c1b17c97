"""Scenarios from one command line: `simd pub`, `sub`, `conn` and `http` (simd.cli.quick).

Each builds the data of an ordinary scenario — what a TOML file would hold — so the run goes
through the same validation, log, ingest, report and exit codes as any other, and
`--print-scenario` can print it to keep. The flags follow emqtt-bench's where they overlap
(`-c` devices, `-I` interval in ms, `-t` topic with `%i` for the device's index and `%c` for its
client id, `-q`, `-s` payload size, `-m` message, `-V` MQTT version with 4 = 3.1.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simd.errors import UserError
from simd.model.edits import parse_value

VERSIONS = {"5": "5", "4": "3.1.1", "3.1.1": "3.1.1", "311": "3.1.1"}


@dataclass
class Common:
    """What every one-liner takes."""

    url: str
    count: int = 200
    duration: str = "10s"
    name: str | None = None
    seed: int = 0
    slo: list[str] = field(default_factory=list)  # KEY=VALUE, e.g. latency_p99=50ms
    connect_rate: float | None = None
    ramp: str | None = None  # the rate (or the connections) rise from 0 over this long


@dataclass
class Pub(Common):
    interval_ms: float | None = None
    rate: float | None = None
    topic: str = "devices/%i/telemetry"
    qos: int = 0
    size: int = 256
    message: str | None = None
    version: str = "3.1.1"
    username: str | None = None
    password_env: str | None = None
    retain: bool = False


@dataclass
class Sub(Common):
    topic: str = "#"
    qos: int = 1
    version: str = "5"


@dataclass
class Conn(Common):
    version: str = "3.1.1"
    username: str | None = None
    password_env: str | None = None
    keepalive: str = "60s"


@dataclass
class Http(Common):
    rate: float = 1.0
    method: str = "GET"
    path: str | None = None  # default: the URL's path
    headers: list[str] = field(default_factory=list)  # "Name: value"
    body: str | None = None
    expect_status: list[int] = field(default_factory=list)


def topic_template(topic: str) -> str:
    """emqtt-bench's topic placeholders in simd's: %i the device's index, %c its client id."""
    return topic.replace("%i", "{index}").replace("%c", "{device_id}")


def mqtt_version(text: str) -> str:
    try:
        return VERSIONS[text]
    except KeyError:
        raise UserError(f"-V {text!r}: an MQTT version is 5 or 3.1.1 (4)") from None


def pub_scenario(o: Pub) -> dict[str, Any]:
    """Devices that publish at a rate (emqtt_bench pub)."""
    group: dict[str, Any] = {
        "name": "pub",
        "count": o.count,
        "topic": topic_template(o.topic),
        "qos": o.qos,
        "retain": o.retain,
        "mqtt": _mqtt(o.version, o.username, o.password_env, o.connect_rate),
    }
    group.update(_timing(o.interval_ms, o.rate))
    if o.message is not None:
        group["payload"] = {"kind": "template", "template": o.message}
    else:
        group["payload"] = {"kind": "random", "size": o.size}
    return _scenario(o, o.name or "pub", [group])


def sub_scenario(o: Sub) -> dict[str, Any]:
    """Subscribers (probes) on a filter: delivery and, for messages with a simd trace, the
    end-to-end latency of whatever is published there. No device publishes."""
    probes = [
        {"name": f"sub-{i}", "topic": o.topic, "qos": o.qos, "version": mqtt_version(o.version)}
        for i in range(o.count)
    ]
    idle = _idle("idle", 1, _mqtt("3.1.1", None, None, None))  # a scenario has a fleet
    data = _scenario(o, o.name or "sub", [idle], hold=True)
    data["probe"] = probes
    return data


def conn_scenario(o: Conn) -> dict[str, Any]:
    """A connection storm: `count` connections, opened at `connect_rate` per second (all at
    once without it), each held to the end of the run; no publishes."""
    mqtt = _mqtt(o.version, o.username, o.password_env, o.connect_rate)
    mqtt["keepalive"] = o.keepalive
    return _scenario(o, o.name or "conn", [_idle("conn", o.count, mqtt)], hold=True)


def http_scenario(o: Http) -> dict[str, Any]:
    """Devices that each send one request at `rate` per second (an open model)."""
    from urllib.parse import urlsplit

    parts = urlsplit(o.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{o.url!r}: simd http needs an http:// or https:// URL")
    base = f"{parts.scheme}://{parts.netloc}"
    path = o.path or (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request: dict[str, Any] = {"name": "request", "method": o.method.upper(), "path": path}
    headers = {}
    for h in o.headers:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise UserError(f"-H {h!r}: a header is 'Name: value'")
        headers[name.strip()] = value.strip()
    if headers:
        request["headers"] = headers
    if o.body is not None:
        request["body"] = {"kind": "template", "template": o.body}
    if o.expect_status:
        request["expect_status"] = o.expect_status
    group = {"name": "http", "count": o.count, "rate": o.rate, "requests": [request]}
    data = _scenario(o, o.name or "http", [group])
    data["target"] = base
    return data


def _timing(interval_ms: float | None, rate: float | None) -> dict[str, Any]:
    if interval_ms is not None and rate is not None:
        raise UserError("give -I (interval in ms) or -r (messages/s per device), not both")
    if rate is not None:
        return {"rate": rate}
    ms = 1000.0 if interval_ms is None else interval_ms
    if ms <= 0:
        raise UserError(f"-I {ms:g}: the interval is > 0 ms")
    return {"interval": f"{ms:g}ms"}


def _mqtt(
    version: str, username: str | None, password_env: str | None, connect_rate: float | None
) -> dict[str, Any]:
    mqtt: dict[str, Any] = {"version": mqtt_version(version)}
    if username is not None:
        mqtt["username"] = username
    if password_env is not None:
        mqtt["password_env"] = password_env
    if connect_rate is not None:
        mqtt["connect_rate"] = connect_rate
    return mqtt


def _idle(name: str, count: int, mqtt: dict[str, Any]) -> dict[str, Any]:
    """Devices that connect and hold their connection, and publish nothing (their phase
    level is 0 for the whole run)."""
    return {"name": name, "count": count, "rate": 1.0, "mqtt": mqtt}


def _scenario(
    o: Common, name: str, fleet: list[dict[str, Any]], hold: bool = False
) -> dict[str, Any]:
    """The scenario around `fleet`; `hold`: its devices only connect (nothing publishes)."""
    data: dict[str, Any] = {"name": name, "seed": o.seed, "target": o.url}
    if hold:  # one phase at level 0 for the whole run
        data["phase"] = [{"name": "hold", "duration": o.duration, "level": 0.0}]
    elif o.ramp is not None:
        data["phase"] = [
            {"name": "ramp", "duration": o.ramp, "shape": "ramp", "start": 0.0, "end": 1.0},
            {"name": "steady", "duration": o.duration},
        ]
    else:
        data["duration"] = o.duration
    data["fleet"] = fleet
    if o.slo:
        data["slo"] = {k: v for k, v in (_slo(s) for s in o.slo)}
    return data


def _slo(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--slo {item!r}: expected NAME=LIMIT (e.g. latency_p99=50ms)")
    return key.strip(), parse_value(value.strip())
