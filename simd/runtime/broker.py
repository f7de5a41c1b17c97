"""The embedded default broker: a real MQTT broker as a subprocess on a free loopback port.

mosquitto when it is on PATH (fast, MQTT 5), otherwise amqtt from PyPI (a dependency, so a fresh
machine needs no system package; MQTT 3.1.1 only). `target = "embedded"` and `simd broker` use it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from simd.errors import RunError, UserError

START_TIMEOUT_S = 20.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def available_kinds() -> list[str]:
    kinds = []
    if shutil.which("mosquitto"):
        kinds.append("mosquitto")
    try:
        import amqtt  # noqa: F401

        kinds.append("amqtt")
    except ImportError:
        pass
    return kinds


@dataclass
class EmbeddedBroker:
    """Start with `with EmbeddedBroker() as b:`; `b.url` is where it listens."""

    kind: str | None = None  # mosquitto | amqtt | None (the best available)
    port: int = 0
    extra_conf: str = ""  # appended to mosquitto.conf (tests: password_file, allow_anonymous)
    tls: tuple[str, str, str] | None = None  # (ca, cert, key) files: the listener speaks TLS
    websockets: bool = False  # the listener speaks MQTT over WebSocket
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None
    _dir: Path | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        if self.websockets:
            return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}/mqtt"
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def mqtt5(self) -> bool:
        return self.kind == "mosquitto"

    def start(self) -> EmbeddedBroker:
        kinds = available_kinds()
        if self.kind is None:
            if not kinds:
                raise UserError("no embedded broker: install mosquitto or the amqtt package")
            self.kind = kinds[0]
        elif self.kind not in kinds:
            raise UserError(f"broker {self.kind!r} is not installed (available: {kinds or 'none'})")
        self.port = self.port or free_port(self.host)
        self._dir = Path(tempfile.mkdtemp(prefix="simd-broker-"))
        log = open(self._dir / "broker.log", "wb")  # noqa: SIM115 - closed with the process
        if self.kind == "mosquitto":
            conf = self._dir / "mosquitto.conf"
            anonymous = "" if "allow_anonymous" in self.extra_conf else "allow_anonymous true\n"
            tls = ""
            if self.tls:
                ca, cert, key = self.tls
                tls = f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
            conf.write_text(
                f"listener {self.port} {self.host}\n"
                + ("protocol websockets\n" if self.websockets else "")
                + f"{tls}{anonymous}"
                "persistence false\n"
                "max_connections -1\n"
                "max_inflight_messages 0\n"
                "max_queued_messages 100000\n"
                "log_type error\n"
                # stay the invoking user: as root, mosquitto would switch to its own user and
                # lose access to files the test or the user names (password files, certificates)
                f"user {pwd.getpwuid(os.getuid()).pw_name}\n" + self.extra_conf
            )
            cmd = [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)]
        else:
            conf = self._dir / "amqtt.yaml"
            conf.write_text(
                "listeners:\n"
                "  default:\n"
                f"    type: {'ws' if self.websockets else 'tcp'}\n"
                f"    bind: {self.host}:{self.port}\n"
                "    max_connections: 100000\n"
                "sys_interval: 0\n"
                "auth:\n"
                "  allow-anonymous: true\n"
                "topic-check:\n"
                "  enabled: false\n"
            )
            cmd = [
                sys.executable,
                "-c",
                "from amqtt.scripts.broker_script import main; main()",
                "-c",
                str(conf),
            ]
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RunError(f"embedded broker ({self.kind}) exited at start: {self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RunError(f"embedded broker ({self.kind}) did not listen on {self.url} in time")

    def log_text(self) -> str:
        if self._dir is None or not (self._dir / "broker.log").exists():
            return ""
        return (self._dir / "broker.log").read_text(errors="replace")

    def log_tail(self) -> str:
        if self._dir is None or not (self._dir / "broker.log").exists():
            return ""
        return (self._dir / "broker.log").read_text(errors="replace")[-400:].strip()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def restart(self) -> None:
        """Stop and start again on the same port (tests: a broker restarted mid-run)."""
        kind, port = self.kind, self.port
        self.stop()
        self.kind, self.port = kind, port
        self.start()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
