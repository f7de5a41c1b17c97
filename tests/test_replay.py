"""`simd replay` and replay groups: recorded timing and payloads, speed, loops, fanout, topic
maps, cut recordings, determinism across workers, fidelity in SQL, and the acceptance run
(record a fleet from mosquitto, replay it against mosquitto, compare at a subscriber)."""

from __future__ import annotations

import collections
import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simd.log.ragged import Ragged
from simd.log.recording import Recording, parse_recording, read_recording
from simd.model.scenario import ReplaySource
from simd.plan.replay import ReplayCursor, build_plan
from simd.runtime.broker import EmbeddedBroker
from tests.conftest import (
    REPO,
    SCENARIOS,
    need_mosquitto,
    run_dir_from,
    simd,
    sql,
    subscribe_in_thread,
    virtual_run,
    write_scenario,
)

SAMPLE = REPO / "recordings" / "sample.simrec"


def _replay(runs: Path, recording: Path, *args: str, check: int = 0) -> Path:
    proc = simd(
        "replay",
        str(recording),
        "--target",
        "sim:",
        "--clock",
        "virtual",
        "--runs-dir",
        str(runs),
        "--no-progress",
        *args,
        check=check,
    )
    return run_dir_from(proc)


def _fidelity(run_dir: Path) -> dict:
    names = [
        "recorded_messages", "sources", "fanout", "passes", "speed", "planned", "replayed",
        "sent", "completed", "intended_error_max_ns", "send_offset_p99_ms",
        "correlation_intended", "correlation_sent", "size_mismatches", "seconds",
    ]  # fmt: skip
    row = sql(run_dir, f"SELECT {', '.join(names)} FROM replay_fidelity")
    assert len(row) == 1
    return dict(zip(names, row[0], strict=True))


def test_replay_plays_every_recorded_message_at_its_time(runs: Path) -> None:
    """Each recorded message is published once, by its recorded device, on its recorded topic,
    at lead-in + its offset; the report shows replay fidelity."""
    rec = read_recording(SAMPLE)
    proc = simd(
        "replay", str(SAMPLE), "--target", "sim:", "--clock", "virtual",
        "--runs-dir", str(runs), "--no-progress", check=0,
    )  # fmt: skip
    assert "replay fidelity" in proc.stdout
    run_dir = run_dir_from(proc)
    f = _fidelity(run_dir)
    assert f["recorded_messages"] == f["planned"] == f["replayed"] == f["sent"] == len(rec)
    assert f["sources"] == 20 and f["fanout"] == 1 and f["passes"] == 1
    assert f["intended_error_max_ns"] == 0 and f["size_mismatches"] == 0
    assert f["correlation_intended"] > 0.999
    # the same (topic, offset, size) multiset as the recording
    first = int(rec.t_ns.min())
    want = sorted(
        (t, int(o) - first + 1_000_000_000, n)
        for t, o, n in zip(rec.topic, rec.t_ns, rec.payload.lengths, strict=True)
    )
    got = sql(
        run_dir,
        "SELECT replace(m.topic, '{device_id}', e.device_id), e.t_intended_ns, e.bytes "
        "FROM events e JOIN groups g USING (group_name) "
        "JOIN messages m ON m.group_index = g.group_index AND m.message_name = e.message "
        "WHERE e.kind = 'publish' ORDER BY 1, 2",
    )
    assert sorted(tuple(r) for r in got) == want
    assert "replay fidelity" in (run_dir / "report.html").read_text().lower()


