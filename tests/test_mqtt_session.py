"""The client session against scripted broker bytes (STYLE.md habit 8)."""

from __future__ import annotations

import pytest

from simd.transports.mqtt import codec as c
from simd.transports.mqtt.session import (
    ClientSession,
    Completed,
    Connected,
    Pong,
    Received,
    Refused,
    State,
    topic_bytes,
)


def _connected(version: int = c.V311) -> ClientSession:
    s = ClientSession(version)
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
    """PUBACK for an in-flight id completes it; an unknown id is ignored."""
    s = _connected()
    pid = s.publish(topic_bytes("t"), b"x", 1)
    assert pid is not None and s.in_flight == {pid}
    assert s.receive(c.encode(c.PubAck(999))) == []
    assert s.receive(c.encode(c.PubAck(pid))) == [Completed(pid, 0)]
    assert not s.in_flight


def test_qos2_handshake() -> None:
    """PUBREC -> we send PUBREL -> PUBCOMP completes."""
    s = _connected()
    pid = s.publish(topic_bytes("t"), b"x", 2)
    s.take_outbound()
    assert pid is not None
    assert s.receive(c.encode(c.PubRec(pid))) == []
    assert c.Decoder().feed(s.take_outbound()) == [c.PubRel(pid)]
    assert s.receive(c.encode(c.PubComp(pid))) == [Completed(pid, 0)]


def test_v5_refusal_reason_reaches_the_caller() -> None:
    """A v5 PUBACK with reason 0x87 (not authorized) completes with that reason."""
    s = _connected(c.V5)
    pid = s.publish(topic_bytes("t"), b"x", 1)
    assert pid is not None
    assert s.receive(c.encode(c.PubAck(pid, 0x87), c.V5)) == [Completed(pid, 0x87)]


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
    """A refused CONNACK closes; a lost connection returns what was in flight."""
    s = ClientSession()
    s.connect(c.Connect("x"))
    assert s.receive(c.encode(c.ConnAck(False, 5))) == [Refused(5)]
    assert s.state is State.CLOSED
    s = _connected()
    pids = {s.publish(topic_bytes("t"), b"", 1) for _ in range(3)}
    assert s.lost() == pids and s.state is State.CLOSED
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
        for q in (1, 1, 2, 1):
            s.publish(topic_bytes("t"), b"x", q)
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
    assert [e.packet_id for e in slow if isinstance(e, Completed)] == [1, 2, 3, 4]
    assert done + [e.packet_id for e in events if isinstance(e, Completed)] == [1, 2, 3, 4]
    assert [e for e in events if isinstance(e, Received)] == [Received(msg)]
    assert a.take_outbound() == b.take_outbound()
    assert not a.in_flight and not b.in_flight


def test_resume_resends_in_flight_with_dup_or_pubrel() -> None:
    """A session resumed after a loss re-sends unacked publishes with DUP and the same ids, and
    PUBREL for a qos 2 exchange already past PUBREC (MQTT-4.4.0-1)."""
    old = _connected()
    p1 = old.publish(topic_bytes("t"), b"a", 1)
    p2 = old.publish(topic_bytes("t"), b"b", 2)
    wire = old.take_outbound()
    assert p1 is not None and p2 is not None
    old.receive(c.encode(c.PubRec(p2)))
    assert old.released == {p2}
    packets = dict(zip([p1, p2], [wire[: len(wire) // 2], wire[len(wire) // 2 :]], strict=True))
    released = set(old.released)
    old.lost()
    new = _connected()
    new.resume(packets, released)
    assert c.Decoder().feed(new.take_outbound()) == [
        c.Publish("t", b"a", 1, dup=True, packet_id=p1),
        c.PubRel(p2),
    ]
    assert new.in_flight == {p1, p2}
    assert new.receive(c.encode(c.PubAck(p1)) + c.encode(c.PubComp(p2))) == [
        Completed(p1, 0),
        Completed(p2, 0),
    ]
