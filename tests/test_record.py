"""`simd record` against real brokers: what it writes, broker restarts, Ctrl-C, bad targets."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simd.errors import UserError
from simd.log.recording import read_recording
from simd.runtime.broker import EmbeddedBroker, free_port
from tests.conftest import need_mosquitto, simd


def _publish(url: str, messages: list[tuple[str, bytes, int, bool]], version: str = "3.1.1",
             props: dict[str, str] | None = None) -> None:  # fmt: skip
    """Publish with aiomqtt (the reference client), each message acked before the next."""
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    host, port = url.removeprefix("mqtt://").split(":")
    v5 = version == "5"
    proto = aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311

    async def main() -> None:
        async with aiomqtt.Client(host, int(port), protocol=proto) as client:
            for topic, payload, qos, retain in messages:
                properties = None
                if v5 and props:
                    properties = Properties(PacketTypes.PUBLISH)
                    properties.UserProperty = list(props.items())
                await client.publish(topic, payload, qos=qos, retain=retain, properties=properties)

    asyncio.run(main())


def _recorder(url: str, out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "simd", "record", url, "-t", "rec/#", "--out", str(out), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(out: Path, pred, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    """Poll the recording (its whole frames are readable while it is written)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.exists():
            try:
                rec = read_recording(out)
            except UserError:  # the header may not be written yet
                rec = None
            if rec is not None and pred(rec):
                return rec
        time.sleep(0.1)
    raise AssertionError(f"the recording never satisfied the condition within {timeout}s")


@pytest.mark.parametrize("version", ["3.1.1", "5"])
def test_record_writes_what_the_broker_delivers(
    broker: EmbeddedBroker, tmp_path: Path, version: str
) -> None:
    """Topic, payload, qos, retain flag (a retained message is delivered on subscribe), and
    MQTT 5 user properties; --duration ends it with a clean close and exit 0."""
    if version == "5" and not broker.mqtt5:
        pytest.skip(f"{broker.kind} speaks MQTT 3.1.1 only")
    _publish(broker.url, [("rec/state", b"on", 1, True)], version)
    out = tmp_path / "r.simrec"
    rec_proc = _recorder(broker.url, out, "--duration", "4s", "--mqtt-version", version)
    _wait_for(out, lambda r: len(r) >= 1)
    sent = [(f"rec/d{i % 3}/t", bytes([i, 0, 255]), i % 2, False) for i in range(30)]
    _publish(broker.url, sent, version, props={"site": "lab"})
    stdout, stderr = rec_proc.communicate(timeout=30)
    assert rec_proc.returncode == 0, stderr
    rec = read_recording(out)
    assert rec.torn is None and rec.end_ns is not None and rec.end_ns >= 3.9e9
    assert rec.header["mqtt_version"] == version and rec.header["filters"] == ["rec/#"]
    assert (rec.topic[0], rec.payload.item(0), bool(rec.retain[0])) == ("rec/state", b"on", True)
    got = list(zip(rec.topic[1:], rec.payload.to_list()[1:], strict=True))
    assert got == [(t, p) for t, p, _, _ in sent]
    if broker.kind == "mosquitto":  # amqtt delivers qos 0 publishes at the granted qos 1
        assert rec.qos[1:].tolist() == [q for _, _, q, _ in sent]
    assert not rec.retain[1:].any()
    assert (rec.t_ns[1:] >= rec.t_ns[:-1]).all()
    if version == "5":
        assert all(rec.properties[i] == [["user_property", ["site", "lab"]]] for i in range(1, 31))
    assert "recorded 31 messages" in stdout and "stopped by duration" in stdout


def test_record_survives_a_broker_restart_and_ctrl_c(tmp_path: Path) -> None:
    """The broker restarts mid-recording: the recorder reconnects, subscribes again, marks the
    gap, and keeps recording; SIGINT then closes the file cleanly (exit 0)."""
    need_mosquitto()
    out = tmp_path / "r.simrec"
    with EmbeddedBroker("mosquitto") as broker:
        rec_proc = _recorder(broker.url, out)
        _wait_for(out, lambda r: True)  # header written: connected and subscribed
        _publish(broker.url, [(f"rec/before/{i}", b"b%d" % i, 1, False) for i in range(20)])
        _wait_for(out, lambda r: len(r) == 20)
        broker.restart()
        # publish until the recorder is back (what is published while it is away is lost)
        deadline = time.monotonic() + 20
        k = 0
        while time.monotonic() < deadline:
            _publish(broker.url, [(f"rec/probe/{k}", b"p", 1, False)])
            k += 1
            if any(t.startswith("rec/probe/") for t in read_recording(out).topic):
                break
            time.sleep(0.2)
        _publish(broker.url, [(f"rec/after/{i}", b"a%d" % i, 1, False) for i in range(20)])
        _wait_for(out, lambda r: sum(t.startswith("rec/after/") for t in r.topic) == 20)
        rec_proc.send_signal(signal.SIGINT)
        stdout, stderr = rec_proc.communicate(timeout=20)
    assert rec_proc.returncode == 0, stderr
    assert "connection lost" in stderr and "reconnected" in stderr
    assert "1 reconnect(s), stopped by SIGINT" in stdout
    rec = read_recording(out)
    assert rec.torn is None and rec.end_ns is not None
    assert len(rec.gaps) == 1 and rec.gaps[0][0] < rec.gaps[0][1]
    topics = rec.topic
    assert [t for t in topics if t.startswith("rec/before/")] == [
        f"rec/before/{i}" for i in range(20)
    ]
    assert [t for t in topics if t.startswith("rec/after/")] == [
        f"rec/after/{i}" for i in range(20)
    ]


def test_record_from_an_unreachable_broker_is_one_line(tmp_path: Path) -> None:
    """Nothing listening: exit 3 with one line naming the target, and no recording left."""
    out = tmp_path / "r.simrec"
    url = f"mqtt://user:hunter2@127.0.0.1:{free_port()}"
    proc = simd("record", url, "-t", "#", "--out", str(out), "--duration", "2s", check=3)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("simd: error:")]
    assert len(lines) == 1 and "cannot record from mqtt://127.0.0.1:" in lines[0]
    assert "hunter2" not in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
