"""A scenario's data written as TOML (what `--print-scenario` prints; `tomllib` reads it back
to the same data). Tables, arrays of tables, strings, numbers, booleans and arrays of those:
what a scenario holds, no dates."""

from __future__ import annotations

import json
import math
import re
from typing import Any

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def dumps(data: dict[str, Any]) -> str:
    """TOML text for `data` (a dict of str keys)."""
    lines: list[str] = []
    _table(data, [], lines)
    return "\n".join(lines).strip("\n") + "\n"


def _key(k: str) -> str:
    return k if _BARE.fullmatch(k) else _string(k)


def _string(v: str) -> str:
    # a JSON string is a TOML basic string, but for DEL, which TOML wants escaped too
    return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")


def _is_table_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _table(data: dict[str, Any], path: list[str], lines: list[str]) -> None:
    nested = {k: v for k, v in data.items() if (isinstance(v, dict) and v) or _is_table_list(v)}
    for k, v in data.items():
        if k not in nested and v is not None:
            lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in nested.items():
        sub = [*path, _key(k)]
        if isinstance(v, dict):
            lines += ["", f"[{'.'.join(sub)}]"]
            _table(v, sub, lines)
        else:
            for entry in v:
                lines += ["", f"[[{'.'.join(sub)}]]"]
                _table(entry, sub, lines)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise ValueError(f"{v!r} has no place in a scenario")
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")
