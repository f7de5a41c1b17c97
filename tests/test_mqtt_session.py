"""The client session against scripted broker bytes (STYLE.md habit 8)."""

from __future__ import annotations

import pytest

from simd.transports.mqtt import codec as c
from simd.transports.mqtt.session import (
    Abandoned,
    ClientSession,
    Completed,
    Connected,
    Pong,
    Received,
    Refused,
    State,
    topic_bytes,
)


def _connected(version: int = c.V311, persistent: bool = False) -> ClientSession:
    s = ClientSession(version, persistent=persistent)
    s.connect(c.Connect("dev-1", version))
    assert c.Decoder(version).feed(s.take_outbound()) == [c.Connect("dev-1", version)]
    assert s.receive(c.encode(c.ConnAck(), version)) == [Connected(False, ())]
    return s


@pytest.mark.parametrize("version", [c.V311, c.V5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_bytes_decode_as_the_packet(version: int, qos: int) -> None:
    """The hot-path encoder writes exactly what the codec would."""
    s = _connected(version)
    props = c.encode_properties((("user_property", ("k", "v")),)) if version == c.V5 else b""
    pid = s.publish(topic_bytes("a/é"), b"payload", qos, True, props)
    got = c.Decoder(version).feed(s.take_outbound())
    want = c.Publish(
        "a/é",
        b"payload",
        qos,
        True,
        False,
        pid,
        (("user_property", ("k", "v")),) if version == c.V5 else (),
    )
    assert got == [want]
    assert (pid is None) == (qos == 0)


def test_qos1_completes_on_puback() -> None:
    """PUBACK for an in-flight id completes it with its tag; an unknown id is ignored."""
    s = _connected()
    pid = s.publish(topic_bytes("t"), b"x", 1, tag=7)
    assert pid is not None and s.in_flight == {pid: 7}
    assert s.receive(c.encode(c.PubAck(999))) == []
    assert s.receive(c.encode(c.PubAck(pid))) == [Completed(pid, 0, 7)]
    assert not s.in_flight


def test_qos2_handshake() -> None:
    """PUBREC -> we send PUBREL -> PUBCOMP completes."""
    s = _connected()
    pid = s.publish(topic_bytes("t"), b"x", 2, tag=3)
    s.take_outbound()
    assert pid is not None
    assert s.receive(c.encode(c.PubRec(pid))) == []
    assert c.Decoder().feed(s.take_outbound()) == [c.PubRel(pid)]
    assert s.receive(c.encode(c.PubComp(pid))) == [Completed(pid, 0, 3)]


def test_v5_refusal_reason_reaches_the_caller() -> None:
    """A v5 PUBACK with reason 0x87 (not authorized) completes with that reason."""
    s = _connected(c.V5)
    pid = s.publish(topic_bytes("t"), b"x", 1, tag=1)
    assert pid is not None
    assert s.receive(c.encode(c.PubAck(pid, 0x87), c.V5)) == [Completed(pid, 0x87, 1)]


def test_inbound_publish_is_acknowledged() -> None:
    """A qos 1 message from the broker is reported and PUBACKed (MQTT-4.3.2)."""
    s = _connected()
    msg = c.Publish("cmd", b"on", 1, packet_id=5)
    assert s.receive(c.encode(msg)) == [Received(msg)]
    assert c.Decoder().feed(s.take_outbound()) == [c.PubAck(5)]


def test_packet_ids_skip_those_in_flight_and_wrap() -> None:
    """Ids run 1..65535 and never repeat one still in flight."""
    s = _connected()
    s._next_pid = 65534
    ids = [s.publish(topic_bytes("t"), b"", 1) for _ in range(4)]
    assert ids == [65534, 65535, 1, 2]


def test_state_table_errors_name_state_and_allowed() -> None:
    """Publishing before CONNACK is a local error naming the state."""
    s = ClientSession()
    with pytest.raises(c.LocalProtocolError, match="cannot publish in state idle"):
        s.publish(topic_bytes("t"), b"")
    s.connect(c.Connect("x"))
    with pytest.raises(c.LocalProtocolError, match=r"connecting \(allowed: disconnect\)"):
        s.ping()


def test_refused_and_lost() -> None:
    """A refused CONNACK closes; a lost connection returns the tags of what was in flight."""
    s = ClientSession()
    s.connect(c.Connect("x"))
    assert s.receive(c.encode(c.ConnAck(False, 5))) == [Refused(5)]
    assert s.state is State.CLOSED
    s = _connected()
    for tag in range(3):
        s.publish(topic_bytes("t"), b"", 1, tag=tag)
    s.subscribe([("cmd/#", 1)])  # not a publish: its tag is not handed back
    assert s.lost() == [0, 1, 2] and s.state is State.CLOSED and not s.in_flight
    s = _connected()
    s.ping()
    assert s.take_outbound() == b"\xc0\x00"
    assert s.receive(c.encode(c.PingResp())) == [Pong()]


def test_a_broker_sending_connect_is_a_remote_error() -> None:
    """Packets only clients send are protocol errors from a broker."""
    s = _connected()
    with pytest.raises(c.RemoteProtocolError):
        s.receive(c.encode(c.Connect("evil")))


@pytest.mark.parametrize("version", [c.V311, c.V5])
def test_fast_ack_path_agrees_with_the_decoder(version: int) -> None:
    """receive_acks reads plain acks off the bytes and hands the rest to the decoder, with the
    same outcome as receive: completions, PUBREL answers, other events in order."""
    a, b = _connected(version), _connected(version)
    for s in (a, b):
        for tag, q in enumerate((1, 1, 2, 1), start=1):
            s.publish(topic_bytes("t"), b"x", q, tag=tag)
        s.take_outbound()
    msg = c.Publish("cmd", b"on", 1, packet_id=9)
    wire = (
        c.encode(c.PubAck(1), version)
        + c.encode(c.PubRec(3), version)
        + c.encode(c.PubAck(2), version)
        + c.encode(msg, version)
        + c.encode(c.PubComp(3), version)
        + c.encode(c.PubAck(4), version)
    )
    slow = a.receive(wire)
    done, events = b.receive_acks(wire)
    assert [e.tag for e in slow if isinstance(e, Completed)] == [1, 2, 3, 4]
    assert done + [e.tag for e in events if isinstance(e, Completed)] == [1, 2, 3, 4]
    assert [e for e in events if isinstance(e, Received)] == [Received(msg)]
    assert a.take_outbound() == b.take_outbound()
    assert not a.in_flight and not b.in_flight


def test_resume_resends_in_flight_with_dup_or_pubrel() -> None:
    """A persistent session whose connection is lost keeps what was in flight; at the next
    CONNACK with the session present it re-sends unacked publishes with DUP and the same ids,
    and PUBREL for a qos 2 exchange already past PUBREC (MQTT-4.4.0-1)."""
    s = _connected(persistent=True)
    p1 = s.publish(topic_bytes("t"), b"a", 1, tag=10)
    p2 = s.publish(topic_bytes("t"), b"b", 2, tag=11)
    s.take_outbound()
    assert p1 is not None and p2 is not None
    s.receive(c.encode(c.PubRec(p2)))
    assert s.released == {p2}
    assert s.lost() == [] and s.state is State.CLOSED
    s.connect(c.Connect("dev-1", clean_start=False))
    assert c.Decoder().feed(s.take_outbound()) == [c.Connect("dev-1", clean_start=False)]
    assert s.receive(c.encode(c.ConnAck(True))) == [Connected(True, ())]
    assert c.Decoder().feed(s.take_outbound()) == [
        c.Publish("t", b"a", 1, dup=True, packet_id=p1),
        c.PubRel(p2),
    ]
    assert s.in_flight == {p1: 10, p2: 11}
    assert s.receive(c.encode(c.PubAck(p1)) + c.encode(c.PubComp(p2))) == [
        Completed(p1, 0, 10),
        Completed(p2, 0, 11),
    ]
    assert not s.packets and not s.released


def test_a_session_the_broker_lost_abandons_its_publishes() -> None:
    """CONNACK without the session: the kept publishes are given up, by tag, not re-sent."""
    s = _connected(persistent=True)
    s.publish(topic_bytes("t"), b"a", 1, tag=4)
    s.take_outbound()
    s.lost()
    s.connect(c.Connect("dev-1", clean_start=False))
    s.take_outbound()
    assert s.receive(c.encode(c.ConnAck(False))) == [Connected(False, ()), Abandoned((4,))]
    assert s.take_outbound() == b"" and not s.in_flight


def test_batches_from_the_encoder_go_in_flight_with_their_tags() -> None:
    """allocate + send_publishes (the hot path): ids reserved, packets queued as given, each
    exchange tagged; a persistent session keeps each packet to re-send; expire forgets one."""
    s = _connected(persistent=True)
    pids = s.allocate(2)
    packets = [c.encode(c.Publish("t", b"x", 1, packet_id=pid)) for pid in pids]
    data = b"".join(packets)
    s.send_publishes(data, pids, [20, 21], [0, len(packets[0]), len(data)])
    assert s.take_outbound() == data
    assert s.in_flight == dict(zip(pids, [20, 21], strict=True))
    assert s.packets == dict(zip(pids, packets, strict=True))
    assert s.room(5) == 3
    assert not s.expire(pids[0], 99) and s.expire(pids[0], 20)
    assert s.in_flight == {pids[1]: 21} and pids[0] not in s.packets
    done, events = s.receive_acks(c.encode(c.PubAck(pids[1])))
    assert (done, events) == ([21], [])
