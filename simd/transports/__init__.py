"""Transports: how a worker's publishes reach a target. One small Protocol, one module each.

`open_transport(url, ...)` picks the implementation from the target URL's scheme.

May import: simd.model, simd.plan, simd.log and the ground floor; never simd.runtime,
simd.results or anything above.
"""

from __future__ import annotations

from simd.errors import UserError
from simd.transports._base import DeviceSet, PublishBatch, Transport, TransportContext

__all__ = [
    "DeviceSet",
    "PublishBatch",
    "Transport",
    "TransportContext",
    "open_transport",
    "scheme_of",
]

_SCHEMES = {
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


def scheme_of(url: str) -> str:
    """The transport a target URL names (`sim:` -> sim); UserError for one simd does not speak."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else url.lower()
    if scheme not in _SCHEMES:
        known = ", ".join(f"{s}:" for s in _SCHEMES)
        raise UserError(f"target {url!r}: unsupported scheme {scheme!r} (this simd speaks {known})")
    return _SCHEMES[scheme]


def open_transport(url: str, ctx: TransportContext) -> Transport:
    """Construct the transport for `url` (nothing is connected until `connect`)."""
    scheme = scheme_of(url)
    if scheme == "embedded":
        raise UserError("target embedded must be resolved to the broker's URL before workers start")
    if scheme == "mqtt":
        from simd.transports.mqtt.transport import MqttTransport

        return MqttTransport(ctx, url)
    if scheme == "http":
        from simd.transports.http.transport import HttpTransport

        return HttpTransport(ctx, url)
    if scheme == "null":
        from simd.transports.null import NullTransport

        return NullTransport(ctx)
    from simd.transports.sim import SimTransport

    return SimTransport(ctx)


def does_real_io(url: str) -> bool:
    """Whether the transport talks to something outside the process (so no virtual clock)."""
    return scheme_of(url) not in ("null", "sim")
