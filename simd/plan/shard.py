"""Shards: one run split over N independent `simd run --shard I/N` processes (README, Shards).
No coordinator: the schedule is a pure function of (scenario, seed, device), so shard I
runs the devices of its slice of the global index, on the shared t=0 given by `--start-at`,
and `simd ingest` merges the shard folders (simd.results.merge).

Layout: shard I of run ID writes `RUNS/ID/shard-I/` (a run folder of its own: run.json with the
shard in it, events/); the merged results go to `RUNS/ID/`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from simd.errors import UserError

# a shard's worker w is worker SHARD * WORKER_STRIDE + w of the merged run: stable whichever
# shards are present (ingest can merge shards as they arrive) and readable (2003: shard 2, w3)
WORKER_STRIDE = 1000
FOLDER = re.compile(r"^shard-(\d+)$")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0 <= index < count), as in a Kubernetes Indexed Job."""

    index: int
    count: int

    @property
    def folder(self) -> str:
        return f"shard-{self.index}"

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def devices(self, n: int) -> tuple[int, int]:
        """Its slice [lo, hi) of a fleet of n devices: contiguous, sizes differ by at most one."""
        return self.index * n // self.count, (self.index + 1) * n // self.count

    def global_worker(self, w: int) -> int:
        return self.index * WORKER_STRIDE + w


def parse_shard(text: str) -> Shard:
    """`I/N` -> Shard; a UserError that says the accepted form."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m:
        raise UserError(f"--shard {text!r}: write it as I/N, e.g. 0/3 (shard I of N, from 0)")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or index >= count:
        raise UserError(f"--shard {text}: I must be 0..N-1 and N at least 1 (I counts from 0)")
    return Shard(index, count)


def parse_start_at(text: str) -> int:
    """`--start-at`: epoch seconds (decimals read exactly) or ISO 8601 with a zone -> epoch ns."""
    s = text.strip()
    try:
        return int(Decimal(s) * 1_000_000_000)
    except InvalidOperation:
        pass
    try:
        when = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"--start-at {text!r}: give epoch seconds (1795430400) or ISO 8601 with a zone "
            "(2026-11-23T18:00:00Z)"
        ) from None
    if when.tzinfo is None:
        raise UserError(f"--start-at {text!r}: give a zone (Z or +01:00): shards may differ")
    whole = int(when.timestamp()) * 1_000_000_000
    return whole + when.microsecond * 1_000


def check_start_at(start_ns: int, now_ns: int | None = None) -> None:
    """A start in the past is an error: the shards would not share t=0."""
    now = time.time_ns() if now_ns is None else now_ns
    if start_ns <= now:
        raise UserError(
            f"--start-at {start_ns / 1e9:.3f}: that is {(now - start_ns) / 1e9:.1f} s in the past "
            f"(now {now / 1e9:.3f}); all shards need one start still to come"
        )


def default_run_id(name: str, start_ns: int) -> str:
    """The run id every shard derives alike from the scenario name and the shared start."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(start_ns // 1_000_000_000))
    return f"{name}-{stamp}"
