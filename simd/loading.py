"""User code named in a scenario (`module:Name`): found on the path or in the scenario's folder.

Transport and payload plugins alike are imported through here, so a module that sits next to
its scenario file is found without PYTHONPATH.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from simd.errors import UserError


def load_object(spec: str, *, what: str, folder: Path | None = None) -> Any:
    """The object `spec` ("package.module:Name") names; `folder` (the scenario's) is searched
    first. UserError naming `what` and the reason when it cannot be loaded."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name or ":" in name:
        raise UserError(f"{what} {spec!r}: give it as package.module:Name")
    if folder is not None:
        here = str(Path(folder).resolve())
        if here not in sys.path:
            sys.path.insert(0, here)
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as exc:
        raise UserError(f"{what} {spec!r} cannot be loaded: {exc}") from None
    except Exception as exc:  # the user's module itself failed while importing
        raise UserError(
            f"{what} {spec!r}: importing {module} failed: {type(exc).__name__}: {exc}"
        ) from None
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UserError(f"{what} {spec!r}: {module} has no {name}") from None
    return obj