def test_speed_and_fanout_keep_the_shape(runs: Path) -> None:
    """--speed 10 --fanout 10 --loop 2: ten copies of every device (ids -r1..-r9), twice
    through, ten times faster; the per-second shape matches the recording's (>= 0.99)."""
    rec = read_recording(SAMPLE)
    run_dir = _replay(runs, SAMPLE, "--speed", "10", "--fanout", "10", "--loop", "2")
    f = _fidelity(run_dir)
    assert f["planned"] == f["replayed"] == f["completed"] == len(rec) * 20
    assert (f["sources"], f["fanout"], f["passes"], f["speed"]) == (20, 10, 2, 10.0)
    assert f["correlation_sent"] >= 0.99 and f["intended_error_max_ns"] == 0
    ids = {r[0] for r in sql(run_dir, "SELECT DISTINCT device_id FROM events")}
    assert len(ids) == 200 and "meter-07-r9" in ids and "meter-07" in ids
    per_device = sql(
        run_dir,
        "SELECT device_id, count(*), count(DISTINCT seq), max(seq) FROM events "
        "WHERE kind = 'publish' AND device_id LIKE 'meter-03%' GROUP BY 1",
    )
    counts = {r[1] for r in per_device}
    assert len(per_device) == 10 and len(counts) == 1  # every copy replays the same messages
    n = counts.pop()
    assert all(r[2] == n and r[3] == n - 1 for r in per_device)
    # twice through at 10x: the run lasts about 2 x 23 s / 10 after a 1 s lead-in
    (duration,) = sql(run_dir, "SELECT duration_ns FROM runs")[0]
    assert 4.5e9 < duration < 6.0e9


def test_the_replay_schedule_does_not_depend_on_workers(runs: Path) -> None:
    """One worker or two: the same (device, seq, intended time) rows."""
    a = _replay(runs, SAMPLE, "--workers", "1", "--fanout", "3", "--loop", "2", "--speed", "4")
    b = _replay(runs, SAMPLE, "--workers", "2", "--fanout", "3", "--loop", "2", "--speed", "4")
    q = "SELECT device_id, seq, t_intended_ns FROM events WHERE kind = 'publish' ORDER BY ALL"
    rows_a, rows_b = sql(a, q), sql(b, q)
    assert len(rows_a) == 674 * 6 and rows_a == rows_b


def test_topic_map_and_device_level(runs: Path) -> None:
    """--topic-map rewrites a topic prefix; --device-level topic makes each topic a device."""
    run_dir = _replay(runs, SAMPLE, "--topic-map", "site/=lab/", "--device-level", "topic")
    topics = {r[0] for r in sql(run_dir, "SELECT topic FROM messages")}
    assert topics == {"{device_id}"}
    ids = {r[0] for r in sql(run_dir, "SELECT device_id FROM devices")}
    assert len(ids) == 40 and "lab/meter-00/status" in ids and "lab/meter-19/reading" in ids


