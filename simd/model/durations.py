"""Durations as people write them (`500ms`, `30s`, `10m`, `2h`, `1h30m`) <-> integer nanoseconds."""

from __future__ import annotations

import re

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)")


def parse_duration_ns(text: str) -> int:
    """Parse `500ms`, `30s`, `1h30m` into nanoseconds; raise ValueError with the accepted form."""
    s = text.strip().replace(" ", "")
    if not s:
        raise ValueError("empty duration; write it like 500ms, 30s, 10m or 2h")
    pos = 0
    total = 0.0
    for match in _PART.finditer(s):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS_NS[match.group(2)]
        pos = match.end()
    if pos != len(s):
        raise ValueError(f"not a duration: {text!r}; write it like 500ms, 30s, 10m or 2h")
    return round(total)


def format_duration_ns(ns: int) -> str:
    """The shortest exact spelling of a duration: 7_200 s -> `2h`, 1.5 s -> `1500ms`."""
    if ns == 0:
        return "0s"
    for unit in ("d", "h", "m", "s", "ms", "us", "ns"):
        size = _UNITS_NS[unit]
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"
