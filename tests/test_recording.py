"""Recordings (simd.log.recording) and JSON-lines captures (simd.log.capture): round trips, torn
tails, and one-line errors for bad input."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simd.errors import UserError
from simd.log.recording import (
    RecordingWriter,
    import_jsonl,
    parse_recording,
    read_recording,
    write_recording,
)
from tests.conftest import REPO, simd
from tests.strategies import topic_name

SAMPLE = REPO / "recordings" / "sample.simrec"

message = st.tuples(
    st.integers(0, 10**12),  # receive time, ns
    topic_name.filter(bool),
    st.binary(max_size=64),
    st.integers(0, 2),
    st.booleans(),
    st.lists(
        st.tuples(st.sampled_from(["content_type", "user_property"]), st.text(max_size=8)),
        max_size=2,
    ),
)


def _write(path: Path, msgs: list[tuple], flush_every: int = 3) -> None:
    w = RecordingWriter(path, t0_epoch_ns=1, source="mqtt://u:pw@127.0.0.1:1883", filters=["#"])
    for i, (t, topic, payload, qos, retain, props) in enumerate(msgs):
        props = [(k, ("k", v) if k == "user_property" else v) for k, v in props]
        w.add(t, topic, payload, qos, retain, props)
        if i % flush_every == flush_every - 1:
            w.flush()
    w.close(10**12 + 1)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(message, max_size=30))
def test_recording_round_trip(tmp_path: Path, msgs: list[tuple]) -> None:
    """What the writer is given, the reader returns: time, topic, payload, qos, retain, props."""
    path = tmp_path / "r.simrec"
    _write(path, msgs)
    rec = read_recording(path)
    assert rec.torn is None and rec.end_ns == 10**12 + 1
    assert rec.header["source"] == "mqtt://127.0.0.1:1883"  # no credentials in the file
    assert rec.t_ns.tolist() == [m[0] for m in msgs]
    assert rec.topic == [m[1] for m in msgs]
    assert rec.payload.to_list() == [m[2] for m in msgs]
    assert rec.qos.tolist() == [m[3] for m in msgs]
    assert rec.retain.tolist() == [m[4] for m in msgs]
    for i, m in enumerate(msgs):
        if m[5]:
            want = [[k, ["k", v] if k == "user_property" else v] for k, v in m[5]]
            assert rec.properties[i] == want


def test_a_recording_cut_anywhere_reads_its_complete_frames(tmp_path: Path) -> None:
    """Cut at every byte offset past the header: the reader returns exactly the messages of
    the frames that are whole, and says where the torn tail starts."""
    msgs = [(i * 1000, f"d/{i % 4}/t", bytes([i]) * (i % 7), i % 3, False, []) for i in range(40)]
    path = tmp_path / "r.simrec"
    _write(path, msgs, flush_every=5)
    data = path.read_bytes()
    whole = read_recording(path)
    ends = sorted(_frame_ends(data))
    header_end = ends[0]
    seen_counts = set()
    for cut in range(len(data) + 1):
        if cut < header_end:
            with pytest.raises(UserError, match=r"header|magic"):
                parse_recording(data[:cut])
            continue
        rec = parse_recording(data[:cut])
        n = len(rec)
        seen_counts.add(n)
        assert n % 5 == 0  # frames hold 5 messages: never a partial frame
        assert rec.payload.to_list() == whole.payload.to_list()[:n]
        assert rec.t_ns.tolist() == whole.t_ns.tolist()[:n]
        assert (rec.torn is None) == (cut in ends)
    assert seen_counts == set(range(0, 41, 5))


def _frame_ends(data: bytes) -> set[int]:
    """Byte offsets just past each whole frame (the header frame first)."""
    from simd.log.framing import Damage, TornTail, scan_frames
    from simd.log.recording import MAGIC

    return {
        item[1] for item in scan_frames(data, len(MAGIC)) if not isinstance(item, TornTail | Damage)
    }


def test_not_a_recording_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.simrec"
    bad.write_bytes(b"hello world, not a recording")
    proc = simd("replay", str(bad), "--target", "sim:", check=2)
    assert proc.stderr.count("\n") == 1 and "not a simd recording" in proc.stderr
    with pytest.raises(UserError, match="bad magic"):
        read_recording(bad)


def test_sample_recording_is_inspectable() -> None:
    """recordings/sample.simrec, made by `simd record`, reads whole and names its devices."""
    proc = simd("inspect", str(SAMPLE), check=0)
    assert "674 messages" in proc.stdout and "closed cleanly" in proc.stdout
    assert "20 devices" in proc.stdout
    assert "site/{device_id}/reading" in proc.stdout


# ---------------------------------------------------------------- JSON-lines captures

capture_message = st.tuples(
    st.decimals(0, 4_000_000_000, places=9, allow_nan=False, allow_infinity=False),
    topic_name.filter(bool),
    st.one_of(st.text(max_size=30).map(lambda s: s.encode()), st.binary(max_size=30)),
    st.integers(0, 2),
    st.booleans(),
    st.one_of(st.none(), st.text(min_size=1, max_size=8)),
)


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(capture_message, min_size=1, max_size=20), st.booleans())
def test_jsonl_import_round_trip(tmp_path: Path, msgs: list[tuple], as_text: bool) -> None:
    """Each line comes back as written: exact nanoseconds from decimal seconds, payloads as
    text or base64, sorted by time with ties in file order, and through a .simrec file too."""
    lines = []
    for ts, topic, payload, qos, retain, client in msgs:
        obj: dict = {"topic": topic, "qos": qos, "retain": retain}
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if as_text and text is not None:
            obj["payload"] = text
        else:
            obj["payload_base64"] = base64.b64encode(payload).decode()
        if client is not None:
            obj["client_id"] = client
        lines.append('{"timestamp": ' + str(ts) + ", " + json.dumps(obj)[1:])
    path = tmp_path / "cap.jsonl"
    path.write_text("\n".join(lines) + "\n\n")
    rec = import_jsonl(path)
    order = sorted(range(len(msgs)), key=lambda i: msgs[i][0])
    t0 = int(msgs[order[0]][0] * Decimal(10**9))
    assert rec.t_ns.tolist() == [int(msgs[i][0] * Decimal(10**9)) - t0 for i in order]
    assert rec.header["t0_epoch_ns"] == t0
    assert rec.topic == [msgs[i][1] for i in order]
    assert rec.payload.to_list() == [msgs[i][2] for i in order]
    assert rec.qos.tolist() == [msgs[i][3] for i in order]
    assert rec.retain.tolist() == [msgs[i][4] for i in order]
    clients = [msgs[i][5] for i in order]
    assert rec.client == (clients if any(c is not None for c in clients) else None)
    back = read_recording(write_recording(rec, tmp_path / "cap.simrec"))
    assert back.payload.to_list() == rec.payload.to_list()
    assert back.t_ns.tolist() == rec.t_ns.tolist()
    assert back.client == rec.client


def test_iso_timestamps_with_zone(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(
        '{"timestamp": "2026-11-23T10:00:00.250Z", "topic": "a/b", "payload": "x"}\n'
        '{"timestamp": "2026-11-23T11:00:00.500+01:00", "topic": "a/c", "payload": "y"}\n'
    )
    rec = import_jsonl(path)
    assert rec.t_ns.tolist() == [0, 250_000_000]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"topic": "a", "payload": "x"}', "c.jsonl:2: missing 'timestamp'"),
        ('{"timestamp": 1, "topic": "a"}', "c.jsonl:2: give one of 'payload'"),
        ('{"timestamp": 1, "topic": "a/#", "payload": "x"}', "c.jsonl:2: topic: a non-empty"),
        ('{"timestamp": 1, "topic": "a", "payload_base64": "!!"}', "c.jsonl:2: payload_base64"),
        ('{"timestamp": "yesterday", "topic": "a", "payload": "x"}', "is not ISO 8601"),
        ('{"timestamp": 1, "topic": "a", "payload": "x", "qso": 1}', "unknown key 'qso'"),
        ("{not json", "c.jsonl:2: not JSON"),
    ],
)
def test_bad_capture_lines_are_one_line_errors(tmp_path: Path, line: str, expected: str) -> None:
    """`simd import` names the file and line of the first bad message, exits 2, writes nothing."""
    path = tmp_path / "c.jsonl"
    path.write_text('{"timestamp": 0.5, "topic": "a/b", "payload": "ok"}\n' + line + "\n")
    out = tmp_path / "c.simrec"
    proc = simd("import", str(path), "--out", str(out), check=2)
    assert expected in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not out.exists()
