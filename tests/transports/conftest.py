"""The transports every conformance test runs over, each against a real server on loopback:
null, sim, MQTT on mosquitto and on amqtt, HTTP on the test server, the example plugin on
redis-server."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, need_mosquitto
from tests.http_server import HttpServer
from tests.redis_server import RedisServer
from tests.transports.harness import Under

TIMEOUTS = {"reconnect_min": "100ms", "reconnect_max": "300ms", "connect_timeout": "2s"}
TRANSPORTS = ["null", "sim", "mqtt-mosquitto", "mqtt-amqtt", "http", "plugin-redis"]


def _signal(proc_pid: int, sig: signal.Signals) -> None:
    os.kill(proc_pid, sig)


def _mqtt(kind: str) -> Iterator[Under]:
    from simd.runtime.broker import EmbeddedBroker, available_kinds

    if kind == "mosquitto":
        need_mosquitto()
    elif kind not in available_kinds():
        pytest.fail(f"{kind} is a test dependency and is not installed")
    broker = EmbeddedBroker(kind).start()
    try:
        yield Under(
            f"mqtt-{kind}",
            broker.url,
            group={"mqtt": {"publish_timeout": "500ms", **TIMEOUTS}},
            stall=lambda: _signal(broker.proc.pid, signal.SIGSTOP),  # type: ignore[union-attr]
            unstall=lambda: _signal(broker.proc.pid, signal.SIGCONT),  # type: ignore[union-attr]
            restart=broker.restart,
        )
    finally:
        if broker.proc is not None and broker.proc.poll() is None:
            _signal(broker.proc.pid, signal.SIGCONT)
        broker.stop()


def _http() -> Iterator[Under]:
    servers = [HttpServer().__enter__()]
    port = servers[0].port

    def stall() -> None:
        servers[-1].handler.delay_s = 2.0

    def unstall() -> None:
        servers[-1].handler.delay_s = 0.0

    def restart() -> None:
        servers[-1].__exit__(None, None, None)
        servers.append(HttpServer(port=port).__enter__())

    try:
        yield Under(
            "http",
            f"http://127.0.0.1:{port}",
            group={
                "http": {"timeout": "500ms", "connect_timeout": "2s"},
                "requests": [{"name": "list", "path": "/v1/users"}],
            },
            bodies=False,
            stall=stall,
            unstall=unstall,
            restart=restart,
        )
    finally:
        servers[-1].__exit__(None, None, None)


def _plugin(tmp: Path) -> Iterator[Under]:
    shutil.copy(REPO / "examples" / "plugins" / "redis_streams.py", tmp / "redis_streams.py")
    server = RedisServer().start()

    def restart() -> None:
        server.stop()
        server.start()

    try:
        yield Under(
            "plugin-redis",
            f"plugin:redis_streams:RedisStreams?port={server.port}",
            group={"plugin": {"publish_timeout": "500ms", **TIMEOUTS}},
            folder=tmp,
            stall=lambda: _signal(server.proc.pid, signal.SIGSTOP),  # type: ignore[union-attr]
            unstall=lambda: _signal(server.proc.pid, signal.SIGCONT),  # type: ignore[union-attr]
            restart=restart,
        )
    finally:
        if server.proc is not None and server.proc.poll() is None:
            _signal(server.proc.pid, signal.SIGCONT)
        server.stop()


@pytest.fixture(params=TRANSPORTS)
def under(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Under]:
    """One transport under test, its server started for the test and stopped after it."""
    name = request.param
    if name == "null":
        yield Under("null", "null:", sessions=False)
    elif name == "sim":
        yield Under("sim", "sim:", sessions=False, top={"sim": {"timeout": "500ms"}})
    elif name.startswith("mqtt-"):
        yield from _mqtt(name.removeprefix("mqtt-"))
    elif name == "http":
        yield from _http()
    else:
        yield from _plugin(tmp_path)
