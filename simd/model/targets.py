"""Which targets a scenario may name: the built-in schemes, plugin targets and the schemes that
installed packages register. Naming only: what serves a target lives in simd.transports."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from simd.errors import UserError
from simd.model.secrets import redact_text

SCHEMES = {  # scheme -> the transport that serves it
    "null": "null",
    "sim": "sim",
    "mqtt": "mqtt",
    "mqtts": "mqtt",
    "ws": "mqtt",
    "wss": "mqtt",
    "embedded": "embedded",
    "http": "http",
    "https": "http",
}
PLUGIN_PREFIX = "plugin:"
ENTRY_POINT_GROUP = "simd.transports"


@cache
def registered() -> dict[str, str]:
    """Schemes that installed packages register (entry point group simd.transports):
    scheme -> "module:Class"."""
    return {ep.name.lower(): ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def is_plugin(url: str) -> bool:
    return url.startswith(PLUGIN_PREFIX) or url.split(":", 1)[0].lower() in registered()


def class_spec(url: str) -> tuple[str, str]:
    """(the "module:Class" a plugin target names, the rest of the target the plugin sees)."""
    if url.startswith(PLUGIN_PREFIX):
        spec, q, query = url[len(PLUGIN_PREFIX) :].partition("?")
        module, sep, name = spec.partition(":")
        if not (module and sep and name) or ":" in name or "/" in spec:
            shown = redact_text(url)
            raise UserError(f"target {shown!r}: give it as plugin:package.module:Class?key=value")
        return spec, q + query
    return registered()[url.split(":", 1)[0].lower()], url


def scheme_of(url: str) -> str:
    """The transport a target URL names (`sim:` -> sim, `plugin:m:C` and schemes registered
    by entry points -> plugin); UserError for one simd does not speak."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else url.lower()
    if is_plugin(url):
        class_spec(url)  # a malformed plugin target is refused here, before anything runs
        return "plugin"
    if scheme not in SCHEMES:
        known = ", ".join(f"{s}:" for s in [*SCHEMES, *registered()])
        raise UserError(
            f"target {url!r}: unsupported scheme {scheme!r} (this simd speaks {known} and "
            "plugin:package.module:Class)"
        )
    return SCHEMES[scheme]


def does_real_io(url: str) -> bool:
    """Whether the target is outside the process (so no virtual clock)."""
    return scheme_of(url) not in ("null", "sim")
