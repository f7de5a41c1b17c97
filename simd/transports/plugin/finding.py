"""Which class a plugin target names, and the options it carries."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from simd.errors import UserError
from simd.loading import load_object
from simd.model.scenario import Scenario
from simd.model.secrets import redact_text
from simd.model.targets import class_spec
from simd.plan.schedule import device_ids
from simd.transports.plugin.api import Device, Target

_METHODS = ("connect", "publish", "close")


def url_options(rest: str) -> dict[str, str]:
    """The query parameters of what a plugin target carries after its class."""
    query = rest[1:] if rest.startswith("?") else urlsplit(rest).query
    try:
        return dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise UserError(f"target {redact_text(rest)!r}: options are key=value&key=value") from None


def targets_for(url: str, scenario: Scenario) -> list[Target]:
    """The Target each group's devices get: the URL's options, then the group's
    `[fleet.plugin.options]` (which win)."""
    _, rest = class_spec(url)
    base = url_options(rest)
    return [
        Target(rest, {**base, **{k: _text(v) for k, v in g.plugin.options.items()}})
        for g in scenario.fleet
    ]


def check_constructs(cls: Any, spec: str, url: str, scenario: Scenario) -> None:
    """Construct one client per group (construction does no I/O by contract), so a plugin
    that cannot even be built is one error before any worker starts."""
    groups = zip(scenario.fleet, scenario.group_offsets(), targets_for(url, scenario), strict=True)
    for g, offset, target in groups:
        first = device_ids(g, range(1))[0]
        construct(cls, spec, target, Device(id=first, index=0, group=g.name, number=offset))


def construct(cls: Any, spec: str, target: Target, device: Device) -> Any:
    """One client; UserError naming the plugin when its constructor raises."""
    try:
        return cls(target, device)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(
            f"transport plugin {spec!r}: constructing a client failed: "
            f"{type(exc).__name__}: {redact_text(str(exc))}"
        ) from None


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


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
