"""Devices that listen and answer, commanders that command them: round trips through mosquitto."""

from __future__ import annotations

from pathlib import Path

from simd.runtime.broker import EmbeddedBroker
from tests.conftest import need_mosquitto, simd, sql, write_scenario

SCENARIO = """
name = "commands"
seed = 12
duration = "4s"
target = "{url}"

[[fleet]]
name = "devices"
count = 20
rate = 0.5
subscribe = ["devices/{{device_id}}/commands"]
reply = {{ topic = "devices/{{device_id}}/replies", service_time = "30ms" }}

[[fleet]]
name = "mute"
count = 5
id = "mute-{{index:02d}}"
rate = 0.5
subscribe = ["devices/{{device_id}}/commands"]

[[fleet]]
name = "ops"
count = 2
id = "ops-{{index}}"
rate = 10.0
qos = 1
commands = {{ to = "devices", timeout = "10s" }}  # generous: a busy machine

[[fleet]]
name = "ops-mute"
count = 1
id = "opsm-{{index}}"
rate = 4.0
commands = {{ to = "mute", timeout = "500ms" }}

[[phase]]
name = "work"
duration = "2500ms"
level = 1.0

[[phase]]
name = "quiet"
duration = "1500ms"
level = 0.0
"""


def test_every_command_gets_a_round_trip_or_a_timeout(tmp_path: Path, runs: Path) -> None:
    """Through mosquitto, each command of a commander reaches one listening device (a receive
    row there), which answers after its service time (a reply row), and the commander logs one
    command row per command: answered, with a round trip of at least the service time; commands
    to devices that never answer end as timeouts. Nothing is left without a final status."""
    need_mosquitto()
    with EmbeddedBroker("mosquitto") as b:
        path = write_scenario(tmp_path, SCENARIO.format(url=b.url))
        r = simd("run", str(path), "--runs-dir", str(runs), "--run-id", "c", "--workers", "2",
                 "--no-progress", check=0)  # fmt: skip
    assert "commands: round trip" in r.stdout
    assert "Commands: round trip" in (runs / "c" / "report.html").read_text()
    run = runs / "c"
    sent = dict(sql(run, "SELECT group_name, count(*) FROM events WHERE kind = 'publish' "
                         "AND group_name LIKE 'ops%' GROUP BY 1"))  # fmt: skip
    assert sent["ops"] == 50 and sent["ops-mute"] == 10
    commands = sql(
        run,
        "SELECT group_name, status, count(*), count(DISTINCT (device, seq)), "
        "min(t_done_ns - t_intended_ns), max(t_done_ns - t_intended_ns) FROM events "
        "WHERE kind = 'command' GROUP BY ALL ORDER BY 1",
    )
    (ops, ops_mute) = commands
    assert ops[:4] == ("ops", "acked", 50, 50)
    assert 30_000_000 <= ops[4] <= ops[5]  # no reply before the device's service time
    assert ops_mute[:4] == ("ops-mute", "timeout", 10, 10)
    # every command publish has exactly its command row, same (device, seq, intended time)
    pairs = sql(run, "SELECT count(*) FROM events c JOIN events p USING (device, seq) "
                     "WHERE c.kind = 'command' AND p.kind = 'publish' "
                     "AND c.t_intended_ns = p.t_intended_ns")  # fmt: skip
    assert pairs == [(60,)]
    # the listening side: one receive row per command (named by the commander's device and
    # seq), and one reply row of the answering device each
    got = sql(run, "SELECT count(*), count(DISTINCT (r.device, r.seq)) FROM events r "
                   "JOIN events c USING (device, seq) WHERE r.kind = 'receive' "
                   "AND c.kind = 'command'")  # fmt: skip
    assert got == [(60, 60)]
    replies = sql(run, "SELECT group_name, status, count(*) FROM events WHERE kind = 'reply' "
                       "GROUP BY ALL")  # fmt: skip
    assert replies == [("devices", "sent", 50)]
    stats = {row[0]: row[1:5] for row in sql(run, "SELECT * FROM command_stats")}
    assert stats["ops"] == (50, 50, 50, 0) and stats["ops-mute"] == (10, 10, 0, 10)
