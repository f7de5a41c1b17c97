"""Recordings: captured messages, framed like the event log (simd.log.eventlog).

A recording is `MAGIC` then frames (simd.log.framing: `SYNC | length | crc32 | msgpack body`;
version 1 recordings, whose frames have no SYNC, are still read). The first frame is the header:
`{"format": "simd-recording", "version": 2, "t0_epoch_ns": wall clock at t=0, "source": where it
came from (a URL without credentials, or an imported file), "filters": [...], "mqtt_version": "5" |
"3.1.1" | null}`. Every later frame is a batch of messages, column by column: `{"n": k, "t": int64
LE ns since t=0 (receive time), "topic": [str], "payload": [bytes], "qos": u8 array, "retain": u8
array}` with two optional keys, `"props"` (MQTT 5 properties: `{row: [[name, value], ...]}`, only
rows that have any) and `"client"` (a sender id per row, when the capture knew it). A frame `{"n":
0, "gap": [lost_ns, back_ns, reason]}` marks a time the recorder was disconnected. A clean close
appends `{"n": 0, "end_ns": ns}`: how long the recording ran, which is the period of a looped
replay.

The same rules as the event log: bytes that are not frames at the end are a torn tail (a recording
cut at any byte offset still gives its complete prefix of frames); bytes that are not frames with
valid frames after them are damage: reported with the span of recorded time they may have held,
and every frame after them read. The writer emits a frame at least every `flush` call (the recorder
calls it every 100 ms), which bounds what a crash can lose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simd.errors import UserError
from simd.log.capture import read_jsonl
from simd.log.framing import Damage, TornTail, encode_frame, is_marked, scan_frames
from simd.log.ragged import Ragged
from simd.model.secrets import strip_credentials

MAGIC = b"SIMDREC\n"
FORMAT = "simd-recording"
VERSION = 2
READ_VERSIONS = (1, 2)
FRAME_MESSAGES = 4096  # messages per frame at most (a frame is what a cut can lose)


@dataclass(frozen=True)
class DamagedSpan:
    """Unreadable bytes inside a recording and the recorded time they may have held: between
    the last message before them and the first after (ns since the recording's t=0)."""

    damage: Damage
    after_ns: int  # the last message read before the damage (0: none)
    before_ns: int | None  # the first message read after it (None: none)

    def describe(self) -> str:
        until = "its end" if self.before_ns is None else f"{self.before_ns / 1e9:.3f} s"
        return (
            f"damaged {self.damage.describe()}: messages recorded between "
            f"{self.after_ns / 1e9:.3f} s and {until} may be missing"
        )


@dataclass
class Recording:
    """Every message a recording holds, in receive order, column by column."""

    header: dict[str, Any]
    t_ns: np.ndarray  # int64 ns since the recording's t=0
    topic: list[str]
    payload: Ragged
    qos: np.ndarray  # uint8
    retain: np.ndarray  # bool
    properties: dict[int, list[Any]] = field(default_factory=dict)  # row -> MQTT 5 properties
    client: list[str | None] | None = None
    end_ns: int | None = None  # set by a clean close
    gaps: list[tuple[int, int, str]] = field(default_factory=list)  # recorder disconnected
    frames: int = 0
    torn: TornTail | None = None
    damaged: list[DamagedSpan] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.t_ns)

    @property
    def duration_ns(self) -> int:
        """How long it ran: from a clean close, else up to its last message."""
        if self.end_ns is not None:
            return self.end_ns
        return int(self.t_ns[-1]) if len(self) else 0


