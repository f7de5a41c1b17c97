"""`--set KEY=VALUE`: edit one key of a scenario's data before it is validated.

KEY is a dotted path; a [[fleet]], [[phase]] or [[probe]] entry is named by its `name` (or
its index): `fleet.sensors.rate=5`, `phase.0.duration=30s`, `slo.latency_p99=50ms`,
`fleet.sensors.mqtt.version=5`. VALUE is read as a TOML value when it is one (`5`, `0.5`,
`true`, `[1, 2]`, `"quoted"`), else taken as a string (`5s`, `mqtt://host:1883`), so a
duration needs no quotes. A key that does not exist yet is added (the validator then says
whether the scenario takes it); an entry name that matches nothing is an error naming it.
"""

from __future__ import annotations

import tomllib
from typing import Any

from simd.errors import UserError

NAMED_LISTS = ("fleet", "phase", "probe")


def parse_value(text: str) -> Any:
    """A TOML value if `text` is one, else the text itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_sets(data: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """`data` with every `KEY=VALUE` of `sets` applied in order (a copy; `data` is kept)."""
    out = _copy(data)
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected KEY=VALUE (e.g. fleet.sensors.rate=5)")
        _set(out, key.strip(), parse_value(value.strip()), item)
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _set(data: dict[str, Any], key: str, value: Any, item: str) -> None:
    parts = key.split(".")
    node: Any = data
    where: list[str] = []
    for i, part in enumerate(parts[:-1]):
        where.append(part)
        if isinstance(node, list):
            node = _entry(node, part, ".".join(where[:-1]), item)
            continue
        if not isinstance(node, dict):
            raise UserError(f"--set {item!r}: {'.'.join(where[:-1])} is not a table")
        if part not in node:
            node[part] = [] if i == 0 and part in NAMED_LISTS else {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        raise UserError(
            f"--set {item!r}: {'.'.join(where)} is a list; name an entry "
            f"({'.'.join(where)}.NAME.{last} or {'.'.join(where)}.0.{last})"
        )
    if not isinstance(node, dict):
        raise UserError(f"--set {item!r}: {'.'.join(where)} is not a table")
    node[last] = value


def _entry(entries: list[Any], part: str, where: str, item: str) -> Any:
    """The entry of a [[list]] named `part` (its `name`, else its index)."""
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == part:
            return entry
    if part.isdigit() and int(part) < len(entries):
        return entries[int(part)]
    names = ", ".join(str(e.get("name")) for e in entries if isinstance(e, dict)) or "none"
    raise UserError(f"--set {item!r}: no {where} entry named {part!r} (there are: {names})")
