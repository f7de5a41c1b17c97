"""Sans-IO MQTT client session: one connection's state, packet ids and in-flight publishes.

Commands (`connect`, `publish`, `ping`, `subscribe`, `disconnect`) append bytes to `outbound`;
`receive(data)` decodes what the broker sent and returns events. No socket, no clock, no await:
the trio shell (simd.transports.mqtt.transport) moves the bytes and reads the time.

States and what may happen in each (a missing transition is a LocalProtocolError naming the
state and the allowed commands):

    IDLE        connect                  -> CONNECTING
    CONNECTING  CONNACK ok               -> CONNECTED
    CONNECTING  CONNACK refused          -> CLOSED
    CONNECTED   publish, ping, subscribe    (stays)
    CONNECTED   disconnect / DISCONNECT  -> CLOSED
    any         connection lost          -> CLOSED
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum

from simd.transports.mqtt import codec as c


class State(Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


ALLOWED: dict[State, frozenset[str]] = {
    State.IDLE: frozenset({"connect"}),
    State.CONNECTING: frozenset({"disconnect"}),
    State.CONNECTED: frozenset({"publish", "ping", "subscribe", "disconnect"}),
    State.CLOSED: frozenset(),
}


@dataclass(frozen=True)
class Connected:
    session_present: bool
    properties: c.Properties


@dataclass(frozen=True)
class Refused:
    reason_code: int


@dataclass(frozen=True)
class Completed:
    """A qos 1 (PUBACK) or qos 2 (PUBCOMP) publish is done; reason >= 0x80 means refused (v5)."""

    packet_id: int
    reason_code: int


@dataclass(frozen=True)
class Received:
    publish: c.Publish


@dataclass(frozen=True)
class Pong:
    pass


@dataclass(frozen=True)
class ServerDisconnected:
    reason_code: int


@dataclass(frozen=True)
class Subscribed:
    packet_id: int
    reason_codes: tuple[int, ...]


Event = Connected | Refused | Completed | Received | Pong | ServerDisconnected | Subscribed

_PID = struct.Struct(">H")


def topic_bytes(topic: str) -> bytes:
    """A topic name as it stands in a PUBLISH (length-prefixed UTF-8); compile once per device."""
    return c.utf8(topic)


class ClientSession:
    """One client connection's MQTT state (3.1.1 or 5.0)."""

    def __init__(self, version: int = c.V311, max_packet: int = 1 << 20) -> None:
        self.version = version
        self.state = State.IDLE
        self.outbound = bytearray()
        self.decoder = c.Decoder(version, max_packet)
        self.in_flight: set[int] = set()
        self.released: set[int] = set()  # qos 2 ids past PUBREC: a resume re-sends PUBREL
        self.receive_maximum = 65535
        self._next_pid = 1

    def _require(self, command: str) -> None:
        if command not in ALLOWED[self.state]:
            allowed = ", ".join(sorted(ALLOWED[self.state])) or "nothing"
            raise c.LocalProtocolError(
                f"cannot {command} in state {self.state.value} (allowed: {allowed})"
            )

    def connect(self, packet: c.Connect) -> None:
        self._require("connect")
        self.outbound += c.encode(packet, self.version)
        self.state = State.CONNECTING

    def _pid(self) -> int:
        # MQTT-2.3.1-2: a packet id is unused while its exchange is in flight
        if len(self.in_flight) >= 65535:
            raise c.LocalProtocolError("65,535 publishes in flight: no packet id free")
        pid = self._next_pid
        while pid in self.in_flight:
            pid = pid % 65535 + 1
        self._next_pid = pid % 65535 + 1
        self.in_flight.add(pid)
        return pid

    @property
    def window_full(self) -> bool:
        return len(self.in_flight) >= self.receive_maximum

    def publish(
        self,
        topic: bytes,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        properties: bytes = b"",
    ) -> int | None:
        """Queue a PUBLISH. `topic` from topic_bytes(); `properties` pre-encoded (v5, with its
        length) or b"". Returns the packet id (qos 1, 2) or None. The hot path: no dataclass."""
        if self.state is not State.CONNECTED:
            self._require("publish")
        if self.version == c.V5 and not properties:
            properties = b"\x00"
        pid = None
        rest = len(topic) + len(properties) + len(payload)
        out = self.outbound
        if qos:
            pid = self._pid()
            out.append(0x30 | (qos << 1) | int(retain))
            out += c.varint(rest + 2)
            out += topic
            out += _PID.pack(pid)
        else:
            out.append(0x30 | int(retain))
            out += c.varint(rest)
            out += topic
        out += properties
        out += payload
        return pid

    def ping(self) -> None:
        self._require("ping")
        self.outbound += b"\xc0\x00"

    def subscribe(self, filters: list[tuple[str, int]], properties: c.Properties = ()) -> int:
        self._require("subscribe")
        pid = self._pid()
        self.outbound += c.encode(c.Subscribe(pid, tuple(filters), properties), self.version)
        return pid

    def disconnect(self) -> None:
        self._require("disconnect")
        self.outbound += c.encode(c.Disconnect(), self.version)
        self.state = State.CLOSED

    def resume(self, packets: dict[int, bytes], released: set[int]) -> None:
        """After a CONNACK with session present: re-send what was in flight on the lost
        connection, PUBLISH with DUP set, or PUBREL for qos 2 ids already past PUBREC
        (MQTT-4.4.0-1: in the original order, with the original packet ids)."""
        if self.state is not State.CONNECTED:
            self._require("publish")
        for pid, packet in packets.items():
            self.in_flight.add(pid)
            if pid in released:
                self.released.add(pid)
                self.outbound += c.encode(c.PubRel(pid), self.version)
            else:
                self.outbound.append(packet[0] | 0x08)  # DUP (MQTT-3.3.1-1)
                self.outbound += packet[1:]

    def lost(self) -> set[int]:
        """The connection is gone: CLOSED; return the packet ids that were in flight."""
        self.state = State.CLOSED
        gone, self.in_flight = self.in_flight, set()
        return gone

    def take_outbound(self) -> bytes:
        out = bytes(self.outbound)
        self.outbound.clear()
        return out

    def receive_acks(self, data: bytes) -> tuple[list[int], list[Event]]:
        """`receive`, with the common case fast: plain PUBACK / PUBCOMP / PUBREC packets (4
        bytes, reason 0) are read straight off the bytes. Returns (completed packet ids,
        other events)."""
        done: list[int] = []
        i = 0
        n = len(data)
        if not self.decoder._buf:
            in_flight = self.in_flight
            while i + 4 <= n and data[i + 1] == 2:
                head = data[i]
                if head not in (0x40, 0x70, 0x50):
                    break
                pid = (data[i + 2] << 8) | data[i + 3]
                i += 4
                if head == 0x50:  # PUBREC: answer PUBREL (MQTT-4.3.3)
                    self.outbound += b"\x62\x02" + data[i - 2 : i]
                    self.released.add(pid)
                elif pid in in_flight:
                    in_flight.discard(pid)
                    self.released.discard(pid)
                    done.append(pid)
        events = self.receive(data[i:]) if i < n else []
        return done, events

    def allocate(self, k: int) -> list[int]:
        """k packet ids at once (for a batch of qos 1/2 publishes to this connection)."""
        return [self._pid() for _ in range(k)]

    def receive(self, data: bytes) -> list[Event]:
        """Decode the broker's bytes; queue the acks MQTT requires; return what happened."""
        events: list[Event] = []
        for p in self.decoder.feed(data):
            if isinstance(p, c.PubAck | c.PubComp):
                if p.packet_id in self.in_flight:
                    self.in_flight.discard(p.packet_id)
                    self.released.discard(p.packet_id)
                    events.append(Completed(p.packet_id, p.reason_code))
            elif isinstance(p, c.PubRec):
                if p.reason_code >= 0x80:  # v5: refused at PUBREC, the exchange ends here
                    self.in_flight.discard(p.packet_id)
                    events.append(Completed(p.packet_id, p.reason_code))
                else:
                    self.outbound += c.encode(c.PubRel(p.packet_id), self.version)
                    self.released.add(p.packet_id)
            elif isinstance(p, c.Publish):
                events.append(Received(p))
                if p.qos == 1:
                    assert p.packet_id is not None
                    self.outbound += c.encode(c.PubAck(p.packet_id), self.version)
                elif p.qos == 2:
                    assert p.packet_id is not None
                    self.outbound += c.encode(c.PubRec(p.packet_id), self.version)
            elif isinstance(p, c.PubRel):
                self.outbound += c.encode(c.PubComp(p.packet_id), self.version)
            elif isinstance(p, c.ConnAck):
                if self.state is not State.CONNECTING:
                    raise c.RemoteProtocolError("CONNACK outside a connect (MQTT-3.2.0-1)")
                if p.reason_code:
                    self.state = State.CLOSED
                    events.append(Refused(p.reason_code))
                else:
                    self.state = State.CONNECTED
                    self.receive_maximum = c.prop(p.properties, "receive_maximum", 65535)
                    events.append(Connected(p.session_present, p.properties))
            elif isinstance(p, c.PingResp):
                events.append(Pong())
            elif isinstance(p, c.SubAck):
                self.in_flight.discard(p.packet_id)
                events.append(Subscribed(p.packet_id, p.reason_codes))
            elif isinstance(p, c.Disconnect):
                self.state = State.CLOSED
                events.append(ServerDisconnected(p.reason_code))
            elif isinstance(p, c.UnsubAck):
                self.in_flight.discard(p.packet_id)
            else:
                raise c.RemoteProtocolError(f"a broker does not send {type(p).__name__}")
        return events
