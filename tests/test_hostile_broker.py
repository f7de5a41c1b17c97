"""Hostile MQTT peers: whatever a 'broker' sends back, a run ends with one line naming why,
a non-zero exit, no traceback and no trio-internal text, and a log that reads back."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simd.log.eventlog import read_segment, segment_paths
from tests.conftest import run_dir_from, simd, write_scenario

CONNACK_311 = bytes([0x20, 0x02, 0x00, 0x00])

BEHAVIOURS: dict[str, Callable[[socket.socket], None]] = {
    "garbage instead of CONNACK": lambda s: s.sendall(os.urandom(64)),
    "CONNACK then garbage": lambda s: s.sendall(CONNACK_311 + bytes([0xF0, 0x05]) + b"xxxxx"),
    "a 256 MB remaining length": lambda s: s.sendall(bytes([0x30, 0xFF, 0xFF, 0xFF, 0x7F])),
    "closes at once": lambda s: None,
    "CONNACK, then PUBACKs for ids never sent": lambda s: s.sendall(
        CONNACK_311 + b"".join(bytes([0x40, 0x02, 0x7F, i]) for i in range(50))
    ),
    "CONNACK, then silence": lambda s: (s.sendall(CONNACK_311), threading.Event().wait(30)),
}


@contextlib.contextmanager
def hostile(behave: Callable[[socket.socket], None]) -> Iterator[str]:
    """A TCP server on loopback that reads a client's first bytes, then behaves so."""
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(5)
            conn.recv(65536)
            behave(conn)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"mqtt://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        srv.close()


SCENARIO = """
name = "hostile"
duration = "1500ms"
target = "mqtt://127.0.0.1:1"
[[fleet]]
name = "g"
count = 4
rate = 10.0
qos = 1
[fleet.mqtt]
connect_timeout = "1s"
publish_timeout = "1s"
reconnect_min = "100ms"
reconnect_max = "200ms"
"""


@pytest.mark.parametrize("name", list(BEHAVIOURS))
def test_a_hostile_broker_is_one_line_and_a_readable_log(tmp_path: Path, name: str) -> None:
    """Each hostile answer: exit 3, one `simd: error:` line, no traceback, no trio internals;
    every segment of the log reads back whole."""
    path = write_scenario(tmp_path, SCENARIO)
    with hostile(BEHAVIOURS[name]) as url:
        proc = simd("run", str(path), "--target", url, "--runs-dir", str(tmp_path / "runs"),
                    "--no-progress", "--no-report", timeout=120)  # fmt: skip
    err = proc.stderr
    assert proc.returncode == 3, (name, proc.returncode, err)
    assert "Traceback" not in err and "another task closed this fd" not in err, err
    assert [ln for ln in err.splitlines() if ln.startswith("simd: error:")], err
    for seg in segment_paths(run_dir_from(proc) / "events"):
        info, _ = read_segment(seg)
        assert info.torn is None and not info.damaged