def test_a_cut_recording_replays_its_complete_prefix(tmp_path: Path, runs: Path) -> None:
    """A recording cut mid-frame replays exactly the messages of its whole frames; a cut
    inside the header is a one-line error."""
    data = SAMPLE.read_bytes()
    for cut in (len(data) // 2 + 7,):  # mid-frame (every offset: tests/test_recording.py)
        path = tmp_path / f"cut{cut}.simrec"
        path.write_bytes(data[:cut])
        prefix = parse_recording(data[:cut])
        assert prefix.torn is not None and 0 < len(prefix) < 674
        run_dir = _replay(runs, path)
        rows = sql(
            run_dir,
            "SELECT count(*), sum(bytes) FROM events WHERE kind = 'publish' AND status = 'acked'",
        )
        assert rows[0] == (len(prefix), int(prefix.payload.lengths.sum()))
    path = tmp_path / "header.simrec"
    path.write_bytes(data[:20])
    proc = simd("replay", str(path), "--target", "sim:", "--clock", "virtual", check=2)
    assert "too short to hold its header" in proc.stderr and proc.stderr.count("\n") == 1


def test_replay_scenario_group(runs: Path) -> None:
    """scenarios/replay.toml: a [[fleet]] group with replay = {...}, relative to the file."""
    run_dir = virtual_run(SCENARIOS / "replay.toml", runs, "--target", "sim:")
    f = _fidelity(run_dir)
    assert (f["fanout"], f["passes"], f["speed"]) == (5, 2, 2.0)
    assert f["planned"] == f["replayed"] == 674 * 10
    topics = {r[0] for r in sql(run_dir, "SELECT topic FROM messages")}
    assert topics == {"replay/site/{device_id}/reading", "replay/site/{device_id}/status"}
    manifest = json.loads((run_dir / "run.json").read_text())
    replay = manifest["scenario"]["fleet"][0]["replay"]
    assert Path(replay["recording"]).is_absolute() and len(replay["recording_sha256"]) == 64


def test_replay_group_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    """A replay group with its own rate, or a count the recording contradicts, is refused."""
    body = f"""
        name = "x"
        target = "sim:"
        [[fleet]]
        name = "g"
        {{extra}}
        replay = {{ recording = "{SAMPLE}" }}
    """
    for extra, expected in (
        ("rate = 2", "fleet[0].rate: a replay group takes its timing"),
        ("count = 5", "fleet[0].count: 5, but the recording holds 20 devices x fanout 1 = 20"),
    ):
        path = write_scenario(tmp_path, body.replace("{extra}", extra))
        proc = simd("plan", str(path), check=2)
        assert expected in proc.stderr and "Traceback" not in proc.stderr


def test_a_changed_recording_is_refused_on_resume(tmp_path: Path, runs: Path) -> None:
    """run.json pins the recording's sha256: --resume after it changed is a one-line error."""
    rec = tmp_path / "r.simrec"
    rec.write_bytes(SAMPLE.read_bytes())
    run_dir = _replay(runs, rec)
    (run_dir / "run.json").write_text(
        (run_dir / "run.json").read_text().replace('"completed"', '"running"')
    )
    rec.write_bytes(SAMPLE.read_bytes()[:-10])
    proc = simd("run", "--resume", str(run_dir), "--no-progress", check=2)
    assert "changed since the run started" in proc.stderr


# ---------------------------------------------------------------- acceptance, against mosquitto

SOURCE_FLEET = """
    name = "source"
    seed = 3
    duration = "4s"
    target = "{url}"
    [[fleet]]
    name = "dev"
    count = 200
    id = "dev-{{index:03d}}"
    rate = 1.0
    qos = 1
    topic = "fleet/{{device_id}}/data"
    [[phase]]
    name = "ramp"
    duration = "2s"
    shape = "ramp"
    start = 0.2
    end = 1.5
    [[phase]]
    name = "burst"
    duration = "2s"
    shape = "burst"
    level = 0.6
    peak = 2.0
    burst_at = "0.5s"
    burst_length = "1s"
"""


def test_record_a_fleet_and_replay_it_faithfully(tmp_path: Path, runs: Path) -> None:
    """Record 4 s of a 200-device run from mosquitto with `simd record`, replay it at speed 1
    against mosquitto: every message sent once at its recorded time, and a subscriber receives
    every payload byte for byte on its topic. The timing targets (send offset p99 <= 5 ms,
    per-second correlation >= 0.99) are measured by benchmarks/bench_replay.py over 60 s, not
    asserted here: the suite holds no timing assertions."""
    need_mosquitto()
    with EmbeddedBroker("mosquitto") as broker:
        out = tmp_path / "fleet.simrec"
        recorder = subprocess.Popen(
            [sys.executable, "-m", "simd", "record", broker.url, "-t", "fleet/#",
             "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(1.5)
        source = write_scenario(tmp_path, SOURCE_FLEET.format(url=broker.url))
        simd("run", str(source), "--runs-dir", str(runs), "--no-progress", "--no-report", check=0)
        time.sleep(0.5)
        recorder.send_signal(signal.SIGINT)
        stdout, stderr = recorder.communicate(timeout=20)
        assert recorder.returncode == 0, stderr
        rec = read_recording(out)
        assert rec.torn is None and rec.end_ns is not None
        assert len(rec) > 500 and f"recorded {len(rec):,} messages" in stdout

        got: list = []
        ready, stop = threading.Event(), threading.Event()
        t = subscribe_in_thread(broker.url, "fleet/#", "3.1.1", got, ready, stop)
        assert ready.wait(10)
        proc = simd(
            "replay", str(out), "--target", broker.url, "--runs-dir", str(runs),
            "--no-progress", "--no-report", check=0,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while len(got) < len(rec) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        t.join(5)
    run_dir = run_dir_from(proc)
    f = _fidelity(run_dir)
    assert f["planned"] == f["sent"] == f["completed"] == len(rec)
    assert f["intended_error_max_ns"] == 0 and f["correlation_intended"] > 0.999
    # the tallies behind replay_fidelity agree with the exact per-message view
    ((p99, mx, sent),) = sql(
        run_dir,
        "SELECT quantile_disc(send_offset_ns, 0.99), max(send_offset_ns), count(t_sent_ns) "
        "FROM replay_messages",
    )
    assert sent == f["sent"] and abs(f["send_offset_p99_ms"] * 1e6 - p99) <= 0.0006 * p99
    ((tallied_max,),) = sql(run_dir, "SELECT send_offset_max_ms FROM replay_fidelity")
    assert round(tallied_max * 1e6) == mx
    received = collections.Counter((topic, payload) for topic, payload, *_ in got)
    recorded = collections.Counter(zip(rec.topic, rec.payload.to_list(), strict=True))
    assert received == recorded


# ---------------------------------------------------------------- the replay cursor, pure


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 5_000_000_000), min_size=1, max_size=40),
    st.integers(1, 5),  # sources
    st.sampled_from([0.5, 1.0, 3.0, 10.0, 1000.0]),
    st.integers(1, 3),  # passes
    st.integers(1, 3),  # fanout
    st.lists(st.integers(0, 40_000_000_000), max_size=8),  # chunk boundaries
    st.integers(0, 5),  # where the slice starts
)
def test_replay_windows_partition_the_schedule(
    times: list[int],
    sources: int,
    speed: float,
    passes: int,
    fanout: int,
    cuts: list[int],
    lo: int,
) -> None:
    """However run time is cut into windows and devices into slices, every (device, seq) of
    the replay is due exactly once, at lead_in + (pass * period + offset) / speed."""
    times = sorted(times)
    rec = Recording(
        header={"source": "test"},
        t_ns=np.array(times, dtype=np.int64),
        topic=[f"d/s{i % sources}/t" for i in range(len(times))],
        payload=Ragged.from_list([b"x"] * len(times)),
        qos=np.zeros(len(times), np.uint8),
        retain=np.zeros(len(times), bool),
    )
    opts = ReplaySource(recording="x", speed=speed, loop=passes, fanout=fanout)
    plan = build_plan(rec, opts, "x")
    n_dev = plan.devices
    end = plan.end_ns()
    expected = set()
    for d in range(n_dev):
        s = d % plan.sources
        rows = np.nonzero(plan.source == s)[0]
        for p in range(passes):
            for r, row in enumerate(rows):
                t = int(plan.due(p, np.array([row]))[0])
                expected.add((d, p * len(rows) + r, t))
    assert max(t for *_, t in expected) == end - 1
    got: list[tuple[int, int, int]] = []
    lo = min(lo, n_dev - 1)
    for local in (np.arange(0, lo), np.arange(lo, n_dev)):
        if not len(local):
            continue
        cursor = ReplayCursor(plan, 0, 0, local)
        bounds = sorted({0, *[c for c in cuts if c < end], end})
        for a, b in itertools.pairwise(bounds):
            dev, seq, t, _msg = cursor.events(a, b)
            assert ((t >= a) & (t < b)).all()
            got += zip(dev.tolist(), seq.tolist(), t.tolist(), strict=True)
    assert len(got) == len(set(got)) and set(got) == expected
