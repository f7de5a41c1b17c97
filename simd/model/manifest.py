"""runs/<id>/run.json: what a run was (scenario, seed, t=0, clock, workers) and how it ended.

Written atomically (temp file + rename) at every state change. Secrets are redacted
(simd.model.secrets): passwords, tokens, and credentials in URLs never reach the file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from simd.model.secrets import redact

MANIFEST = "run.json"
# the states a run ends in (run.json "state"); a merged sharded run with shards missing, all
# present ones ended, is "incomplete"
FINAL_STATES = frozenset({"completed", "stopped", "failed", "aborted"})


def scenario_hash(scenario_json: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(scenario_json, sort_keys=True).encode()).hexdigest()[:16]


RESERVE = ".reserve"  # space kept back so the last run.json fits when the disk fills
RESERVE_BYTES = 256 * 1024


def reserve_space(run_dir: Path) -> None:
    """Set aside RESERVE_BYTES in the run folder (written, not sparse) for write_manifest."""
    with open(run_dir / RESERVE, "wb") as f:
        f.write(b"\0" * RESERVE_BYTES)


def write_manifest(run_dir: Path, data: dict[str, Any]) -> None:
    """Replace run.json atomically. On a full disk, give up the reserve and try once more;
    if it still does not fit, the previous run.json stays (OSError)."""
    path = run_dir / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    text = json.dumps(redact(data), indent=2, sort_keys=True) + "\n"
    try:
        tmp.write_text(text)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        reserve = run_dir / RESERVE
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not reserve.exists():
            raise
        reserve.unlink()
        tmp.write_text(text)
    os.replace(tmp, path)


def read_manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / MANIFEST).read_text())


def worker_slices(manifest: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(worker, first device, one past the last) of every worker of the run; a merged sharded
    run numbers its workers shard * 1000 + w (simd.plan.shard)."""
    if "worker_slices" in manifest:
        return [(int(w), int(lo), int(hi)) for w, lo, hi in manifest["worker_slices"]]
    return [(w, int(lo), int(hi)) for w, (lo, hi) in enumerate(manifest["slices"])]
