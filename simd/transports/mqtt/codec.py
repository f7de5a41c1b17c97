"""Sans-IO MQTT 3.1.1 and 5.0 codec: packets -> bytes, bytes -> packets. No sockets, no clock.

`encode(packet, version)` returns a packet's bytes; `Decoder(version).feed(data)` returns the
packets completed by `data`. A peer's malformed bytes raise `RemoteProtocolError` (and the
decoder stays errored: the connection must close, MQTT-4.13.1-1); our own invalid packets raise
`LocalProtocolError`. Remaining lengths above `max_packet` are refused before any buffering, so
no input can make the decoder hold more than one packet (plus 5 header bytes).

Clause numbers refer to OASIS MQTT 3.1.1 and 5.0.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from simd.log.ragged import Ragged, from_mask

V311 = 4
V5 = 5

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)

MAX_REMAINING = 268_435_455  # four varint bytes (MQTT 1.5.5 / 2.2.3)


class ProtocolError(Exception):
    """Base of codec errors."""


class LocalProtocolError(ProtocolError):
    """We were asked to encode something MQTT does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that are not valid MQTT."""


# ------------------------------------------------------------------ properties (MQTT 5, 2.2.2.2)

BYTE, U16, U32, VARINT, STR, BIN, PAIR = range(7)
PROPERTIES: dict[int, tuple[str, int]] = {
    0x01: ("payload_format_indicator", BYTE),
    0x02: ("message_expiry_interval", U32),
    0x03: ("content_type", STR),
    0x08: ("response_topic", STR),
    0x09: ("correlation_data", BIN),
    0x0B: ("subscription_identifier", VARINT),
    0x11: ("session_expiry_interval", U32),
    0x12: ("assigned_client_identifier", STR),
    0x13: ("server_keep_alive", U16),
    0x15: ("authentication_method", STR),
    0x16: ("authentication_data", BIN),
    0x17: ("request_problem_information", BYTE),
    0x18: ("will_delay_interval", U32),
    0x19: ("request_response_information", BYTE),
    0x1A: ("response_information", STR),
    0x1C: ("server_reference", STR),
    0x1F: ("reason_string", STR),
    0x21: ("receive_maximum", U16),
    0x22: ("topic_alias_maximum", U16),
    0x23: ("topic_alias", U16),
    0x24: ("maximum_qos", BYTE),
    0x25: ("retain_available", BYTE),
    0x26: ("user_property", PAIR),
    0x27: ("maximum_packet_size", U32),
    0x28: ("wildcard_subscription_available", BYTE),
    0x29: ("subscription_identifier_available", BYTE),
    0x2A: ("shared_subscription_available", BYTE),
}
PROPERTY_IDS = {name: pid for pid, (name, _) in PROPERTIES.items()}
REPEATABLE = {0x26, 0x0B}  # user properties; subscription identifiers in PUBLISH

# Properties: ((name, value), ...) in wire order; user_property values are (key, value) pairs.
Properties = tuple[tuple[str, Any], ...]


def prop(props: Properties, name: str, default: Any = None) -> Any:
    """The first value of a property, or `default`."""
    for k, v in props:
        if k == name:
            return v
    return default


# ------------------------------------------------------------------ packets


@dataclass(frozen=True)
class Packet:
    type: ClassVar[int] = 0


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: Properties = ()


@dataclass(frozen=True)
class Connect(Packet):
    type: ClassVar[int] = CONNECT
    client_id: str
    version: int = V311
    clean_start: bool = True
    keepalive: int = 60
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: Properties = ()


@dataclass(frozen=True)
class ConnAck(Packet):
    type: ClassVar[int] = CONNACK
    session_present: bool = False
    reason_code: int = 0
    properties: Properties = ()


@dataclass(frozen=True)
class Publish(Packet):
    type: ClassVar[int] = PUBLISH
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: Properties = ()


@dataclass(frozen=True)
class _Ack(Packet):
    packet_id: int
    reason_code: int = 0
    properties: Properties = ()


@dataclass(frozen=True)
class PubAck(_Ack):
    type: ClassVar[int] = PUBACK


@dataclass(frozen=True)
class PubRec(_Ack):
    type: ClassVar[int] = PUBREC


@dataclass(frozen=True)
class PubRel(_Ack):
    type: ClassVar[int] = PUBREL


@dataclass(frozen=True)
class PubComp(_Ack):
    type: ClassVar[int] = PUBCOMP


@dataclass(frozen=True)
class Subscribe(Packet):
    type: ClassVar[int] = SUBSCRIBE
    packet_id: int
    subscriptions: tuple[tuple[str, int], ...]  # (filter, options byte: qos | flags)
    properties: Properties = ()


@dataclass(frozen=True)
class SubAck(Packet):
    type: ClassVar[int] = SUBACK
    packet_id: int
    reason_codes: tuple[int, ...]
    properties: Properties = ()


@dataclass(frozen=True)
class Unsubscribe(Packet):
    type: ClassVar[int] = UNSUBSCRIBE
    packet_id: int
    topics: tuple[str, ...]
    properties: Properties = ()


@dataclass(frozen=True)
class UnsubAck(Packet):
    type: ClassVar[int] = UNSUBACK
    packet_id: int
    reason_codes: tuple[int, ...] = ()
    properties: Properties = ()


@dataclass(frozen=True)
class PingReq(Packet):
    type: ClassVar[int] = PINGREQ


@dataclass(frozen=True)
class PingResp(Packet):
    type: ClassVar[int] = PINGRESP


@dataclass(frozen=True)
class Disconnect(Packet):
    type: ClassVar[int] = DISCONNECT
    reason_code: int = 0
    properties: Properties = ()


@dataclass(frozen=True)
class Auth(Packet):
    type: ClassVar[int] = AUTH
    reason_code: int = 0
    properties: Properties = field(default_factory=tuple)


# ------------------------------------------------------------------ primitives

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def _varint(n: int) -> bytes:
    if not 0 <= n <= MAX_REMAINING:
        raise LocalProtocolError(f"variable byte integer {n} out of range")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


_VARINT_SMALL = [_varint(i) for i in range(16384)]  # every 1- and 2-byte value, precomputed


def varint(n: int) -> bytes:
    """MQTT variable byte integer (1.5.5 / 2.2.3)."""
    if 0 <= n < 16384:
        return _VARINT_SMALL[n]
    return _varint(n)


def varint_prefixes(first: np.ndarray, n: np.ndarray) -> Ragged:
    """`first byte + varint(n)` per row, vectorised (the fixed headers of a batch)."""
    if len(n) and (n.min() < 0 or n.max() > MAX_REMAINING):
        raise LocalProtocolError("remaining length out of range")
    mat = np.zeros((len(n), 5), dtype=np.uint8)
    mat[:, 0] = first
    x = n.astype(np.int64)
    nbytes = 1 + (x >= 128) + (x >= 16384) + (x >= 2097152)
    for k in range(4):
        more = nbytes > k + 1
        mat[:, k + 1] = (x & 0x7F) | np.where(more, 0x80, 0)
        x = x >> 7
    keep = np.arange(5)[None, :] <= nbytes[:, None]
    return from_mask(mat, keep)


def varints(n: np.ndarray) -> Ragged:
    """varint(n) per row, vectorised."""
    with_first = varint_prefixes(np.zeros(len(n), dtype=np.uint8), n)
    lengths = with_first.lengths - 1
    offsets = np.zeros(len(n) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    keep = np.ones(len(with_first.data), dtype=bool)
    keep[with_first.offsets[:-1]] = False
    return Ragged(with_first.data[keep], offsets)


def _check_str(s: str) -> bytes:
    b = s.encode("utf-8", "surrogatepass")
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        raise LocalProtocolError("string is not valid UTF-8") from None
    if "\x00" in s:
        raise LocalProtocolError("string contains U+0000 (MQTT-1.5.3-2)")
    if len(b) > 0xFFFF:
        raise LocalProtocolError("string longer than 65,535 bytes")
    return b


def utf8(s: str) -> bytes:
    b = _check_str(s)
    return _U16.pack(len(b)) + b


def binary(b: bytes) -> bytes:
    if len(b) > 0xFFFF:
        raise LocalProtocolError("binary data longer than 65,535 bytes")
    return _U16.pack(len(b)) + b


def encode_properties(props: Properties) -> bytes:
    out = bytearray()
    for name, value in props:
        pid = PROPERTY_IDS.get(name)
        if pid is None:
            raise LocalProtocolError(f"unknown property {name!r}")
        kind = PROPERTIES[pid][1]
        out += varint(pid)
        if kind == BYTE:
            out.append(int(value) & 0xFF)
        elif kind == U16:
            out += _U16.pack(value)
        elif kind == U32:
            out += _U32.pack(value)
        elif kind == VARINT:
            out += varint(value)
        elif kind == STR:
            out += utf8(value)
        elif kind == BIN:
            out += binary(value)
        else:
            out += utf8(value[0]) + utf8(value[1])
    return varint(len(out)) + bytes(out)


def _fixed(ptype: int, flags: int, body: bytes) -> bytes:
    if len(body) > MAX_REMAINING:
        raise LocalProtocolError("packet larger than MQTT allows")
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


# ------------------------------------------------------------------ encode


def encode(p: Packet, version: int = V311) -> bytes:
    """The bytes of one packet for a connection speaking `version` (4 = 3.1.1, 5 = 5.0)."""
    v5 = version == V5
    if isinstance(p, Publish):
        if p.qos not in (0, 1, 2):
            raise LocalProtocolError(f"qos {p.qos} is not 0, 1 or 2")
        if (p.qos == 0) != (p.packet_id is None):
            raise LocalProtocolError("a packet id goes with qos 1 and 2 only (MQTT-2.3.1-5)")
        if p.qos == 0 and p.dup:
            raise LocalProtocolError("DUP must be 0 for qos 0 (MQTT-3.3.1-2)")
        if any(c in p.topic for c in "+#"):
            raise LocalProtocolError("a topic name has no wildcards (MQTT-3.3.2-2)")
        body = utf8(p.topic)
        if p.packet_id is not None:
            body += _pid(p.packet_id)
        if v5:
            body += encode_properties(p.properties)
        flags = (int(p.dup) << 3) | (p.qos << 1) | int(p.retain)
        return _fixed(PUBLISH, flags, body + p.payload)
    if isinstance(p, _Ack):
        body = _pid(p.packet_id)
        if v5 and (p.reason_code or p.properties):
            body += bytes([p.reason_code])
            if p.properties:
                body += encode_properties(p.properties)
        return _fixed(p.type, 0b0010 if isinstance(p, PubRel) else 0, body)
    if isinstance(p, Connect):
        return _encode_connect(p)
    if isinstance(p, ConnAck):
        body = bytes([int(p.session_present), p.reason_code])
        if v5:
            body += encode_properties(p.properties)
        return _fixed(CONNACK, 0, body)
    if isinstance(p, Subscribe):
        if not p.subscriptions:
            raise LocalProtocolError("SUBSCRIBE needs at least one filter (MQTT-3.8.3-3)")
        body = _pid(p.packet_id) + (encode_properties(p.properties) if v5 else b"")
        for topic, opts in p.subscriptions:
            body += utf8(topic) + bytes([opts])
        return _fixed(SUBSCRIBE, 0b0010, body)
    if isinstance(p, SubAck):
        body = _pid(p.packet_id) + (encode_properties(p.properties) if v5 else b"")
        return _fixed(SUBACK, 0, body + bytes(p.reason_codes))
    if isinstance(p, Unsubscribe):
        if not p.topics:
            raise LocalProtocolError("UNSUBSCRIBE needs at least one filter (MQTT-3.10.3-2)")
        body = _pid(p.packet_id) + (encode_properties(p.properties) if v5 else b"")
        for topic in p.topics:
            body += utf8(topic)
        return _fixed(UNSUBSCRIBE, 0b0010, body)
    if isinstance(p, UnsubAck):
        body = _pid(p.packet_id)
        if v5:
            body += encode_properties(p.properties) + bytes(p.reason_codes)
        return _fixed(UNSUBACK, 0, body)
    if isinstance(p, PingReq | PingResp):
        return _fixed(p.type, 0, b"")
    if isinstance(p, Disconnect | Auth):
        if isinstance(p, Auth) and not v5:
            raise LocalProtocolError("AUTH exists in MQTT 5 only")
        body = b""
        if v5 and (p.reason_code or p.properties):
            body = bytes([p.reason_code]) + encode_properties(p.properties)
        return _fixed(p.type, 0, body)
    raise LocalProtocolError(f"cannot encode {type(p).__name__}")


def _pid(packet_id: int) -> bytes:
    if not 1 <= packet_id <= 0xFFFF:
        raise LocalProtocolError(f"packet id {packet_id} not in 1..65535 (MQTT-2.3.1-1)")
    return _U16.pack(packet_id)


def _encode_connect(p: Connect) -> bytes:
    if p.version not in (V311, V5):
        raise LocalProtocolError(f"protocol level {p.version} (simd speaks 4 and 5)")
    v5 = p.version == V5
    flags = int(p.clean_start) << 1
    if p.will is not None:
        if p.will.qos not in (0, 1, 2):
            raise LocalProtocolError("will qos must be 0, 1 or 2")
        flags |= 0b100 | (p.will.qos << 3) | (int(p.will.retain) << 5)
    if p.username is not None:
        flags |= 0x80
    if p.password is not None:
        if p.username is None and not v5:
            raise LocalProtocolError("3.1.1 allows a password only with a username (MQTT-3.1.2-22)")
        flags |= 0x40
    if not 0 <= p.keepalive <= 0xFFFF:
        raise LocalProtocolError("keepalive not in 0..65535")
    body = utf8("MQTT") + bytes([p.version, flags]) + _U16.pack(p.keepalive)
    if v5:
        body += encode_properties(p.properties)
    body += utf8(p.client_id)
    if p.will is not None:
        if v5:
            body += encode_properties(p.will.properties)
        body += utf8(p.will.topic) + binary(p.will.payload)
    if p.username is not None:
        body += utf8(p.username)
    if p.password is not None:
        body += binary(p.password)
    return _fixed(CONNECT, 0, body)


# ------------------------------------------------------------------ decode


class _Reader:
    """Bounds-checked reads over one packet's body; every shortfall is a RemoteProtocolError."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.left():
            raise RemoteProtocolError("packet shorter than its contents")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def byte(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return _U16.unpack(self.take(2))[0]

    def u32(self) -> int:
        return _U32.unpack(self.take(4))[0]

    def varint(self) -> int:
        value = 0
        for shift in (0, 7, 14, 21):
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
        raise RemoteProtocolError("variable byte integer longer than 4 bytes")

    def string(self) -> str:
        raw = self.take(self.u16())
        try:
            s = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError("string is not valid UTF-8 (MQTT-1.5.4-1)") from None
        if "\x00" in s:
            raise RemoteProtocolError("string contains U+0000 (MQTT-1.5.4-2)")
        return s

    def binary(self) -> bytes:
        return self.take(self.u16())

    def properties(self) -> Properties:
        length = self.varint()
        end = self.pos + length
        if end > len(self.data):
            raise RemoteProtocolError("properties longer than the packet")
        out: list[tuple[str, Any]] = []
        seen: set[int] = set()
        while self.pos < end:
            pid = self.varint()
            spec = PROPERTIES.get(pid)
            if spec is None:
                raise RemoteProtocolError(f"unknown property identifier 0x{pid:02x}")
            if pid in seen and pid not in REPEATABLE:
                raise RemoteProtocolError(f"property {spec[0]} given twice (MQTT 2.2.2.2)")
            seen.add(pid)
            name, kind = spec
            if kind == BYTE:
                value: Any = self.byte()
            elif kind == U16:
                value = self.u16()
            elif kind == U32:
                value = self.u32()
            elif kind == VARINT:
                value = self.varint()
            elif kind == STR:
                value = self.string()
            elif kind == BIN:
                value = self.binary()
            else:
                value = (self.string(), self.string())
            out.append((name, value))
        if self.pos != end:
            raise RemoteProtocolError("properties overrun their length")
        return tuple(out)

    def done(self, what: str) -> None:
        if self.left():
            raise RemoteProtocolError(f"{self.left()} unexpected bytes at the end of {what}")


def decode_packet(first: int, body: bytes, version: int) -> Packet:
    """One packet from its first byte and body (the remaining-length bytes already stripped)."""
    ptype, flags = first >> 4, first & 0x0F
    r = _Reader(body)
    v5 = version == V5
    if ptype == PUBLISH:
        return _publish(flags, r, v5)
    expected = 0b0010 if ptype in (PUBREL, SUBSCRIBE, UNSUBSCRIBE) else 0
    if ptype not in range(1, 16) or (ptype == AUTH and not v5):
        raise RemoteProtocolError(f"packet type {ptype} is reserved")
    if flags != expected:
        raise RemoteProtocolError(f"packet type {ptype} with flags {flags:#06b} (MQTT-2.2.2-2)")
    return _BODIES[ptype](ptype, r, v5)


def _publish(flags: int, r: _Reader, v5: bool) -> Publish:
    qos = (flags >> 1) & 3
    if qos == 3:
        raise RemoteProtocolError("PUBLISH with qos 3 (MQTT-3.3.1-4)")
    dup = bool(flags & 8)
    if qos == 0 and dup:
        raise RemoteProtocolError("DUP set on a qos 0 PUBLISH (MQTT-3.3.1-2)")
    topic = r.string()
    pid = r.u16() if qos else None
    if pid == 0:
        raise RemoteProtocolError("packet id 0 (MQTT-2.3.1-1)")
    props = r.properties() if v5 else ()
    return Publish(topic, r.take(r.left()), qos, bool(flags & 1), dup, pid, props)


def _ack(ptype: int, r: _Reader, v5: bool) -> Packet:
    pid = r.u16()
    code, props = 0, ()
    if v5 and r.left():
        code = r.byte()
        if r.left():
            props = r.properties()
    r.done("an acknowledgement")
    cls = {PUBACK: PubAck, PUBREC: PubRec, PUBREL: PubRel, PUBCOMP: PubComp}[ptype]
    return cls(pid, code, props)


def _connack(ptype: int, r: _Reader, v5: bool) -> ConnAck:
    ack_flags = r.byte()
    if ack_flags & 0xFE:
        raise RemoteProtocolError("CONNACK reserved flags set (MQTT-3.2.2-1)")
    code = r.byte()
    props = r.properties() if v5 else ()
    r.done("CONNACK")
    return ConnAck(bool(ack_flags & 1), code, props)


def _ping(ptype: int, r: _Reader, v5: bool) -> Packet:
    r.done("PING")
    return PingReq() if ptype == PINGREQ else PingResp()


def _subscribe(ptype: int, r: _Reader, v5: bool) -> Subscribe:
    pid = r.u16()
    props = r.properties() if v5 else ()
    subs = []
    while r.left():
        subs.append((r.string(), r.byte()))
    if not subs:
        raise RemoteProtocolError("SUBSCRIBE without filters (MQTT-3.8.3-3)")
    return Subscribe(pid, tuple(subs), props)


def _suback(ptype: int, r: _Reader, v5: bool) -> SubAck:
    pid = r.u16()
    props = r.properties() if v5 else ()
    return SubAck(pid, tuple(r.take(r.left())), props)


def _unsubscribe(ptype: int, r: _Reader, v5: bool) -> Unsubscribe:
    pid = r.u16()
    props = r.properties() if v5 else ()
    topics = []
    while r.left():
        topics.append(r.string())
    if not topics:
        raise RemoteProtocolError("UNSUBSCRIBE without filters (MQTT-3.10.3-2)")
    return Unsubscribe(pid, tuple(topics), props)


def _unsuback(ptype: int, r: _Reader, v5: bool) -> UnsubAck:
    pid = r.u16()
    if v5:
        props = r.properties()
        return UnsubAck(pid, tuple(r.take(r.left())), props)
    r.done("UNSUBACK")
    return UnsubAck(pid)


def _disconnect_or_auth(ptype: int, r: _Reader, v5: bool) -> Packet:
    code, props = 0, ()
    if v5 and r.left():
        code = r.byte()
        if r.left():
            props = r.properties()
    r.done("DISCONNECT" if ptype == DISCONNECT else "AUTH")
    return Disconnect(code, props) if ptype == DISCONNECT else Auth(code, props)


# packet type -> how its body reads (PUBLISH apart: its flags carry qos, dup and retain)
_BODIES: dict[int, Callable[[int, _Reader, bool], Packet]] = {
    CONNECT: lambda ptype, r, v5: _decode_connect(r),
    CONNACK: _connack,
    PUBACK: _ack,
    PUBREC: _ack,
    PUBREL: _ack,
    PUBCOMP: _ack,
    SUBSCRIBE: _subscribe,
    SUBACK: _suback,
    UNSUBSCRIBE: _unsubscribe,
    UNSUBACK: _unsuback,
    PINGREQ: _ping,
    PINGRESP: _ping,
    DISCONNECT: _disconnect_or_auth,
    AUTH: _disconnect_or_auth,
}


def _decode_connect(r: _Reader) -> Connect:
    if r.string() != "MQTT":
        raise RemoteProtocolError("protocol name is not MQTT (MQTT-3.1.2-1)")
    level = r.byte()
    if level not in (V311, V5):
        raise RemoteProtocolError(f"unsupported protocol level {level}")
    flags = r.byte()
    if flags & 1:
        raise RemoteProtocolError("CONNECT reserved flag set (MQTT-3.1.2-3)")
    keepalive = r.u16()
    v5 = level == V5
    props = r.properties() if v5 else ()
    client_id = r.string()
    will = None
    if flags & 0b100:
        wprops = r.properties() if v5 else ()
        wqos = (flags >> 3) & 3
        if wqos == 3:
            raise RemoteProtocolError("will qos 3 (MQTT-3.1.2-14)")
        will = Will(r.string(), r.binary(), wqos, bool(flags & 0x20), wprops)
    elif flags & 0x38:
        raise RemoteProtocolError("will qos/retain without a will (MQTT-3.1.2-13)")
    username = r.string() if flags & 0x80 else None
    password = r.binary() if flags & 0x40 else None
    r.done("CONNECT")
    return Connect(client_id, level, bool(flags & 2), keepalive, username, password, will, props)


class Decoder:
    """Bytes in, packets out. Holds at most one incomplete packet; once errored, always errored."""

    def __init__(self, version: int = V311, max_packet: int = 1 << 20) -> None:
        self.version = version
        self.max_packet = max_packet
        self._buf = bytearray()
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held of a packet not yet complete (0: the next byte starts a packet)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Packet]:
        """Packets completed by `data`, in order; RemoteProtocolError on malformed input."""
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[Packet] = []
        buf = self._buf
        pos = 0
        try:
            while True:
                if len(buf) - pos < 2:
                    break
                length = 0
                i = pos + 1
                for shift in (0, 7, 14, 21):
                    if i >= len(buf):
                        length = -1
                        break
                    b = buf[i]
                    i += 1
                    length |= (b & 0x7F) << shift
                    if not b & 0x80:
                        break
                else:
                    raise RemoteProtocolError("remaining length longer than 4 bytes (MQTT-1.5.5)")
                if length < 0:
                    break
                if length > self.max_packet:
                    raise RemoteProtocolError(
                        f"packet of {length} bytes exceeds the maximum of {self.max_packet}"
                    )
                end = i + length
                if end > len(buf):
                    break
                out.append(decode_packet(buf[pos], bytes(buf[i:end]), self.version))
                pos = end
        except RemoteProtocolError as exc:
            self._error = exc
            raise
        del buf[:pos]
        return out
