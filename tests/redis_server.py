"""A real Redis on a free loopback port, for the transport plugin example (examples/plugins)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from simd.runtime.broker import free_port


def need_redis() -> str:
    """redis-server's path; skip where it is missing, fail where CI requires it."""
    path = shutil.which("redis-server")
    if path:
        return path
    if os.environ.get("SIMD_REQUIRE_REDIS"):
        pytest.fail("SIMD_REQUIRE_REDIS is set but redis-server is not on PATH")
    pytest.skip("redis-server is not installed (CI installs it and requires these tests)")


class RedisServer:
    """`redis-server` without persistence; `stop` and `start` again on the same port."""

    def __init__(self) -> None:
        self.binary = need_redis()
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [self.binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while self.call("PING") != "PONG":
            assert self.proc.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not answer PING in 20 s"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def call(self, *args: str) -> str | None:
        """One command's reply (a simple string, an integer as text, a bulk string), or None
        when nothing answers."""
        body = b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(b"*%d\r\n" % len(args) + body)
                data = b""
                while not data.endswith(b"\r\n") or (data[:1] == b"$" and data.count(b"\r\n") < 2):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            return None
        head, _, rest = data.partition(b"\r\n")
        if head[:1] == b"$":
            return rest[:-2].decode() if int(head[1:]) >= 0 else None
        return head[1:].decode()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
