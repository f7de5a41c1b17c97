"""Delivery accounting: traced publishes, probes that go offline, and the loss views."""

from __future__ import annotations

from pathlib import Path

import pytest

from simd.runtime.broker import EmbeddedBroker
from tests.conftest import need_mosquitto, simd, sql, write_scenario

# Publishing stops in two short gaps around the probe's offline window, so which publishes
# fall inside it is known from the schedule alone: exactly those of phase "dark".
SCENARIO = """
name = "delivery"
seed = 8
duration = "6s"
target = "{url}"

[[fleet]]
name = "q0"
count = 10
rate = 20.0
qos = 0
mqtt = {{ version = "3.1.1", trace = "payload" }}

[[fleet]]
name = "q1"
count = 10
rate = 20.0
qos = 1
topic = "meters/{{device_id}}/power"
mqtt = {{ version = "5", trace = true }}

[[fleet]]
name = "q2"
count = 5
rate = 20.0
qos = 2
topic = "meters/{{device_id}}/energy"
mqtt = {{ version = "5", trace = "payload" }}

[[phase]]
name = "before"
duration = "2s"
level = 1.0

[[phase]]
name = "gap1"
duration = "400ms"
level = 0.0

[[phase]]
name = "dark"
duration = "1600ms"
level = 1.0

[[phase]]
name = "gap2"
duration = "400ms"
level = 0.0

[[phase]]
name = "after"
duration = "1600ms"
level = 1.0

[[probe]]
name = "watch"
topic = "+/+/{suffix}"
qos = 2
clean = false
offline = [{{ start = "2200ms", end = "4200ms" }}]

[[probe]]
name = "power"
topic = "meters/#"
qos = 1

[slo]
loss_rate = 0.05
"""


def test_probe_offline_loses_exactly_its_qos0_window(tmp_path: Path, runs: Path) -> None:
    """A persistent-session probe away for a window loses exactly the qos 0 publishes made while
    it was away (the broker does not queue them) and none of the qos 1 and 2 ones (queued,
    delivered when it is back); an always-on probe on one topic tree loses nothing; no
    duplicates, no reordering; per device, per topic and per group in SQL."""
    need_mosquitto()
    with EmbeddedBroker("mosquitto") as b:
        path = write_scenario(tmp_path, SCENARIO.format(url=b.url, suffix="#"))
        r = simd("run", str(path), "--runs-dir", str(runs), "--run-id", "d", "--workers", "2",
                 "--no-progress", check=1)  # fmt: skip
    assert "delivery (probes)" in r.stdout
    assert "slo failed: loss_rate" in r.stderr  # the dark window's qos 0 loss is over 5 %
    run = runs / "d"
    planned = dict(
        sql(run, "SELECT group_name || '/' || phase, publishes FROM planned WHERE publishes > 0")
    )
    summary = {
        (p, g): (exp, dlv, lost, dup, reo, unexp)
        for p, g, _, exp, dlv, lost, _, dup, reo, unexp, _ in sql(
            run, "SELECT * FROM delivery_summary"
        )
    }
    q0_total = sum(n for k, n in planned.items() if k.startswith("q0/"))
    q1_total = sum(n for k, n in planned.items() if k.startswith("q1/"))
    q2_total = sum(n for k, n in planned.items() if k.startswith("q2/"))
    dark = planned["q0/dark"]
    assert dark > 0
    observed = sql(run, "SELECT observed FROM slo_results WHERE name = 'loss_rate'")[0][0]
    assert observed == pytest.approx(dark / (q0_total + 2 * q1_total + 2 * q2_total))
    assert summary[("watch", "q0")] == (q0_total, q0_total - dark, dark, 0, 0, 0)
    assert summary[("watch", "q1")] == (q1_total, q1_total, 0, 0, 0, 0)
    assert summary[("watch", "q2")] == (q2_total, q2_total, 0, 0, 0, 0)  # queued, exactly once
    assert summary[("power", "q1")] == (q1_total, q1_total, 0, 0, 0, 0)
    assert summary[("power", "q2")] == (q2_total, q2_total, 0, 0, 0, 0)
    assert ("power", "q0") not in summary  # its filter takes only the meters/ tree
    # the lost ones are exactly the qos 0 publishes intended in the dark phase
    lost = sql(
        run,
        "SELECT min(e.t_intended_ns), max(e.t_intended_ns), count(*) FROM delivery_rows r "
        "JOIN event_rows e ON e.kind = 0 AND e.device = r.device AND e.seq = r.seq "
        "WHERE r.expected AND NOT r.received",
    )[0]
    assert lost[2] == dark and 2_400_000_000 <= lost[0] <= lost[1] < 4_000_000_000
    per_device = sql(run, "SELECT lost FROM delivery WHERE probe = 'watch' AND group_name = 'q0'")
    assert len(per_device) == 10 and sum(n for (n,) in per_device) == dark
    topics = sql(run, "SELECT topic, expected, lost FROM delivery_topics WHERE probe = 'power'")
    assert len(topics) == 15 and all(t.startswith("meters/") and n == 0 for t, _, n in topics)
    # the queued qos 1 messages arrived after the probe came back: their latency shows it
    late = sql(run, "SELECT max(latency_max_ns) FROM delivery WHERE probe = 'watch' "
                    "AND group_name = 'q1'")[0][0]  # fmt: skip
    assert late >= 200_000_000
    # the probe's own connects and its disconnect are rows too
    conn = sql(run, "SELECT kind, message, count(*) FROM event_rows WHERE device = -1 "
                    "GROUP BY ALL ORDER BY ALL")  # fmt: skip
    assert conn == [(1, 0, 2), (1, 1, 1), (2, 0, 1)]  # connect x2 + disconnect (watch), power