class RecordingWriter:
    """Appends messages to a new recording; `flush` writes what is pending as one frame."""

    def __init__(
        self,
        path: str | Path,
        *,
        t0_epoch_ns: int,
        source: str,
        filters: list[str] | None = None,
        mqtt_version: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "wb")  # noqa: SIM115 - lives as long as the writer
        header = {
            "format": FORMAT,
            "version": VERSION,
            "t0_epoch_ns": t0_epoch_ns,
            "source": strip_credentials(source),
            "filters": list(filters or []),
            "mqtt_version": mqtt_version,
        }
        self._f.write(MAGIC + encode_frame(header))
        self._f.flush()
        self.messages = 0
        self.bytes = 0
        self._clear()

    def _clear(self) -> None:
        self._t: list[int] = []
        self._topic: list[str] = []
        self._payload: list[bytes] = []
        self._qos: list[int] = []
        self._retain: list[int] = []
        self._props: dict[int, list[Any]] = {}
        self._client: list[str | None] = []

    def add(
        self,
        t_ns: int,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        properties: tuple[tuple[str, Any], ...] | list[Any] = (),
        client: str | None = None,
    ) -> None:
        if properties:
            self._props[len(self._t)] = [
                [k, list(v) if isinstance(v, tuple) else v] for k, v in properties
            ]
        self._t.append(t_ns)
        self._topic.append(topic)
        self._payload.append(payload)
        self._qos.append(qos)
        self._retain.append(int(retain))
        self._client.append(client)
        self.messages += 1
        self.bytes += len(payload)
        if len(self._t) >= FRAME_MESSAGES:
            self.flush()

    def flush(self) -> None:
        """Write the pending messages as one frame (nothing when none are pending)."""
        n = len(self._t)
        if n:
            body: dict[str, Any] = {
                "n": n,
                "t": np.asarray(self._t, dtype="<i8").tobytes(),
                "topic": self._topic,
                "payload": self._payload,
                "qos": np.asarray(self._qos, dtype=np.uint8).tobytes(),
                "retain": np.asarray(self._retain, dtype=np.uint8).tobytes(),
            }
            if self._props:
                body["props"] = self._props
            if any(c is not None for c in self._client):
                body["client"] = self._client
            self._f.write(encode_frame(body))
            self._clear()
        self._f.flush()

    def gap(self, lost_ns: int, back_ns: int, reason: str) -> None:
        """Mark a time the recorder was not connected (messages then may be missing)."""
        self.flush()
        self._f.write(encode_frame({"n": 0, "gap": [int(lost_ns), int(back_ns), reason]}))
        self._f.flush()

    def close(self, end_ns: int) -> None:
        """Flush, mark the clean end (the recording's length) and close the file."""
        if self._f.closed:
            return
        self.flush()
        self._f.write(encode_frame({"n": 0, "end_ns": int(end_ns)}))
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()


def write_recording(rec: Recording, path: str | Path) -> Path:
    """Write a whole in-memory recording (an import) as a recording file."""
    h = rec.header
    w = RecordingWriter(
        path,
        t0_epoch_ns=int(h.get("t0_epoch_ns") or 0),
        source=str(h.get("source") or ""),
        filters=list(h.get("filters") or []),
        mqtt_version=h.get("mqtt_version"),
    )
    payloads = rec.payload.to_list()
    for i in range(len(rec)):
        w.add(
            int(rec.t_ns[i]),
            rec.topic[i],
            payloads[i],
            int(rec.qos[i]),
            bool(rec.retain[i]),
            rec.properties.get(i, ()),
            rec.client[i] if rec.client is not None else None,
        )
    w.close(rec.duration_ns)
    return w.path


def import_jsonl(path: str | Path) -> Recording:
    """Read a JSON-lines capture (simd.log.capture) as a recording; a bad line is a UserError
    naming file:line."""
    return Recording(**read_jsonl(path)._asdict())


def read_recording(path: str | Path) -> Recording:
    """Read a recording (or import a JSON-lines capture, by its .jsonl suffix). A torn tail is
    not an error: the recording is its complete frames, and `torn` says where it stops."""
    p = Path(path)
    if p.suffix in (".jsonl", ".ndjson"):
        return import_jsonl(p)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{p}: recording not found") from None
    except IsADirectoryError:
        raise UserError(f"{p}: is a folder, not a recording") from None
    except OSError as exc:
        raise UserError(f"{p}: cannot read: {exc.strerror}") from None
    return parse_recording(data, str(p))


