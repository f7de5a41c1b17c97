"""JSON-lines captures made by other tools, read as the columns of a recording (simd.log.recording).

One message per line, a JSON object:

    {"timestamp": 1795425600.125, "topic": "devices/d1/telemetry", "payload": "{\\"t\\": 21.5}"}
    {"timestamp": "2026-11-23T10:00:00.250Z", "topic": "devices/d2/telemetry",
     "payload_base64": "AAECAw==", "qos": 1, "retain": false, "client_id": "d2"}

`timestamp` is epoch seconds (a number, read exactly: 1795425600.125 is 125 ms, not a float
near it) or an ISO 8601 text with a time zone; `payload` is UTF-8 text, `payload_base64` raw
bytes (give one of them); `qos`, `retain` and `client_id` are optional. Blank lines are skipped.
Lines need not be in time order: messages are sorted by timestamp (ties keep file order), and the
first one is the recording's t=0.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from simd.errors import UserError
from simd.log.ragged import Ragged

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KNOWN_KEYS = {"timestamp", "topic", "payload", "payload_base64", "qos", "retain", "client_id"}


def _timestamp_ns(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("timestamp: a number of epoch seconds or an ISO 8601 text")
    if isinstance(value, int | Decimal):
        return int(Decimal(value) * 1_000_000_000)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"timestamp {value!r} is not ISO 8601") from None
        if when.tzinfo is None:
            raise ValueError(f"timestamp {value!r} has no time zone (add Z or +00:00)")
        d = when - _EPOCH  # exact, unlike datetime.timestamp()
        return (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1000
    raise ValueError("timestamp: a number of epoch seconds or an ISO 8601 text")


def _message(obj: Any) -> tuple[int, str, bytes, int, bool, str | None]:
    if not isinstance(obj, dict):
        raise ValueError("each line must be a JSON object")
    unknown = sorted(set(obj) - KNOWN_KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(KNOWN_KEYS))})")
    for key in ("timestamp", "topic"):
        if key not in obj:
            raise ValueError(f"missing {key!r}")
    topic = obj["topic"]
    if not isinstance(topic, str) or not topic or "+" in topic or "#" in topic:
        raise ValueError("topic: a non-empty topic name without wildcards")
    if ("payload" in obj) == ("payload_base64" in obj):
        raise ValueError("give one of 'payload' (text) or 'payload_base64'")
    if "payload" in obj:
        if not isinstance(obj["payload"], str):
            raise ValueError("payload: a JSON string (use payload_base64 for raw bytes)")
        payload = obj["payload"].encode("utf-8", "surrogatepass")
    else:
        try:
            payload = base64.b64decode(obj["payload_base64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise ValueError("payload_base64 is not base64") from None
    qos = obj.get("qos", 0)
    if qos not in (0, 1, 2) or isinstance(qos, bool):
        raise ValueError("qos: 0, 1 or 2")
    retain = obj.get("retain", False)
    if not isinstance(retain, bool):
        raise ValueError("retain: true or false")
    client = obj.get("client_id")
    if client is not None and not isinstance(client, str):
        raise ValueError("client_id: a string")
    return _timestamp_ns(obj["timestamp"]), topic, payload, int(qos), retain, client


class Captured(NamedTuple):
    """A capture's messages, column by column, in time order (simd.log.recording makes them
    a Recording)."""

    header: dict[str, Any]
    t_ns: np.ndarray  # int64 ns since the first message
    topic: list[str]
    payload: Ragged
    qos: np.ndarray  # uint8
    retain: np.ndarray  # bool
    client: list[str | None] | None


def read_jsonl(path: str | Path) -> Captured:
    """Read a JSON-lines capture; a bad line is a UserError naming file:line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{p}: capture not found") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"{p}: cannot read: {exc.strerror}") from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_float=Decimal)
            rows.append(_message(obj))
        except json.JSONDecodeError as exc:
            raise UserError(f"{p}:{lineno}: not JSON ({exc.msg})") from None
        except (ValueError, InvalidOperation) as exc:
            raise UserError(f"{p}:{lineno}: {exc}") from None
    if not rows:
        raise UserError(f"{p}: no messages in the capture")
    order = sorted(range(len(rows)), key=lambda i: rows[i][0])
    rows = [rows[i] for i in order]
    t0 = rows[0][0]
    clients = [r[5] for r in rows]
    return Captured(
        header={
            "format": "simd-recording",
            "version": 1,
            "t0_epoch_ns": t0,
            "source": f"file:{p.name}",
            "filters": [],
            "mqtt_version": None,
        },
        t_ns=np.array([r[0] - t0 for r in rows], dtype=np.int64),
        topic=[r[1] for r in rows],
        payload=Ragged.from_list([r[2] for r in rows]),
        qos=np.array([r[3] for r in rows], dtype=np.uint8),
        retain=np.array([r[4] for r in rows], dtype=bool),
        client=clients if any(c is not None for c in clients) else None,
    )
