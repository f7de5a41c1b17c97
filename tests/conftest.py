"""Shared helpers: run the CLI as a user would (a subprocess), write scenarios, read results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pytest

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"


def simd(
    *args: str,
    cwd: Path | None = None,
    timeout: float = 240,
    check: int | None = None,
    **popen: Any,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m simd ARGS` (`popen`: more subprocess.run arguments); if `check` is
    given, assert that exit code."""
    env = {**popen.pop("env", os.environ), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "simd", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **popen,
    )
    if check is not None:
        assert proc.returncode == check, (
            f"exit {proc.returncode} != {check}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def start_run(path: Path, runs: Path, run_id: str, *extra: str) -> subprocess.Popen[str]:
    """`simd run PATH` in the background (for tests that act on a run while it is on)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simd",
            "run",
            str(path),
            "--runs-dir",
            str(runs),
            "--run-id",
            run_id,
            "--no-progress",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(pred: Callable[[], T], timeout: float = 30.0, every: float = 0.05) -> T:
    """Poll `pred` until it returns something true, and return that; fail after `timeout`
    seconds. Tests wait on facts (a file, a count, a state), never on the machine's pace."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting"
        time.sleep(every)


def status_url(run_dir: Path, timeout: float = 30) -> str:
    """The live status server's URL once the run has written it into run.json."""

    def url() -> str | None:
        try:
            return json.loads((run_dir / "run.json").read_text()).get("status_url")
        except (OSError, ValueError):
            return None

    return wait_until(url, timeout=timeout)


def slice_spec(
    run_dir: Path,
    fleet: dict[str, Any],
    lo: int,
    hi: int,
    worker: int = 0,
    workers: int = 1,
) -> Any:
    """A WorkerSpec for running the slice [lo, hi) of scenario `fleet` in-process with
    run_worker, on the virtual clock, against the scenario's own target."""
    from simd.model.scenario import parse_scenario
    from simd.runtime.messages import WorkerSpec

    scenario = parse_scenario(fleet)
    return WorkerSpec(
        run_id=scenario.name,
        run_dir=str(run_dir),
        scenario=scenario.model_dump(),
        scenario_dir=str(run_dir),
        target=scenario.target,
        clock="virtual",
        worker=worker,
        workers=workers,
        lo=lo,
        hi=hi,
    )


def live_counts(run_dir: Path) -> dict[str, Any]:
    """The running run's /status counts now ({} while its server is not up or once it has
    gone): for tests that act once the run has done something, not after a sleep."""
    url = status_url(run_dir)
    try:
        with urllib.request.urlopen(url + "/status", timeout=10) as r:  # loopback only
            return json.loads(r.read())
    except (OSError, ValueError):
        return {}


def run_state(run_dir: Path) -> str | None:
    """The state run.json records (None while it is not there or being rewritten)."""
    try:
        return str(json.loads((run_dir / "run.json").read_text())["state"])
    except (OSError, ValueError, KeyError):
        return None


def write_scenario(tmp: Path, body: str, name: str = "scenario.toml") -> Path:
    p = tmp / name
    p.write_text(textwrap.dedent(body))
    return p


def run_dir_from(proc: subprocess.CompletedProcess[str]) -> Path:
    """`simd run` prints the run folder as its first stdout line."""
    return Path(proc.stdout.splitlines()[0].strip())


def virtual_run(path: Path, runs: Path, *extra: str, check: int = 0) -> Path:
    """`simd run PATH --clock virtual` quietly into `runs`; return the run folder."""
    proc = simd(
        "run",
        str(path),
        "--clock",
        "virtual",
        "--runs-dir",
        str(runs),
        "--no-progress",
        "--no-report",
        *extra,
        check=check,
    )
    return run_dir_from(proc)


def sql(run_dir: Path, query: str) -> list[tuple]:
    con = duckdb.connect(str(run_dir / "results.duckdb"), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def _broker_kinds() -> list[str]:
    from simd.runtime.broker import available_kinds

    kinds = available_kinds()
    if os.environ.get("SIMD_REQUIRE_MOSQUITTO") and "mosquitto" not in kinds:
        # CI installs mosquitto; a skip there would hide a missing install step
        return ["mosquitto-required-but-missing", *kinds]
    return kinds or ["none"]


@pytest.fixture(params=_broker_kinds())
def broker(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A real broker on a free loopback port, for each broker this machine has."""
    from simd.runtime.broker import EmbeddedBroker

    kind = request.param
    if kind == "mosquitto-required-but-missing":
        pytest.fail("SIMD_REQUIRE_MOSQUITTO is set but mosquitto is not on PATH")
    if kind == "none":
        pytest.fail("no MQTT broker available (mosquitto or the amqtt package)")
    with EmbeddedBroker(kind) as b:
        yield b


def need_mosquitto() -> None:
    """Skip a mosquitto-only test where it is not installed; fail instead where CI requires it."""
    import shutil

    if shutil.which("mosquitto"):
        return
    if os.environ.get("SIMD_REQUIRE_MOSQUITTO"):
        pytest.fail("SIMD_REQUIRE_MOSQUITTO is set but mosquitto is not on PATH")
    pytest.skip("mosquitto is not installed (CI installs it and requires these tests)")


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    d = tmp_path / "runs"
    d.mkdir()
    return d


def subscribe_in_thread(
    url: str, topic: str, version: str, got: list, ready: threading.Event, stop: threading.Event
) -> threading.Thread:
    """aiomqtt (the reference client) subscribed to `topic` in a thread, appending (topic,
    payload, qos, retain, v5 user properties) to `got` until `stop`; `ready` once subscribed."""
    import asyncio

    import aiomqtt

    host, port = url.removeprefix("mqtt://").split(":")
    proto = aiomqtt.ProtocolVersion.V5 if version == "5" else aiomqtt.ProtocolVersion.V311

    async def main() -> None:
        async with aiomqtt.Client(host, int(port), identifier="ref-sub", protocol=proto) as c:
            await c.subscribe(topic, qos=1)

            async def consume() -> None:
                async for msg in c.messages:
                    props = (
                        getattr(msg.properties, "UserProperty", None) if msg.properties else None
                    )
                    got.append((str(msg.topic), bytes(msg.payload), msg.qos, msg.retain, props))

            # one consumer for the whole time: a timeout around each read could cancel it just
            # after it took a message off aiomqtt's queue, and that message would be lost
            consumer = asyncio.create_task(consume())
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
            consumer.cancel()

    t = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    t.start()
    return t


def certificates(tmp: Path) -> tuple[str, str, str]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI."""

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp)

    ssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=simd test CA",
    )
    ssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (tmp / "san.ext").write_text("subjectAltName = IP:127.0.0.1\n")
    ssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "san.ext",
    )
    return str(tmp / "ca.pem"), str(tmp / "server.pem"), str(tmp / "server.key")