def parse_recording(data: bytes, name: str = "<recording>") -> Recording:
    """A recording from its bytes (see the module docstring for the layout)."""
    head = data[: len(MAGIC)]
    if head != MAGIC:
        if len(data) < len(MAGIC) and MAGIC.startswith(head):
            raise UserError(f"{name}: recording too short to hold its header (cut at creation)")
        raise UserError(f"{name}: not a simd recording (bad magic)")
    marked = is_marked(data, len(MAGIC))
    frames = scan_frames(data, len(MAGIC), marked=marked)
    header = _header(next(frames, None), marked, name)
    cols = _Columns()
    torn = None
    pending: Damage | None = None  # damage seen, not yet placed between two messages
    for item in frames:
        if isinstance(item, TornTail):
            torn = item
            break
        if isinstance(item, Damage):
            pending = item
            continue
        body = item[2]
        if pending is not None and (int(body.get("n", 0)) or "end_ns" in body):
            before = int(np.frombuffer(body["t"], "<i8", 1)[0]) if body.get("n") else None
            cols.damaged.append(DamagedSpan(pending, cols.last_t(), before))
            pending = None
        cols.add(body)
    if pending is not None:  # only gap frames (or nothing) after it
        cols.damaged.append(DamagedSpan(pending, cols.last_t(), None))
    return cols.recording(header, torn)


def _header(first: Any, marked: bool, name: str) -> dict[str, Any]:
    """The recording's header frame, or a UserError saying why it is not one."""
    if first is None or isinstance(first, TornTail):
        raise UserError(f"{name}: recording too short to hold its header (cut at creation)")
    if isinstance(first, Damage):
        raise UserError(f"{name}: recording header damaged ({first.reason})")
    header = first[2]
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise UserError(f"{name}: first frame is not a recording header")
    if header.get("version") not in READ_VERSIONS or (header["version"] >= 2) != marked:
        raise UserError(
            f"{name}: recording format version {header.get('version')} "
            f"(this simd reads {', '.join(map(str, READ_VERSIONS))})"
        )
    return header


class _Columns:
    """A recording's columns, gathered frame by frame."""

    def __init__(self) -> None:
        self.t: list[np.ndarray] = []
        self.topics: list[str] = []
        self.payloads: list[bytes] = []
        self.qos: list[np.ndarray] = []
        self.retain: list[np.ndarray] = []
        self.props: dict[int, list[Any]] = {}
        self.clients: list[str | None] = []
        self.any_client = False
        self.end_ns: int | None = None
        self.gaps: list[tuple[int, int, str]] = []
        self.damaged: list[DamagedSpan] = []
        self.count = 0
        self.frames = 0

    def last_t(self) -> int:
        return int(self.t[-1][-1]) if self.t else 0

    def add(self, body: dict[str, Any]) -> None:
        self.frames += 1
        n = int(body.get("n", 0))
        if "end_ns" in body:
            self.end_ns = int(body["end_ns"])
        if "gap" in body:
            lost, back, why = body["gap"]
            self.gaps.append((int(lost), int(back), str(why)))
        if not n:
            return
        self.t.append(np.frombuffer(body["t"], dtype="<i8", count=n))
        self.topics += body["topic"]
        self.payloads += body["payload"]
        self.qos.append(np.frombuffer(body["qos"], dtype=np.uint8, count=n))
        self.retain.append(np.frombuffer(body["retain"], dtype=np.uint8, count=n).astype(bool))
        for row, values in (body.get("props") or {}).items():
            self.props[self.count + int(row)] = values
        if "client" in body:
            self.any_client = True
            self.clients += body["client"]
        else:
            self.clients += [None] * n
        self.count += n

    def recording(self, header: dict[str, Any], torn: TornTail | None) -> Recording:
        def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        return Recording(
            header=header,
            t_ns=cat(self.t, np.int64),
            topic=self.topics,
            payload=Ragged.from_list(self.payloads),
            qos=cat(self.qos, np.uint8),
            retain=cat(self.retain, bool),
            properties=self.props,
            client=self.clients if self.any_client else None,
            end_ns=self.end_ns,
            gaps=self.gaps,
            frames=self.frames,
            torn=torn,
            damaged=self.damaged,
        )
