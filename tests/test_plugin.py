"""Transport plugins through the CLI: the Redis Streams example (examples/plugins) against a real
redis-server on loopback, found from the scenario's folder, by `plugin:` and by entry point."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from tests.conftest import REPO, simd, sql, start_run, wait_until, write_scenario
from tests.redis_server import RedisServer

EXAMPLE = REPO / "examples" / "plugins" / "redis_streams.py"


def _scenario(tmp: Path, target: str, *, duration: str = "2s", extra: str = "") -> Path:
    """A scenario next to a copy of the example plugin (its folder is importable)."""
    shutil.copy(EXAMPLE, tmp / "redis_streams.py")
    return write_scenario(
        tmp,
        f"""
        name = "redis"
        seed = 3
        duration = "{duration}"
        target = "{target}"

        [[fleet]]
        name = "m"
        count = 20
        rate = 10.0
        topic = "meters/{{device_id}}"

        [fleet.plugin]
        publish_timeout = "1s"
        reconnect_min = "100ms"
        reconnect_max = "300ms"
        {extra}
        """,
    )


def _stream_total(server: RedisServer, devices: int) -> int:
    return sum(int(server.call("XLEN", f"meters/m-{i:05d}") or 0) for i in range(devices))


def test_example_plugin_publishes_every_message_to_redis(tmp_path: Path, runs: Path) -> None:
    """Every publish is one acked row and one entry in its device's stream; connects and
    closes are rows; the report and the exit code are those of any run."""
    with RedisServer() as server:
        target = f"plugin:redis_streams:RedisStreams?port={server.port}"
        path = _scenario(tmp_path, target, extra="[fleet.plugin.options]\nmaxlen = 500")
        r = simd("run", str(path), "--runs-dir", str(runs), "--no-progress", check=0)
        run_dir = Path(r.stdout.splitlines()[0])
        assert _stream_total(server, 20) == 400
    rows = sql(
        run_dir,
        "SELECT count(*), count(DISTINCT (device, seq)), count(*) FILTER (status = 'acked'),"
        " min(t_done_ns - t_sent_ns) > 0 FROM events WHERE kind = 'publish'",
    )[0]
    assert rows == (400, 400, 400, True)
    conns = sql(
        run_dir, "SELECT kind, status, count(*) FROM events WHERE kind <> 'publish' GROUP BY ALL"
    )
    assert sorted(conns) == [("connect", "ok", 20), ("disconnect", "ok", 20)]
    assert "planned 400  logged 400  completed 400" in r.stdout


def test_a_redis_restart_mid_run_is_survived(tmp_path: Path, runs: Path) -> None:
    """Redis killed mid-run and started again on its port: the devices' connections are lost
    (rows say so), they come back by themselves, and every publish still has one final row."""
    server = RedisServer().start()
    try:
        target = f"plugin:redis_streams:RedisStreams?port={server.port}"
        path = _scenario(tmp_path, target, duration="8s", extra="[slo]\nerror_rate = 1.0")
        run = start_run(path, runs, "restart", "--no-report")
        run_dir = runs / "restart"
        wait_until(lambda: _stream_total(server, 20) >= 100, 60)  # facts: it is publishing
        server.stop()
        time.sleep(1.0)
        server.start()
        assert run.wait(timeout=120) == 0, run.stderr.read() if run.stderr else ""
        after = _stream_total(server, 20)
    finally:
        server.stop()
    rows = sql(
        run_dir,
        "SELECT count(*), count(DISTINCT (device, seq)) FROM events WHERE kind = 'publish'",
    )[0]
    assert rows == (1600, 1600)
    lost = sql(
        run_dir, "SELECT count(*) FROM events WHERE kind = 'disconnect' AND status = 'error'"
    )
    assert lost[0][0] >= 1
    # connections came back: acked publishes after the restart reached the new server
    assert after > 0
    texts = {
        t for (t,) in sql(run_dir, "SELECT DISTINCT error FROM events WHERE error IS NOT NULL")
    }
    assert any(t.startswith("connection lost") or t == "not connected" for t in texts), texts


def test_plugin_found_by_entry_point_scheme(tmp_path: Path, runs: Path) -> None:
    """An installed package registers `redisx` in entry point group simd.transports; the
    scenario names `redisx://127.0.0.1:PORT` and the plugin reads host and port from it."""
    site = tmp_path / "site"
    dist = site / "simd_redisx-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: simd-redisx\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[simd.transports]\nredisx = redis_streams:RedisStreams\n"
    )
    shutil.copy(EXAMPLE, site / "redis_streams.py")
    env = {**os.environ, "PYTHONPATH": str(site)}
    with RedisServer() as server:
        scen = tmp_path / "s"
        scen.mkdir()
        path = write_scenario(
            scen,
            f"""
            name = "ep"
            duration = "1s"
            target = "redisx://127.0.0.1:{server.port}"

            [[fleet]]
            name = "m"
            count = 5
            rate = 10.0
            topic = "meters/{{device_id}}"
            """,
        )
        r = simd("run", str(path), "--runs-dir", str(runs), "--no-progress", "--no-report",
                 env=env, check=0)  # fmt: skip
        assert _stream_total(server, 5) == 50
    run_dir = Path(r.stdout.splitlines()[0])
    assert sql(run_dir, "SELECT count(*) FROM events WHERE status = 'acked'") == [(50,)]


def test_plugin_errors_are_one_line_and_rows(tmp_path: Path, runs: Path) -> None:
    """A plugin that cannot be loaded is a one-line error before anything runs; a plugin
    whose publish raises gives error rows with its text; a secret option stays out of run.json."""
    bad = write_scenario(tmp_path, 'name = "x"\nduration = "1s"\ntarget = "plugin:nowhere:X"\n'
                         '[[fleet]]\nname = "g"\ncount = 1\nrate = 1.0\n')  # fmt: skip
    r = simd("run", str(bad), "--runs-dir", str(runs), "--no-progress", check=2)
    assert r.stderr.strip().count("\n") == 0 and "nowhere" in r.stderr
    assert "Traceback" not in r.stderr
    (tmp_path / "ctor.py").write_text(
        "class Ctor:\n"
        "    def __init__(self, target, device):\n"
        "        raise RuntimeError('no config for ' + device.id)\n"
        "    async def connect(self): pass\n"
        "    async def publish(self, message): pass\n"
        "    async def close(self): pass\n"
    )
    ctor = write_scenario(tmp_path, bad.read_text().replace("nowhere:X", "ctor:Ctor"), "c.toml")
    r = simd("run", str(ctor), "--runs-dir", str(runs), "--no-progress", check=2)
    assert r.stderr.strip().count("\n") == 0, r.stderr  # before any worker starts: one line
    assert "constructing a client failed: RuntimeError: no config for g-00000" in r.stderr
    (tmp_path / "flaky.py").write_text(
        "class Flaky:\n"
        "    def __init__(self, target, device):\n"
        "        self.device = device\n"
        "    async def connect(self):\n"
        "        pass\n"
        "    async def publish(self, message):\n"
        "        if message.seq % 2:\n"
        "            raise ValueError(f'odd seq {message.seq % 2}')\n"
        "    async def close(self):\n"
        "        pass\n"
    )
    body = (
        'name = "flaky"\nduration = "1s"\n'
        'target = "plugin:flaky:Flaky?token=s3cr3t-value"\n'
        '[[fleet]]\nname = "g"\ncount = 4\nrate = 10.0\n[slo]\nerror_rate = 1.0\n'
    )
    path = write_scenario(tmp_path, body, "flaky.toml")
    r = simd("run", str(path), "--runs-dir", str(runs), "--no-progress", "--no-report", check=0)
    run_dir = Path(r.stdout.splitlines()[0])
    got = sql(run_dir, "SELECT status, count(*) FROM events WHERE kind = 'publish' GROUP BY ALL")
    assert sorted(got) == [("acked", 20), ("error", 20)]
    texts = [
        t for (t,) in sql(run_dir, "SELECT DISTINCT error FROM events WHERE error IS NOT NULL")
    ]
    assert "ValueError: odd seq 1" in texts
    manifest = (run_dir / "run.json").read_text()
    assert "s3cr3t-value" not in manifest
    assert json.loads(manifest)["target"].endswith("token=***")
    for name in ("results.duckdb",):
        assert b"s3cr3t-value" not in (run_dir / name).read_bytes()
