"""Typed messages between the supervisor and its workers (frozen dataclasses, matched by type)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs; picklable."""

    run_id: str
    run_dir: str
    scenario: dict[str, Any]
    scenario_dir: str
    target: str
    clock: str
    worker: int
    workers: int
    lo: int  # first global device index of the slice
    hi: int  # one past the last
    cpu: int | None = None


# supervisor -> worker


@dataclass(frozen=True)
class Start:
    """Run the slice from t=0 at this wall-clock epoch; a `provisional` one is a guess: the
    worker connects its devices, says Connected, and waits for Begin with the real t=0."""

    t0_epoch_ns: int
    provisional: bool = False


@dataclass(frozen=True)
class Begin:
    """t=0 is at this wall-clock epoch (chosen once every worker has connected)."""

    t0_epoch_ns: int


@dataclass(frozen=True)
class Stop:
    reason: str = "signal"


# worker -> supervisor


@dataclass(frozen=True)
class Ready:
    worker: int


@dataclass(frozen=True)
class Connected:
    """A worker told a provisional Start has its devices connected: it waits for Begin."""

    worker: int


@dataclass(frozen=True)
class Resumed:
    """A restarted worker has taken up its schedule at run time `at_ns`, from its checkpoint
    at `checkpoint_ns` (None: it walked the schedule from t=0)."""

    worker: int
    at_ns: int
    checkpoint_ns: int | None
    rows_read: int


@dataclass(frozen=True)
class Progress:
    worker: int
    t_ns: int  # virtual time the worker has reached
    sent: int
    completed: int
    errors: int
    lag_p99_ns: int
    rows: int
    # for /status and /metrics (simd.runtime.live): cumulative per group, from the logged rows
    by_message: list[list[list[int]]] = field(default_factory=list)  # [group][message][status]
    latency_buckets: list[list[int]] = field(default_factory=list)  # [group][bucket]
    message_latency_sum_ns: list[list[float]] = field(default_factory=list)  # [group][message]
    by_phase: list[list[int]] = field(default_factory=list)  # [phase][status] publish rows
    error_texts: dict[str, int] = field(default_factory=dict)  # failed publish rows by error
    by_kind: list[list[int]] = field(default_factory=list)  # [kind][status] rows of the others
    interval_completed: int = 0  # the last interval's completed publishes ...
    interval_ns: list[int] = field(default_factory=list)  # ... their latency quantiles
    # (simd.runtime.live_stats.INTERVAL_QUANTILES)
    rss_bytes: int = 0
    pid: int = 0


@dataclass(frozen=True)
class Done:
    worker: int
    sent: int
    completed: int
    errors: int
    unsent: int
    rows: int
    stopped_at_ns: int | None  # None: the schedule ran to its end
    torn_tails: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Failed:
    worker: int
    message: str
    user_error: bool
