"""Transports: how a worker's publishes reach a target. One small Protocol, one module each.

`open_transport(url, ...)` picks the implementation from the target URL's scheme.

May import: simd.model, simd.plan, simd.log and the ground floor; never simd.runtime,
simd.results or anything above.
"""

from __future__ import annotations

import os
from pathlib import Path

from simd.errors import UserError
from simd.model.scenario import ENV_REF, Scenario
from simd.model.secrets import redact_text
from simd.model.targets import does_real_io, scheme_of
from simd.transports._base import (
    DeviceSet,
    PublishBatch,
    SelfPacing,
    Transport,
    TransportContext,
)

__all__ = [
    "DeviceSet",
    "PublishBatch",
    "SelfPacing",
    "Transport",
    "TransportContext",
    "check_target",
    "does_real_io",
    "open_transport",
    "scheme_of",
]


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
    if scheme == "plugin":
        from simd.transports.plugin.adapter import PluginTransport

        return PluginTransport(ctx, url)
    if scheme == "null":
        from simd.transports.null import NullTransport

        return NullTransport(ctx)
    from simd.transports.sim import SimTransport

    return SimTransport(ctx)


def check_target(scenario: Scenario, url: str, folder: Path) -> None:
    """What a target needs that validating the scenario alone cannot see, checked before any
    worker starts: a plugin that loads, HTTP-only features on an HTTP target, the
    environment variables HTTP headers name."""
    scheme = scheme_of(url)
    if scheme == "plugin":
        from simd.model.targets import class_spec
        from simd.transports.plugin.finding import check_constructs, load_client

        check_constructs(load_client(url, folder), class_spec(url)[0], url, scenario)
    if scheme != "http":
        for gi, g in enumerate(scenario.fleet):
            if g.closed or g.requests or g.journey:
                raise UserError(
                    f"fleet[{gi}] ({g.name}): requests, journey and the closed model need an "
                    f"http:// or https:// target, not {redact_text(url)!r}"
                )
        return
    missing = [
        f"fleet[{gi}] ({g.name}): header {k}: environment variable {name} is not set"
        for gi, g in enumerate(scenario.fleet)
        for r in [g.http, *g.requests, *g.journey]
        for k, v in r.headers.items()
        for name in ENV_REF.findall(v)
        if name not in os.environ
    ]
    if missing:
        raise UserError(missing[0])
