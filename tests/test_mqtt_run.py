"""simd against real MQTT brokers on loopback (every broker this machine has; CI: mosquitto)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from simd.runtime.broker import EmbeddedBroker
from tests.conftest import (
    certificates,
    live_counts,
    need_mosquitto,
    run_dir_from,
    simd,
    sql,
    start_run,
    subscribe_in_thread,
    wait_until,
    write_scenario,
)

FLEET = """
name = "mq"
duration = "{duration}"
target = "embedded"
[[fleet]]
name = "g"
count = {count}
rate = {rate}
qos = {qos}
retain = {retain}
topic = "simd/{{device_id}}/t"
payload = {{ kind = "template", template = '{{"d":"{{device_id}}","s":{{seq}}}}' }}
[fleet.mqtt]
version = "{version}"
{extra}
"""


def _scenario(
    tmp: Path,
    *,
    duration: str = "4s",
    count: int = 20,
    rate: float = 5.0,
    qos: int = 1,
    retain: bool = False,
    version: str = "3.1.1",
    extra: str = "",
) -> Path:
    return write_scenario(
        tmp,
        FLEET.format(
            duration=duration,
            count=count,
            rate=rate,
            qos=qos,
            retain=str(retain).lower(),
            version=version,
            extra=extra,
        ),
    )


def _run_proc(
    path: Path, runs: Path, url: str, *extra: str, check: int = 0, report: bool = False
) -> subprocess.CompletedProcess[str]:
    """`simd run PATH --target URL` into `runs`; the finished process (stdout, stderr)."""
    quiet = () if report else ("--no-report",)
    return simd(
        "run",
        str(path),
        "--target",
        url,
        "--runs-dir",
        str(runs),
        "--no-progress",
        *quiet,
        *extra,
        check=check,
    )


def _run(path: Path, runs: Path, url: str, *extra: str, check: int = 0) -> Path:
    """As _run_proc, returning the run folder."""
    return run_dir_from(_run_proc(path, runs, url, *extra, check=check))


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_every_publish_reaches_a_final_status(
    broker: EmbeddedBroker, tmp_path: Path, runs: Path, qos: int
) -> None:
    """QoS 0/1/2 against a real broker: as many publish rows as planned, all sent or acked,
    acked ones with an ack latency."""
    if broker.kind == "amqtt" and qos != 1:
        pytest.skip("amqtt (the fallback broker) runs qos 1 here; 0 and 2 run against mosquitto")
    path = _scenario(tmp_path, qos=qos)
    run_dir = _run(path, runs, broker.url)
    planned = json.loads(simd("plan", str(path), "--format", "json", check=0).stdout)
    rows = sql(
        run_dir,
        "SELECT status, count(*), min(t_done_ns - t_sent_ns) FROM events "
        "WHERE kind = 'publish' GROUP BY status",
    )
    assert {r[0] for r in rows} == {"sent" if qos == 0 else "acked"}
    assert sum(r[1] for r in rows) == planned["total_publishes"]
    if qos:
        assert rows[0][2] > 0
    conns = sql(
        run_dir,
        "SELECT kind, status, count(*) FROM events WHERE kind <> 'publish' GROUP BY ALL ORDER BY 1",
    )
    assert conns == [("connect", "ok", 20), ("disconnect", "ok", 20)]


@pytest.mark.parametrize("version", ["3.1.1", "5"])
def test_aiomqtt_receives_what_simd_published(
    broker: EmbeddedBroker, tmp_path: Path, runs: Path, version: str
) -> None:
    """An independent client (aiomqtt) subscribed to the fleet's topics receives every acked
    publish intact: topic, payload, qos; v5 user properties too."""
    if version == "5" and not broker.mqtt5:
        pytest.skip(f"{broker.kind} speaks MQTT 3.1.1 only")
    extra = 'user_properties = { site = "lab", fw = "1.2" }' if version == "5" else ""
    path = _scenario(tmp_path, count=10, version=version, extra=extra)
    got: list = []
    ready, stop = threading.Event(), threading.Event()
    t = subscribe_in_thread(broker.url, "simd/#", version, got, ready, stop)
    assert ready.wait(10)
    run_dir = _run(path, runs, broker.url)
    deadline = time.monotonic() + 10  # a broker under load may deliver the last ones late
    while len(got) < 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    t.join(5)
    acked = sql(
        run_dir,
        "SELECT device_id, seq FROM events WHERE kind = 'publish' "
        "AND status = 'acked' ORDER BY 1, 2",
    )
    assert len(acked) == 200
    received = sorted((json.loads(p)["d"], json.loads(p)["s"]) for _, p, _, _, _ in got)
    assert received == sorted(acked)
    for topic, payload, qos, retain, props in got:
        assert topic == f"simd/{json.loads(payload)['d']}/t"
        assert qos == 1 and not retain
        if version == "5":
            assert sorted(props) == [("fw", "1.2"), ("site", "lab")]


def test_simd_probe_of_reference_publish(broker: EmbeddedBroker) -> None:
    """simd's MQTT session receives, intact, what aiomqtt publishes (qos 1, retain)."""
    import aiomqtt
    import trio

    from simd.transports.mqtt import codec as c
    from simd.transports.mqtt.session import ClientSession, Received

    host, port = broker.url.removeprefix("mqtt://").split(":")

    async def publish() -> None:
        async with aiomqtt.Client(host, int(port), identifier="ref-pub") as cl:
            await cl.publish("ref/topic", b"\x00\x01binary", qos=1, retain=True)

    asyncio.run(publish())

    async def receive() -> c.Publish:
        stream = await trio.open_tcp_stream(host, int(port))
        s = ClientSession()
        s.connect(c.Connect("probe"))
        await stream.send_all(s.take_outbound())
        with trio.fail_after(10):
            while True:
                for ev in s.receive(await stream.receive_some(65536)):
                    if isinstance(ev, Received):
                        return ev.publish
                if s.state.value == "connected" and not s.in_flight:
                    s.subscribe([("ref/#", 1)])
                if s.outbound:
                    await stream.send_all(s.take_outbound())

    msg = trio.run(receive)
    assert (msg.topic, msg.payload, msg.retain) == ("ref/topic", b"\x00\x01binary", True)


