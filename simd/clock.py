"""The clocks a run can use, and the mapping from trio time to virtual ns since t=0.

real: trio's own clock. scaled:N: a trio Clock N times faster than wall time. virtual: trio's
autojump MockClock (only with transports that do no real I/O: `null:` and `sim:`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import trio

from simd.errors import UserError


@dataclass(frozen=True)
class ClockSpec:
    kind: str  # real | scaled | virtual
    scale: float = 1.0

    @property
    def label(self) -> str:
        return f"scaled:{self.scale:g}" if self.kind == "scaled" else self.kind


def parse_clock(text: str) -> ClockSpec:
    """`real`, `virtual` or `scaled:N` (N > 0); UserError otherwise."""
    if text in ("real", "virtual"):
        return ClockSpec(text, 1.0)
    if text.startswith("scaled:"):
        try:
            scale = float(text.split(":", 1)[1])
        except ValueError:
            scale = 0.0
        if scale > 0:
            return ClockSpec("scaled", scale)
    raise UserError(f"clock {text!r}: use real, virtual or scaled:N with N > 0")


class ScaledClock(trio.abc.Clock):
    """Trio time that runs `scale` times faster than the monotonic wall clock."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._base_wall = time.perf_counter()

    def start_clock(self) -> None:
        self._base_wall = time.perf_counter()

    def current_time(self) -> float:
        return (time.perf_counter() - self._base_wall) * self.scale

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return max(0.0, (deadline - self.current_time()) / self.scale)


def trio_clock(spec: ClockSpec) -> trio.abc.Clock | None:
    """The clock to pass to trio.run (None: trio's default real clock)."""
    if spec.kind == "virtual":
        import trio.testing  # only here: it pulls in pytest (70 ms of every process start)

        return trio.testing.MockClock(autojump_threshold=0)
    if spec.kind == "scaled":
        return ScaledClock(spec.scale)
    return None


class RunClock:
    """Virtual ns since the run's t=0, read from trio's clock. Create inside trio.run.

    A real or scaled clock may start `provisional`: its t=0 is a guess until `retime` fixes it
    (the supervisor chooses t=0 once every worker has connected). Until then no sleep on run
    time ends, and scopes made by `scope_until` follow the move."""

    def __init__(self, spec: ClockSpec, t0_epoch_ns: int, provisional: bool = False) -> None:
        self.spec = spec
        self.epoch_ns = t0_epoch_ns  # the wall-clock epoch of t=0 (real and scaled clocks)
        self._fixed: trio.Event | None = trio.Event() if provisional else None
        self._scopes: list[tuple[trio.CancelScope, int]] = []
        if spec.kind == "virtual":
            self.t0 = trio.current_time()
        else:
            self.t0 = self._trio_t0(t0_epoch_ns)

    def _trio_t0(self, epoch_ns: int) -> float:
        # t=0 is a wall-clock epoch shared by all workers; map it onto this trio clock.
        ahead_s = (epoch_ns - time.time_ns()) / 1e9
        return trio.current_time() + ahead_s * self.spec.scale

    @property
    def fixed(self) -> bool:
        return self._fixed is None

    def retime(self, t0_epoch_ns: int) -> int:
        """Fix t=0 at this wall-clock epoch; returns what to add to run times read before."""
        old, self.t0 = self.t0, self._trio_t0(t0_epoch_ns)
        self.epoch_ns = t0_epoch_ns
        for scope, t_ns in self._scopes:
            scope.deadline = self.deadline(t_ns)
        self._scopes = []
        if self._fixed is not None:
            self._fixed.set()
            self._fixed = None
        return round((old - self.t0) * 1e9)

    def now_ns(self) -> int:
        return round((trio.current_time() - self.t0) * 1e9)

    def deadline(self, t_ns: int) -> float:
        """The trio deadline of run time `t_ns` (for move_on_at, fail_at, cancel scopes)."""
        return self.t0 + t_ns / 1e9

    def scope_until(self, t_ns: int) -> trio.CancelScope:
        """A cancel scope that ends at run time `t_ns`, wherever t=0 is fixed."""
        scope = trio.CancelScope(deadline=self.deadline(t_ns))
        if self._fixed is not None:
            self._scopes.append((scope, t_ns))
        return scope

    async def sleep_until_ns(self, t_ns: int) -> None:
        if self._fixed is not None:
            await self._fixed.wait()
        await trio.sleep_until(self.deadline(t_ns))
