"""The MQTT codec: round trips for every packet in both versions; any bytes -> packets or a
RemoteProtocolError, never a crash, a hang, or a buffer past the maximum packet size."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simd.transports.mqtt import codec as c
from tests.strategies import packets


def _normal(p: c.Packet, version: int) -> c.Packet:
    """What the peer decodes: a 3.1.1 ack carries no reason code or properties on the wire."""
    if version == c.V5 and isinstance(p, c.PubAck | c.PubRec | c.PubRel | c.PubComp):
        return p if p.reason_code or p.properties else type(p)(p.packet_id)
    if version == c.V5 and isinstance(p, c.Disconnect | c.Auth):
        return p if p.reason_code or p.properties else type(p)()
    return p


@pytest.mark.parametrize("version", [c.V311, c.V5])
@settings(max_examples=400)
@given(data=st.data())
def test_round_trip(version: int, data: st.DataObject) -> None:
    """decode(encode(p)) == p, whole or fed a byte at a time."""
    p = data.draw(packets(version))
    wire = c.encode(p, version)
    d = c.Decoder(version, max_packet=c.MAX_REMAINING)
    assert d.feed(wire) == [_normal(p, version)]
    d = c.Decoder(version, max_packet=c.MAX_REMAINING)
    out: list[c.Packet] = []
    for i in range(len(wire)):
        out += d.feed(wire[i : i + 1])
    assert out == [_normal(p, version)]


@pytest.mark.parametrize("version", [c.V311, c.V5])
@settings(max_examples=100)
@given(data=st.data())
def test_stream_of_packets(version: int, data: st.DataObject) -> None:
    """Several packets back to back, cut anywhere, decode in order."""
    ps = data.draw(st.lists(packets(version), min_size=1, max_size=6))
    wire = b"".join(c.encode(p, version) for p in ps)
    cut = data.draw(st.integers(0, len(wire)))
    d = c.Decoder(version, max_packet=c.MAX_REMAINING)
    assert d.feed(wire[:cut]) + d.feed(wire[cut:]) == [_normal(p, version) for p in ps]


@pytest.mark.parametrize("version", [c.V311, c.V5])
@settings(max_examples=1000)
@given(data=st.binary(max_size=300), cut=st.integers(0, 300))
def test_any_bytes_are_packets_or_a_protocol_error(version: int, data: bytes, cut: int) -> None:
    """Arbitrary input never raises anything but RemoteProtocolError, and the buffer stays
    below one maximum packet."""
    d = c.Decoder(version, max_packet=64)
    try:
        d.feed(data[:cut])
        d.feed(data[cut:])
    except c.RemoteProtocolError:
        with pytest.raises(c.RemoteProtocolError):
            d.feed(b"\xc0\x00")  # errored for good
        return
    assert len(d._buf) <= 64 + 5


def test_oversized_remaining_length_refused_before_buffering() -> None:
    """A header announcing 200 MB is refused at once, not buffered."""
    d = c.Decoder(c.V311, max_packet=1 << 20)
    with pytest.raises(c.RemoteProtocolError, match="exceeds the maximum"):
        d.feed(bytes([0x30]) + c.varint(200_000_000))


def test_five_byte_varint_is_an_error() -> None:
    """A remaining length of more than four bytes is malformed (MQTT 1.5.5)."""
    with pytest.raises(c.RemoteProtocolError, match="longer than 4 bytes"):
        c.Decoder().feed(b"\x30\xff\xff\xff\xff\x01")


def test_known_bytes() -> None:
    """Encodings match the spec's examples byte for byte."""
    assert c.encode(c.PingReq()) == b"\xc0\x00"
    assert c.encode(c.Publish("a/b", b"hi", 1, packet_id=10)) == b"\x32\x09\x00\x03a/b\x00\x0ahi"
    assert c.encode(c.PubRel(7)) == b"\x62\x02\x00\x07"
    assert c.encode(c.Connect("dev", keepalive=30)) == (
        b"\x10\x0f\x00\x04MQTT\x04\x02\x00\x1e\x00\x03dev"
    )
    assert c.varint(127) == b"\x7f" and c.varint(128) == b"\x80\x01"
    assert c.varint(268_435_455) == b"\xff\xff\xff\x7f"


def test_local_errors() -> None:
    """What MQTT forbids is refused on encode, with the clause."""
    with pytest.raises(c.LocalProtocolError, match=r"2\.3\.1-5"):
        c.encode(c.Publish("t", b"", 1))
    with pytest.raises(c.LocalProtocolError, match="wildcards"):
        c.encode(c.Publish("t/#", b""))
    with pytest.raises(c.LocalProtocolError, match="U\\+0000"):
        c.encode(c.Publish("a\x00b", b""))
    with pytest.raises(c.LocalProtocolError, match="MQTT 5 only"):
        c.encode(c.Auth(), c.V311)


def test_remote_errors_name_the_rule() -> None:
    """Malformed input from a peer is named."""
    with pytest.raises(c.RemoteProtocolError, match="qos 3"):
        c.Decoder().feed(b"\x36\x05\x00\x01a\x00\x01")
    with pytest.raises(c.RemoteProtocolError, match="flags"):
        c.Decoder().feed(b"\x61\x02\x00\x01")  # PUBREL must carry flags 0010
    with pytest.raises(c.RemoteProtocolError, match="UTF-8"):
        c.Decoder().feed(b"\x30\x04\x00\x02\xff\xfe")