def test_broker_restart_mid_run(tmp_path: Path, runs: Path) -> None:
    """The broker restarts mid-run: devices reconnect, every publish row has a final status,
    and the outage shows (lost connections, dropped publishes, reconnects)."""
    with EmbeddedBroker() as b:
        path = _scenario(
            tmp_path,
            duration="9s",
            count=10,
            rate=10.0,
            extra='reconnect_min = "200ms"\nreconnect_max = "1s"',
        )
        proc = start_run(path, runs, "restart", "--target", b.url)
        time.sleep(4)
        b.restart()
        out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    run_dir = runs / "restart"
    statuses = dict(
        sql(run_dir, "SELECT status, count(*) FROM events WHERE kind = 'publish' GROUP BY 1")
    )
    total = json.loads(simd("plan", str(path), "--format", "json", check=0).stdout)
    assert sum(statuses.values()) == total["total_publishes"]
    assert statuses.get("acked", 0) > 0.5 * total["total_publishes"]
    assert statuses.get("dropped", 0) + statuses.get("error", 0) > 0
    lost = sql(
        run_dir, "SELECT count(*) FROM events WHERE kind = 'disconnect' AND status = 'error'"
    )
    reconnected = sql(
        run_dir, "SELECT count(*) FROM events WHERE kind = 'connect' AND status = 'ok'"
    )
    assert lost[0][0] == 10 and reconnected[0][0] >= 20
    assert "connection lost" in out or "not connected" in out  # the report's errors table


