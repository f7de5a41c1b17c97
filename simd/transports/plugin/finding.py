"""Which class a plugin target names, and the options it carries."""

from __future__ import annotations

import inspect
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from simd.errors import UserError
from simd.loading import load_object
from simd.model.secrets import redact_text

PREFIX = "plugin:"
ENTRY_POINT_GROUP = "simd.transports"
_METHODS = ("connect", "publish", "close")


@cache
def registered() -> dict[str, str]:
    """Schemes that installed packages register (entry point group simd.transports):
    scheme -> "module:Class"."""
    return {ep.name.lower(): ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def is_plugin(url: str) -> bool:
    return url.startswith(PREFIX) or url.split(":", 1)[0].lower() in registered()


def class_spec(url: str) -> tuple[str, str]:
    """(the "module:Class" a plugin target names, the rest of the target the plugin sees)."""
    if url.startswith(PREFIX):
        spec, q, query = url[len(PREFIX) :].partition("?")
        module, sep, name = spec.partition(":")
        if not (module and sep and name) or ":" in name or "/" in spec:
            shown = redact_text(url)
            raise UserError(f"target {shown!r}: give it as plugin:package.module:Class?key=value")
        return spec, q + query
    return registered()[url.split(":", 1)[0].lower()], url


def url_options(rest: str) -> dict[str, str]:
    """The query parameters of what a plugin target carries after its class."""
    query = rest[1:] if rest.startswith("?") else urlsplit(rest).query
    try:
        return dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise UserError(f"target {redact_text(rest)!r}: options are key=value&key=value") from None


def load_client(url: str, folder: Path | None) -> Any:
    """The client class of a plugin target, checked for the methods simd calls."""
    spec, _ = class_spec(url)
    cls = load_object(spec, what="transport plugin", folder=folder)
    if not inspect.isclass(cls):
        raise UserError(f"transport plugin {spec!r} is not a class")
    for name in _METHODS:
        if not inspect.iscoroutinefunction(getattr(cls, name, None)):
            raise UserError(f"transport plugin {spec!r}: {name} must be an async method")
    return cls