def worker_pids(pid: int) -> list[int]:
    """The worker processes of a running `simd run`: the children of its fork server (or its
    own children, less the resource tracker, when they are spawned)."""
    pids = []
    for child in _children(pid):
        try:
            cmd = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"forkserver" in cmd:
            pids += _children(child)
        elif b"resource_tracker" not in cmd:
            pids.append(child)
    return pids


def fork_server_pid(pid: int) -> int | None:
    """The fork server a running `simd run` forks its workers from (None if it spawns them)."""
    for child in _children(pid):
        try:
            if b"forkserver" in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
        except OSError:
            continue
    return None


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def raw_get(url: str, path: str, headers: dict[str, str]) -> int:
    """A GET with exactly these Host/Origin headers (urllib would set its own Host)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    con = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        con.putrequest("GET", path, skip_host=True)
        for k, v in headers.items():
            con.putheader(k, v)
        con.endheaders()
        return con.getresponse().status
    finally:
        con.close()


def kill_run(proc: subprocess.Popen[str]) -> None:
    """SIGKILL a `simd run` and every worker it started, as a reboot would."""
    import contextlib
    import signal

    children = subprocess.run(
        ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
    ).stdout.split()
    os.kill(proc.pid, signal.SIGKILL)
    for c in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(c), signal.SIGKILL)
    proc.wait(timeout=10)