def test_unreachable_broker_is_one_line_exit_3(tmp_path: Path, runs: Path) -> None:
    """Nothing listening: connect errors are logged and the run says where it could not connect."""
    from simd.runtime.broker import free_port

    url = f"mqtt://127.0.0.1:{free_port()}"
    path = _scenario(tmp_path, duration="2s", count=3)
    proc = _run_proc(path, runs, url, check=3)
    assert "Traceback" not in proc.stderr
    assert f"no device could connect to {url}" in proc.stderr
    run_dir = run_dir_from(proc)
    errs = sql(run_dir, "SELECT DISTINCT error FROM events WHERE kind = 'connect'")
    assert errs and all("connect failed" in e[0] for e in errs)
    dropped = sql(run_dir, "SELECT count(*) FROM events WHERE status = 'dropped'")
    assert dropped[0][0] == 3 * 5 * 2


def test_virtual_clock_refused_for_real_io(tmp_path: Path, runs: Path) -> None:
    """The virtual clock with an MQTT target is a clear input error."""
    path = _scenario(tmp_path)
    proc = simd("run", str(path), "--clock", "virtual", "--runs-dir", str(runs), check=2)
    assert "does real I/O" in proc.stderr and "Traceback" not in proc.stderr


def test_publish_timeout_when_the_broker_stalls(tmp_path: Path, runs: Path) -> None:
    """A broker frozen (SIGSTOP) for 3 s: qos 1 publishes without an ack within publish_timeout
    end as timeout, the rest are acked; each publish has exactly one row."""
    import signal

    with EmbeddedBroker() as b:
        path = _scenario(
            tmp_path,
            duration="8s",
            count=5,
            rate=10.0,
            extra='publish_timeout = "1s"\nkeepalive = "60s"',
        )
        proc = start_run(path, runs, "stall", "--target", b.url, "--no-report")
        wait_until(lambda: live_counts(runs / "stall").get("completed", 0) >= 100, timeout=60)
        assert b.proc is not None
        b.proc.send_signal(signal.SIGSTOP)
        time.sleep(3)
        b.proc.send_signal(signal.SIGCONT)
        _, err = proc.communicate(timeout=90)
    assert proc.returncode == 1 and "error_rate (default): FAILED" in err, err  # 3 s of 8 lost
    run_dir = runs / "stall"
    statuses = dict(
        sql(run_dir, "SELECT status, count(*) FROM events WHERE kind = 'publish' GROUP BY 1")
    )
    assert statuses.get("timeout", 0) > 0 and statuses.get("acked", 0) > 0
    assert sql(
        run_dir, "SELECT count(*), count(DISTINCT (device, seq)) FROM events WHERE kind = 'publish'"
    ) == [(400, 400)]
    errs = sql(run_dir, "SELECT DISTINCT error FROM events WHERE status = 'timeout'")
    assert errs == [("no ack within publish_timeout",)]


