"""runs/<id>/run.json: what a run was (scenario, seed, t=0, clock, workers) and how it ended.

Written atomically (temp file + rename) at every state change. Secrets are redacted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

MANIFEST = "run.json"
# keys whose values are secrets (not `password_env` or `token_file`: those name where a
# secret lives, which a reader of the manifest needs)
_SECRET_KEY = re.compile(
    r"^(password|passwd|secret|token|access_token|api[_-]?key|credentials?)$", re.IGNORECASE
)
REDACTED = "***"


def redact(obj: Any) -> Any:
    """A copy with every value under a secret-looking key replaced by ***."""
    if isinstance(obj, dict):
        return {
            k: (REDACTED if _SECRET_KEY.match(str(k)) and v not in (None, "") else redact(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def scenario_hash(scenario_json: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(scenario_json, sort_keys=True).encode()).hexdigest()[:16]


def write_manifest(run_dir: Path, data: dict[str, Any]) -> None:
    path = run_dir / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(redact(data), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / MANIFEST).read_text())
