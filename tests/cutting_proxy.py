"""A TCP proxy in front of a real broker that cuts each client's first connection after a few
PUBLISHes whose acks it withholds: the peer a persistent session has to survive.

Per client id it records every PUBLISH the client sent (connection number, packet id, DUP flag)
and the packet ids whose PUBACK it let through, so a test can tell exactly which publishes were
in flight when the link was cut and how the client re-sent them. With `connack_delay` it holds
each CONNACK back that long: a target slow to accept connections. It reads MQTT's fixed headers,
CONNECT (3.1.1 and 5.0) and PUBLISH/PUBACK by hand (MQTT 2.2, 3.1, 3.3, 3.4): it trusts nothing
of simd's codec, whose behaviour it checks.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class Seen:
    publishes: list[tuple[int, int, bool]] = field(default_factory=list)  # (conn, pid, dup)
    acked: set[tuple[int, int]] = field(default_factory=set)  # (conn, pid) PUBACKs let through
    connections: int = 0


def _packets(buf: bytearray) -> list[tuple[int, bytes]]:
    """Whole packets (first byte, body) taken off the front of `buf`."""
    out = []
    while len(buf) >= 2:
        length, mult, i = 0, 1, 1
        while True:
            if i >= len(buf):
                return out
            b = buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if len(buf) < i + length:
            return out
        out.append((buf[0], bytes(buf[i : i + length])))
        del buf[: i + length]
    return out


def _client_id(body: bytes) -> str:
    name_len = struct.unpack_from(">H", body, 0)[0]
    pos = 2 + name_len
    level = body[pos]
    pos += 1 + 1 + 2  # level, flags, keepalive
    if level == 5:
        props, mult = 0, 1
        while True:
            b = body[pos]
            pos += 1
            props += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        pos += props
    n = struct.unpack_from(">H", body, pos)[0]
    return body[pos + 2 : pos + 2 + n].decode()


class CuttingProxy:
    """Listens on 127.0.0.1; each client's first connection is cut after `cut_after` PUBLISHes
    (None: never), the acks of the last `withheld` of them never forwarded; every CONNACK is
    forwarded `connack_delay` seconds late."""

    def __init__(
        self,
        upstream: tuple[str, int],
        cut_after: int | None = 6,
        withheld: int = 3,
        connack_delay: float = 0.0,
    ) -> None:
        self.upstream = upstream
        self.connack_delay = connack_delay
        self.cut_after = cut_after
        self.withheld = withheld
        self.seen: dict[str, Seen] = defaultdict(Seen)
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop = True
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream, timeout=10)
            up.settimeout(None)
            state = {"cid": None, "conn": 0, "mute": False, "count": 0}
            threading.Thread(target=self._up, args=(client, up, state), daemon=True).start()
            threading.Thread(target=self._down, args=(up, client, state), daemon=True).start()

    def _up(self, client: socket.socket, up: socket.socket, state: dict) -> None:
        """Client -> broker: note CONNECTs and PUBLISHes; cut when the time has come."""
        buf = bytearray()
        try:
            while data := client.recv(65536):
                buf += data
                out = bytearray()
                for first, body in _packets(buf):
                    kind = first >> 4
                    if kind == 1:  # CONNECT
                        cid = _client_id(body)
                        with self.lock:
                            self.seen[cid].connections += 1
                            state["cid"], state["conn"] = cid, self.seen[cid].connections
                    elif kind == 3 and (first >> 1) & 3:  # PUBLISH, qos 1 or 2
                        topic_len = struct.unpack_from(">H", body, 0)[0]
                        pid = struct.unpack_from(">H", body, 2 + topic_len)[0]
                        with self.lock:
                            s = self.seen[state["cid"]]
                            s.publishes.append((state["conn"], pid, bool(first & 0x08)))
                        state["count"] += 1
                        cut = self.cut_after
                        if (
                            cut is not None
                            and state["conn"] == 1
                            and state["count"] > cut - self.withheld
                        ):
                            state["mute"] = True  # no more acks reach this connection
                    out += bytes([first]) + _varint(len(body)) + body
                    cut = self.cut_after
                    if cut is not None and state["conn"] == 1 and state["count"] >= cut:
                        up.sendall(out)
                        raise ConnectionAbortedError("cut")
                if out:
                    up.sendall(out)
        except OSError:
            pass
        finally:
            for s in (client, up):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def _down(self, up: socket.socket, client: socket.socket, state: dict) -> None:
        """Broker -> client: forward, except while muted; note the PUBACKs let through."""
        buf = bytearray()
        try:
            while data := up.recv(65536):
                buf += data
                out = bytearray()
                for first, body in _packets(buf):
                    if state["mute"]:
                        continue
                    if first >> 4 == 2 and self.connack_delay:  # CONNACK
                        time.sleep(self.connack_delay)
                    if first >> 4 == 4:  # PUBACK
                        pid = struct.unpack_from(">H", body, 0)[0]
                        with self.lock:
                            self.seen[state["cid"]].acked.add((state["conn"], pid))
                    out += bytes([first]) + _varint(len(body)) + body
                if out:
                    client.sendall(out)
        except OSError:
            pass


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)