def test_token_file_and_password_env_authenticate_and_stay_secret(
    tmp_path: Path, runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mosquitto that knows only some device tokens (as usernames, ThingsBoard style) with a
    password from the environment: known devices connect, the unknown one is refused with the
    broker's reason; the password appears in no manifest, log or report."""

    need_mosquitto()
    secret = "pw-Zq81-never-logged"
    tokens = [f"tok-{i:03d}-abc" for i in range(4)]
    (tmp_path / "tokens.txt").write_text("\n".join(tokens) + "\n")
    pwfile = tmp_path / "passwd"
    for i, tok in enumerate(tokens[:3]):
        flags = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", *flags, "-b", str(pwfile), tok, secret], check=True)
    monkeypatch.setenv("SIMD_TEST_MQTT_PASSWORD", secret)
    extra = 'token_file = "tokens.txt"\npassword_env = "SIMD_TEST_MQTT_PASSWORD"'
    path = _scenario(tmp_path, duration="2s", count=4, rate=2.0, extra=extra)
    conf = f"allow_anonymous false\npassword_file {pwfile}\n"
    with EmbeddedBroker("mosquitto", extra_conf=conf) as b:
        proc = _run_proc(path, runs, b.url, "--run-id", "auth", check=1, report=True)
    assert "error_rate (default): FAILED" in proc.stderr  # a quarter of the fleet was refused
    run_dir = runs / "auth"
    rows = sql(
        run_dir,
        "SELECT device_id, status, error FROM events WHERE kind = 'connect' ORDER BY device_id",
    )
    ok = {r[0] for r in rows if r[1] == "ok"}
    assert ok == {"g-00000", "g-00001", "g-00002"}
    refused = [r for r in rows if r[0] == "g-00003"]
    assert (
        refused
        and refused[0][1] == "error"
        and "connect refused: not authorized (5)" in refused[0][2]
    )
    findings = dict(sql(run_dir, "SELECT finding, evidence FROM recommendations"))
    failed, attempts = sql(
        run_dir,
        "SELECT count(*) FILTER (WHERE status = 'error'), count(*) FROM events "
        "WHERE kind = 'connect'",
    )[0]
    assert f"{failed} of {attempts} connection attempts failed" in findings["connection problems"]
    for f in [*run_dir.rglob("*")]:
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f
    assert secret not in proc.stdout + proc.stderr


def test_simd_broker_command(tmp_path: Path) -> None:
    """`simd broker` prints a URL that accepts MQTT connections and stops cleanly on SIGINT."""
    import signal
    import sys

    import trio

    from simd.transports.mqtt import codec as c
    from simd.transports.mqtt.session import ClientSession, Connected

    proc = subprocess.Popen(
        [sys.executable, "-m", "simd", "broker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        host, port = url.removeprefix("mqtt://").split(":")

        async def connect() -> bool:
            stream = await trio.open_tcp_stream(host, int(port))
            s = ClientSession()
            s.connect(c.Connect("cli-check"))
            await stream.send_all(s.take_outbound())
            with trio.fail_after(10):
                while True:
                    if any(
                        isinstance(e, Connected) for e in s.receive(await stream.receive_some(64))
                    ):
                        return True

        assert trio.run(connect)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err


def test_source_addresses_spread_connections(tmp_path: Path, runs: Path) -> None:
    """run.source_addresses: device i connects from address i % n (the broker sees both)."""
    need_mosquitto()
    path = _scenario(tmp_path, duration="1s", count=6, rate=1.0)
    path.write_text(path.read_text() + '\n[run]\nsource_addresses = ["127.0.0.2", "127.0.0.3"]\n')
    with EmbeddedBroker("mosquitto", extra_conf="log_type notice\n") as b:
        _run(path, runs, b.url)
        log = b.log_text()
    assert log.count("New connection from 127.0.0.2") == 3
    assert log.count("New connection from 127.0.0.3") == 3


def test_probe_logs_end_to_end_latency(tmp_path: Path, runs: Path) -> None:
    """A probe subscribed through the broker logs one receive row per delivered message, with
    end-to-end latency from the intended send time (MQTT 5 simd-trace), shown in the report."""
    need_mosquitto()
    path = _scenario(tmp_path, duration="3s", count=8, rate=5.0, version="5", extra="trace = true")
    path.write_text(path.read_text() + '\n[[probe]]\nname = "e2e"\ntopic = "simd/#"\nqos = 1\n')
    with EmbeddedBroker("mosquitto") as b:
        proc = _run_proc(path, runs, b.url, "--run-id", "probe", check=0, report=True)
    run_dir = runs / "probe"
    acked = sql(run_dir, "SELECT count(*) FROM events WHERE kind = 'publish' AND status = 'acked'")
    got = sql(
        run_dir,
        "SELECT count(*), count(DISTINCT (device, seq)), "
        "min(t_done_ns - t_intended_ns), max(t_done_ns - t_intended_ns) "
        "FROM events WHERE kind = 'receive'",
    )[0]
    assert got[0] == got[1] == acked[0][0] == 120
    assert 0 < got[2] <= got[3] < 2_000_000_000
    pairs = sql(
        run_dir,
        "SELECT count(*) FROM events r JOIN events p USING (device, seq) "
        "WHERE r.kind = 'receive' AND p.kind = 'publish' "
        "AND r.t_intended_ns = p.t_intended_ns",
    )
    assert pairs == [(120,)]
    assert "end to end (probes)" in proc.stdout


def test_tls_verifies_certificates_by_default(tmp_path: Path, runs: Path) -> None:
    """mqtts://: with the CA named, every device connects over TLS and publishes are acked;
    without it, verification fails and each connect error says so."""
    import shutil

    need_mosquitto()
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not installed")
    ca, cert, key = certificates(tmp_path)
    path = _scenario(tmp_path, duration="2s", count=3, rate=2.0)
    with EmbeddedBroker("mosquitto", tls=(ca, cert, key)) as b:
        assert b.url.startswith("mqtts://")
        path.write_text(path.read_text() + f'\n[tls]\nca_file = "{ca}"\n')
        good = _run(path, runs, b.url, "--run-id", "tls-ok")
        path.write_text(path.read_text().replace(f'ca_file = "{ca}"', "verify = true"))
        bad = _run_proc(path, runs, b.url, "--run-id", "tls-bad", check=3)
    assert sql(good, "SELECT status, count(*) FROM events WHERE kind = 'publish' GROUP BY 1") == [
        ("acked", 12)
    ]
    errs = sql(runs / "tls-bad", "SELECT DISTINCT error FROM events WHERE kind = 'connect'")
    assert errs and all("TLS: unknown CA" in e[0] for e in errs)
    assert "no device could connect" in bad.stderr


def test_session_resume_resends_in_flight(tmp_path: Path, runs: Path) -> None:
    """clean_start = false: the broker freezes, simd's keepalive declares the connections dead
    with publishes in flight; when the broker thaws, devices reconnect to their kept sessions and
    re-send those publishes (DUP), which are then acked: none ends as 'connection lost'."""
    import signal

    need_mosquitto()
    extra = (
        'clean_start = false\nkeepalive = "2s"\npublish_timeout = "30s"\n'
        'reconnect_min = "200ms"\nreconnect_max = "500ms"\nconnect_timeout = "20s"'
    )
    path = _scenario(tmp_path, duration="12s", count=4, rate=10.0, extra=extra)
    with EmbeddedBroker("mosquitto") as b:
        proc = start_run(path, runs, "resume", "--target", b.url, "--no-report")
        wait_until(lambda: live_counts(runs / "resume").get("completed", 0) >= 80, timeout=60)
        assert b.proc is not None
        b.proc.send_signal(signal.SIGSTOP)
        time.sleep(5)  # > 1.5 x keepalive: simd gives the connections up
        b.proc.send_signal(signal.SIGCONT)
        _, err = proc.communicate(timeout=120)
    # done; the publishes due during the outage were dropped (window full): over the default
    # error_rate, so exit 1, naming it
    assert proc.returncode == 1 and "error_rate (default): FAILED" in err, err
    run_dir = runs / "resume"
    lost = sql(
        run_dir, "SELECT count(*) FROM events WHERE kind = 'disconnect' AND status = 'error'"
    )
    assert lost[0][0] >= 4  # the keepalive gave every connection up
    statuses = dict(
        sql(run_dir, "SELECT status, count(*) FROM events WHERE kind = 'publish' GROUP BY 1")
    )
    assert set(statuses) <= {"acked", "dropped"}, statuses
    resent = sql(
        run_dir,
        "SELECT count(*) FROM events WHERE kind = 'publish' AND status = 'acked' "
        "AND t_done_ns - t_sent_ns > 3000000000",
    )
    assert resent[0][0] > 0  # in flight across the outage, acked after the resume


def test_mqtt_over_websocket(tmp_path: Path, runs: Path) -> None:
    """ws:// targets: the same fleet over WebSocket (subprotocol mqtt), all acked. The broker is
    amqtt's WebSocket listener (Debian's mosquitto here cannot open one: libwebsockets fails to
    listen in this sandbox)."""
    path = _scenario(tmp_path, duration="2s", count=4, rate=5.0, qos=1)
    with EmbeddedBroker("amqtt", websockets=True) as b:
        assert b.url.startswith("ws://")
        run_dir = _run(path, runs, b.url)
    assert sql(
        run_dir, "SELECT status, count(*) FROM events WHERE kind = 'publish' GROUP BY 1"
    ) == [("acked", 40)]
    assert sql(run_dir, "SELECT count(*) FROM events WHERE kind = 'connect' AND status = 'ok'") == [
        (4,)
    ]


@pytest.mark.parametrize("version", ["3.1.1", "5"])
def test_persistent_session_survives_a_cut_link(tmp_path: Path, runs: Path, version: str) -> None:
    """clean_start = false through a proxy that cuts each device's first connection with
    PUBLISHes un-acked: the broker resumes the session (MQTT 5: the Session Expiry Interval is
    sent), every un-acked publish is re-sent with DUP=1 and its first packet id
    [MQTT-4.4.0-1], and every publish of the run ends acked."""
    from tests.cutting_proxy import CuttingProxy

    need_mosquitto()
    extra = 'clean_start = false\nreconnect_min = "100ms"\nreconnect_max = "300ms"'
    path = _scenario(tmp_path, duration="4s", count=3, rate=5.0, version=version, extra=extra)
    with EmbeddedBroker("mosquitto") as b, CuttingProxy(("127.0.0.1", b.port)) as proxy:
        run_dir = _run(path, runs, proxy.url)
    assert sql(
        run_dir, "SELECT status, count(*) FROM events WHERE kind = 'publish' GROUP BY 1"
    ) == [("acked", 60)]
    assert len(proxy.seen) == 3
    for cid, seen in proxy.seen.items():
        assert seen.connections >= 2, cid
        first = {pid for conn, pid, dup in seen.publishes if conn == 1 and not dup}
        unacked = first - {pid for conn, pid in seen.acked if conn == 1}
        resent = {pid for conn, pid, dup in seen.publishes if conn == 2 and dup}
        assert unacked, cid  # the proxy withheld acks
        assert unacked <= resent, (cid, unacked, resent)  # each re-sent, DUP=1, same packet id
        assert not resent & {pid for conn, pid in seen.acked if conn == 1}


def test_publishes_due_during_the_first_handshake_wait_for_it(tmp_path: Path, runs: Path) -> None:
    """A target that takes 400 ms to accept each connection, a ramped fleet whose devices are
    due to publish long before that: each device's first publishes go once it is connected
    (late: the latency from the intended time shows the wait), none is dropped, and each
    device still sends in its own order."""
    from tests.cutting_proxy import CuttingProxy

    need_mosquitto()
    extra = "connect_rate = 10"
    path = _scenario(tmp_path, duration="2s", count=4, rate=10.0, version="3.1.1", extra=extra)
    with (
        EmbeddedBroker("mosquitto") as b,
        CuttingProxy(("127.0.0.1", b.port), cut_after=None, connack_delay=0.4) as proxy,
    ):
        run_dir = _run(path, runs, proxy.url)
    planned = sql(run_dir, "SELECT planned_publishes FROM runs")[0][0]
    assert sql(
        run_dir, "SELECT status, count(*) FROM events WHERE kind = 'publish' GROUP BY 1"
    ) == [("acked", planned)]
    held = sql(
        run_dir,
        "SELECT count(*) FROM events e JOIN (SELECT device, min(t_done_ns) AS up FROM events "
        "WHERE kind = 'connect' AND status = 'ok' GROUP BY 1) c USING (device) "
        "WHERE kind = 'publish' AND t_intended_ns < c.up AND t_sent_ns >= c.up",
    )[0][0]
    assert held >= 4 * 3  # ~4 publishes a device fell due inside its 400 ms handshake
    order = sql(
        run_dir,
        "SELECT count(*) FROM (SELECT seq, lag(seq) OVER (PARTITION BY device ORDER BY t_sent_ns, "
        "seq) AS before FROM events WHERE kind = 'publish') WHERE seq < before",
    )[0][0]
    assert order == 0


def test_t0_comes_once_every_device_is_connected(tmp_path: Path, runs: Path) -> None:
    """A target that takes a second to accept each connection, two workers: the run's t=0 is
    chosen once both have connected, so every connect row ends before t=0 and no publish was
    held back by a handshake (it goes out at or after its time, never before)."""
    from tests.cutting_proxy import CuttingProxy

    need_mosquitto()
    path = _scenario(tmp_path, duration="2s", count=6, rate=5.0, version="3.1.1")
    with (
        EmbeddedBroker("mosquitto") as b,
        CuttingProxy(("127.0.0.1", b.port), cut_after=None, connack_delay=1.0) as proxy,
    ):
        run_dir = _run(path, runs, proxy.url, "--workers", "2")
    connects = sql(
        run_dir,
        "SELECT count(*), max(t_done_ns), count(DISTINCT worker) FROM events "
        "WHERE kind = 'connect' AND status = 'ok'",
    )[0]
    assert connects[0] == 6 and connects[2] == 2
    assert connects[1] < 0  # connected before t=0: the second's wait is not the schedule's
    planned = sql(run_dir, "SELECT planned_publishes FROM runs")[0][0]
    assert sql(
        run_dir,
        "SELECT status, count(*), min(t_sent_ns - t_intended_ns) >= 0 FROM events "
        "WHERE kind = 'publish' GROUP BY 1",
    ) == [("acked", planned, True)]
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["t0_epoch_ns"] > manifest["ready_wall_ns"]


def test_a_stop_while_devices_connect(tmp_path: Path, runs: Path) -> None:
    """SIGINT before t=0 was chosen (the target holds every CONNACK back 2 s): the run stops,
    t=0 is where the workers' clocks were, the log reads back with its connect rows, exit 3."""
    from tests.cutting_proxy import CuttingProxy

    need_mosquitto()
    path = _scenario(tmp_path, duration="30s", count=3, rate=5.0, version="3.1.1")
    with (
        EmbeddedBroker("mosquitto") as b,
        CuttingProxy(("127.0.0.1", b.port), cut_after=None, connack_delay=2.0) as proxy,
    ):
        proc = start_run(path, runs, "early", "--target", proxy.url, "--no-report")
        wait_until(lambda: len(proxy.seen) == 3)  # every device has sent its CONNECT
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    manifest = json.loads((runs / "early" / "run.json").read_text())
    assert manifest["state"] == "stopped" and manifest["t0_epoch_ns"]
    assert sql(runs / "early", "SELECT kind, count(*) FROM events GROUP BY 1 ORDER BY 1") == [
        ("connect", 3),
        ("disconnect", 3),
    ]


@pytest.mark.parametrize(("version", "named"), [("3.1.1", "(5)"), ("5", "(0x8")])
def test_connack_refusals_are_named(
    tmp_path: Path, runs: Path, monkeypatch: pytest.MonkeyPatch, version: str, named: str
) -> None:
    """A wrong password: every CONNACK refusal is logged and reported in words with its code
    (3.1.1 return codes, 5.0 reason codes), and the run exits 3 naming it."""
    need_mosquitto()
    pwfile = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pwfile), "dev", "right"], check=True)
    monkeypatch.setenv("SIMD_TEST_MQTT_PASSWORD", "wrong")
    extra = 'username = "dev"\npassword_env = "SIMD_TEST_MQTT_PASSWORD"\nclient_id = "c-{index}"'
    path = _scenario(tmp_path, duration="1s", count=2, rate=2.0, version=version, extra=extra)
    conf = f"allow_anonymous false\npassword_file {pwfile}\n"
    with EmbeddedBroker("mosquitto", extra_conf=conf) as b:
        proc = _run_proc(path, runs, b.url, "--run-id", "refused", check=3)
    errors = {e for (e,) in sql(runs / "refused", "SELECT DISTINCT error FROM events "
                                                  "WHERE kind = 'connect'")}  # fmt: skip
    words = ("not authorized", "bad user name or password")
    assert errors and all(
        e.startswith("connect refused: ") and any(w in e for w in words) and named in e
        for e in errors
    ), errors
    assert "no device could connect" in proc.stderr and "reason 1" not in proc.stderr
