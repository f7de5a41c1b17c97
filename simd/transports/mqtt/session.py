"""Sans-IO MQTT client session: a client's state, packet ids, in-flight exchanges and resend.

Commands (`connect`, `publish`, `send_publishes`, `ping`, `subscribe`, `disconnect`) append
bytes to `outbound`; `receive(data)` decodes what the broker sent and returns events. No
socket, no clock, no await: the trio shell (simd.transports.mqtt.connection) moves the bytes
and reads the time. Batches of PUBLISH packets are built by the vectorised encoder
(simd.transports.mqtt.encoder) with packet ids this session gave out, and queued through
`send_publishes`, which is where they become in flight: the shell never touches that state.

Every exchange in flight carries the caller's tag (an int: a publish's row key, -1 for a
SUBSCRIBE), handed back when it ends, so the caller keeps no packet-id table of its own.

A session may outlive its network connection (MQTT's Session State, MQTT-4.1.0-1): a
persistent one (clean_start = false) keeps its in-flight publishes when the connection is lost,
and at the next CONNACK re-sends them with DUP and their packet ids (PUBREL for a qos 2
exchange past PUBREC; MQTT-4.4.0-1) when the broker kept the session, or gives them up
(`Abandoned`) when it did not.

States and what may happen in each (a missing transition is a LocalProtocolError naming the
state and the allowed commands):

    IDLE        connect                  -> CONNECTING
    CONNECTING  CONNACK ok               -> CONNECTED
    CONNECTING  CONNACK refused          -> CLOSED
    CONNECTED   publish, ping, subscribe    (stays)
    CONNECTED   disconnect / DISCONNECT  -> CLOSED
    any         connection lost          -> CLOSED
    CLOSED      connect                  -> CONNECTING  (the session's next connection)
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
    State.CLOSED: frozenset({"connect"}),
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
    """A qos 1 (PUBACK) or qos 2 (PUBCOMP) publish is done; reason >= 0x80 means refused (v5).
    `tag` is the one it was sent with."""

    packet_id: int
    reason_code: int
    tag: int = -1


@dataclass(frozen=True)
class Abandoned:
    """After a CONNACK without the session: the publishes kept from the lost connection are
    gone (their tags); the broker will not ack them."""

    tags: tuple[int, ...]


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


Event = (
    Connected | Refused | Completed | Abandoned | Received | Pong | ServerDisconnected | Subscribed
)

_PID = struct.Struct(">H")
SUBSCRIBE_TAG = -1  # the tag of a SUBSCRIBE exchange (not a publish)


def topic_bytes(topic: str) -> bytes:
    """A topic name as it stands in a PUBLISH (length-prefixed UTF-8); compile once per device."""
    return c.utf8(topic)


class ClientSession:
    """One client's MQTT session (3.1.1 or 5.0), over one network connection at a time."""

    def __init__(
        self, version: int = c.V311, max_packet: int = 1 << 20, persistent: bool = False
    ) -> None:
        self.version = version
        self.max_packet = max_packet
        self.persistent = persistent  # clean_start = false: in-flight state outlives a connection
        self.state = State.IDLE
        self.outbound = bytearray()
        self.decoder = c.Decoder(version, max_packet)
        self.in_flight: dict[int, int] = {}  # packet id -> the caller's tag
        self.packets: dict[int, bytes] = {}  # persistent: each in-flight PUBLISH, to re-send
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
        """Queue CONNECT: the start of a (new) network connection of this session."""
        self._require("connect")
        self.decoder = c.Decoder(self.version, self.max_packet)  # a fresh byte stream
        self.outbound.clear()
        self.outbound += c.encode(packet, self.version)
        self.state = State.CONNECTING

    def _pid(self, tag: int) -> int:
        # MQTT-2.3.1-2: a packet id is unused while its exchange is in flight
        in_flight = self.in_flight
        if len(in_flight) >= 65535:
            raise c.LocalProtocolError("65,535 exchanges in flight: no packet id free")
        pid = self._next_pid
        while pid in in_flight:
            pid = pid % 65535 + 1
        self._next_pid = pid % 65535 + 1
        in_flight[pid] = tag
        return pid

    def room(self, window: int) -> int:
        """How many more publishes may go in flight: `window` (the caller's) and the broker's
        Receive Maximum (MQTT-4.9.0-2), less what is in flight."""
        return max(0, min(window, self.receive_maximum) - len(self.in_flight))

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
        tag: int = -1,
    ) -> int | None:
        """Queue one PUBLISH. `topic` from topic_bytes(); `properties` pre-encoded (v5, with
        its length) or b"". Returns the packet id (qos 1, 2) or None."""
        if self.state is not State.CONNECTED:
            self._require("publish")
        if self.version == c.V5 and not properties:
            properties = b"\x00"
        rest = len(topic) + len(properties) + len(payload)
        packet = bytearray()
        pid = None
        if qos:
            pid = self._pid(tag)
            packet.append(0x30 | (qos << 1) | int(retain))
            packet += c.varint(rest + 2)
            packet += topic
            packet += _PID.pack(pid)
        else:
            packet.append(0x30 | int(retain))
            packet += c.varint(rest)
            packet += topic
        packet += properties
        packet += payload
        if pid is not None and self.persistent:
            self.packets[pid] = bytes(packet)
        self.outbound += packet
        return pid

    def allocate(self, k: int) -> list[int]:
        """k packet ids for a batch of qos 1/2 publishes the encoder is about to build; they
        are in flight from here on, with their tags from `send_publishes`."""
        if self.state is not State.CONNECTED:
            self._require("publish")
        return [self._pid(SUBSCRIBE_TAG) for _ in range(k)]

    def send_publishes(
        self,
        data: bytes,
        pids: list[int] | None = None,
        tags: list[int] | None = None,
        offsets: list[int] | None = None,
    ) -> None:
        """Queue PUBLISH packets built by the batch encoder: `data` holds them back to back.
        For qos 1/2, packet i has id pids[i] (from `allocate`) and tag tags[i]; a persistent
        session keeps each, data[offsets[i]:offsets[i + 1]], to re-send (offsets are needed
        then only)."""
        if self.state is not State.CONNECTED:
            self._require("publish")
        if pids:
            assert tags is not None
            self.in_flight.update(zip(pids, tags, strict=True))
            if self.persistent:
                assert offsets is not None
                self.packets.update(
                    (pid, data[offsets[i] : offsets[i + 1]]) for i, pid in enumerate(pids)
                )
        self.outbound += data

    def ping(self) -> None:
        self._require("ping")
        self.outbound += b"\xc0\x00"

    def subscribe(self, filters: list[tuple[str, int]], properties: c.Properties = ()) -> int:
        self._require("subscribe")
        pid = self._pid(SUBSCRIBE_TAG)
        self.outbound += c.encode(c.Subscribe(pid, tuple(filters), properties), self.version)
        return pid

    def disconnect(self, properties: c.Properties = ()) -> None:
        self._require("disconnect")
        self.outbound += c.encode(c.Disconnect(0, properties), self.version)
        self.state = State.CLOSED

    def _resume(self, present: bool) -> list[Event]:
        """At CONNACK, with publishes kept from a lost connection: re-send them (the broker
        kept the session) or give them up (it did not)."""
        if not present:
            tags = self._forget()
            return [Abandoned(tuple(tags))] if tags else []
        for pid, tag in self.in_flight.items():
            if pid in self.released:
                self.outbound += c.encode(c.PubRel(pid), self.version)
            elif tag != SUBSCRIBE_TAG and pid in self.packets:
                packet = self.packets[pid]
                self.outbound.append(packet[0] | 0x08)  # DUP (MQTT-3.3.1-1)
                self.outbound += packet[1:]
        # a SUBSCRIBE of the lost connection is not re-sent: its caller subscribes again
        for pid in [p for p, t in self.in_flight.items() if t == SUBSCRIBE_TAG]:
            del self.in_flight[pid]
        return []

    def _forget(self) -> list[int]:
        tags = [t for t in self.in_flight.values() if t != SUBSCRIBE_TAG]
        self.in_flight = {}
        self.packets.clear()
        self.released.clear()
        return tags

    def lost(self) -> list[int]:
        """The connection is gone: CLOSED. A clean session forgets what was in flight and
        returns its tags; a persistent one keeps it for the next connection (returns [])."""
        self.state = State.CLOSED
        if self.persistent:
            return []
        return self._forget()

    def abandon(self) -> list[int]:
        """Give up every publish in flight (the run ended): their tags."""
        return self._forget()

    def expire(self, pid: int, tag: int) -> bool:
        """Give up one exchange (no ack in time) if `pid` still carries `tag`."""
        if self.in_flight.get(pid) != tag:
            return False
        del self.in_flight[pid]
        self.packets.pop(pid, None)
        self.released.discard(pid)
        return True

    def take_outbound(self) -> bytes:
        out = bytes(self.outbound)
        self.outbound.clear()
        return out

    def _done(self, pid: int) -> int | None:
        tag = self.in_flight.pop(pid, None)
        if tag is not None:
            self.released.discard(pid)
            if self.packets:
                self.packets.pop(pid, None)
        return tag

    def receive_acks(self, data: bytes) -> tuple[list[int], list[Event]]:
        """`receive`, with the common case fast: plain PUBACK / PUBCOMP / PUBREC packets (4
        bytes, reason 0) are read straight off the bytes. Returns (the tags of the completed
        publishes, other events)."""
        done: list[int] = []
        i = 0
        n = len(data)
        if not self.decoder.buffered:
            in_flight, released, packets = self.in_flight, self.released, self.packets
            while i + 4 <= n and data[i + 1] == 2:
                head = data[i]
                if head not in (0x40, 0x70, 0x50):
                    break
                pid = (data[i + 2] << 8) | data[i + 3]
                i += 4
                if head == 0x50:  # PUBREC: answer PUBREL (MQTT-4.3.3)
                    self.outbound += b"\x62\x02" + data[i - 2 : i]
                    released.add(pid)
                    continue
                tag = in_flight.pop(pid, None)  # (inline _done: the hot path, one per ack)
                if tag is not None:
                    done.append(tag)
                    if released:
                        released.discard(pid)
                    if packets:
                        packets.pop(pid, None)
        events = self.receive(data[i:]) if i < n else []
        return done, events

    def receive(self, data: bytes) -> list[Event]:
        """Decode the broker's bytes; queue the acks MQTT requires; return what happened."""
        events: list[Event] = []
        for p in self.decoder.feed(data):
            if isinstance(p, c.PubAck | c.PubComp):
                tag = self._done(p.packet_id)
                if tag is not None:
                    events.append(Completed(p.packet_id, p.reason_code, tag))
            elif isinstance(p, c.PubRec):
                if p.reason_code >= 0x80:  # v5: refused at PUBREC, the exchange ends here
                    tag = self._done(p.packet_id)
                    if tag is not None:
                        events.append(Completed(p.packet_id, p.reason_code, tag))
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
                events += self._connack(p)
            elif isinstance(p, c.PingResp):
                events.append(Pong())
            elif isinstance(p, c.SubAck):
                self.in_flight.pop(p.packet_id, None)
                events.append(Subscribed(p.packet_id, p.reason_codes))
            elif isinstance(p, c.Disconnect):
                self.state = State.CLOSED
                events.append(ServerDisconnected(p.reason_code))
            elif isinstance(p, c.UnsubAck):
                self.in_flight.pop(p.packet_id, None)
            else:
                raise c.RemoteProtocolError(f"a broker does not send {type(p).__name__}")
        return events

    def _connack(self, p: c.ConnAck) -> list[Event]:
        if self.state is not State.CONNECTING:
            raise c.RemoteProtocolError("CONNACK outside a connect (MQTT-3.2.0-1)")
        if p.reason_code:
            self.state = State.CLOSED
            return [Refused(p.reason_code)]
        self.state = State.CONNECTED
        self.receive_maximum = c.prop(p.properties, "receive_maximum", 65535)
        events: list[Event] = [Connected(p.session_present, p.properties)]
        if self.in_flight:
            events += self._resume(p.session_present)
        return events
