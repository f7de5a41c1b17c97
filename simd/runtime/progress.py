"""Live progress on stderr while a run goes (the supervisor calls `show` from its loop).

On a terminal: a panel redrawn in place (rich) — a bar per phase with its time left, planned,
sent and completed per second and latency p50/p99 and schedule lag p99 over the last few
seconds, the counts by final status, and a row per group (an HTTP run: per request name, with
its mean latency). Elsewhere (a CI log): one plain line every `interval_s`
(`--progress-interval`, default 10 s) and a last one at the end.

The last line holds whole-run counts only (sent, completed, by status): they are the counts
the report reads from the log. Latency and lag of a last interval are not the run's, so they
are not on it: the report that follows has those.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from simd.model.scenario import Scenario
from simd.runtime.live import LiveState, Status

TTY_EVERY_S = 0.25
BAR = 24


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} ms"


def _bar(done: float) -> str:
    k = max(0, min(BAR, round(done * BAR)))
    return "█" * k + "░" * (BAR - k)


class ProgressView:
    """See the module docstring. `enabled` False: nothing is shown."""

    def __init__(
        self, live: LiveState, scenario: Scenario, enabled: bool, interval_s: float = 10.0
    ) -> None:
        self.live = live
        self.enabled = enabled
        self.interval_s = interval_s
        self.phases = live.phases  # (name, start s, end s), as the log's phase column has them
        self.http = scenario.target.startswith("http")
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self._live_view: Any = None

    @property
    def noun(self) -> str:
        return "requests" if self.http else "publishes"

    def show(self, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        every = TTY_EVERY_S if self.tty else self.interval_s
        if not final and self.last and now - self.last < every:
            return
        if not final and not self.last and not self.tty:
            self.last = now  # the first plain line after one interval, not at t=0
            return
        self.last = now
        st = self.live.status()
        if self.tty:
            self._panel(st, final)
        if final:
            sys.stderr.write(self.final_line(st) + "\n")
        elif not self.tty:
            sys.stderr.write(self.line(st) + "\n")
        sys.stderr.flush()

    # ------------------------------------------------------------- text

    def line(self, st: Status) -> str:
        """One plain progress line (a CI log's)."""
        iv = st.interval
        phase = self._phase_at(st.elapsed_s)
        return (
            f"simd: {st.elapsed_s:6.1f}s of {st.duration_s:g}s ({phase})  sent "
            f"{st.sent:,}/{st.planned_total:,}  completed {st.completed:,}  errors "
            f"{st.errors:,}  last {iv.seconds:g}s: {iv.sent_per_s:,.0f} sent/s "
            f"{iv.completed_per_s:,.0f} completed/s, latency p50 {_ms(iv.latency_p50_ms)} "
            f"p99 {_ms(iv.latency_p99_ms)}, lag p99 {_ms(iv.lag_p99_ms)}"
        )

    def final_line(self, st: Status) -> str:
        """Whole-run counts, as the log has them (the report's)."""
        failed = ", ".join(
            f"{k} {v:,}" for k, v in st.by_status.items() if v and k not in ("acked", "sent")
        )
        return (
            f"simd: done: {st.sent:,} of {st.planned_total:,} planned {self.noun} sent, "
            f"{st.completed:,} completed" + (f", {failed}" if failed else ", no errors")
        )

    def _phase_at(self, t: float) -> str:
        for name, a, b in self.phases:
            if a <= t < b:
                return name
        return self.phases[-1][0] if t > 0 else "starting"

    # ------------------------------------------------------------- terminal

    def _panel(self, st: Status, final: bool) -> None:
        from rich.console import Console, Group
        from rich.live import Live
        from rich.table import Table
        from rich.text import Text

        rows: list[Any] = []
        for name, a, b in self.phases:
            done = 1.0 if st.elapsed_s >= b else max(0.0, (st.elapsed_s - a) / (b - a or 1))
            left = max(0.0, b - max(st.elapsed_s, a))
            rows.append(Text(f"{name:<16} {_bar(done)} {done:6.1%}  {left:7.1f}s left"))
        iv = st.interval
        planned_s = st.planned_so_far / st.elapsed_s if st.elapsed_s > 0 else 0.0
        rows.append(
            Text(
                f"{self.noun}: planned {st.planned_so_far:,} ({planned_s:,.0f}/s)  sent "
                f"{st.sent:,} ({iv.sent_per_s:,.0f}/s)  completed {st.completed:,} "
                f"({iv.completed_per_s:,.0f}/s)"
            )
        )
        rows.append(
            Text(
                f"last {iv.seconds:g}s: latency p50 {_ms(iv.latency_p50_ms)}  p99 "
                f"{_ms(iv.latency_p99_ms)}  schedule lag p99 {_ms(iv.lag_p99_ms)}"
            )
        )
        by = "  ".join(f"{k} {v:,}" for k, v in st.by_status.items() if v) or "nothing yet"
        rows.append(Text(f"by status: {by}"))
        if self.http and st.messages:
            t = Table(box=None, pad_edge=False)
            for col in ("group", "request", "sent", "completed", "errors", "mean"):
                t.add_column(col, justify="left" if col in ("group", "request") else "right")
            for m in st.messages:
                t.add_row(
                    m.group,
                    m.name,
                    f"{m.sent:,}",
                    f"{m.completed:,}",
                    f"{m.errors:,}",
                    _ms(m.latency_mean_ms),
                )
            rows.append(t)
        elif st.groups:
            t = Table(box=None, pad_edge=False)
            for col in ("group", "sent", "completed", "errors"):
                t.add_column(col, justify="left" if col == "group" else "right")
            for g in st.groups:
                t.add_row(g.name, f"{g.sent:,}", f"{g.completed:,}", f"{g.errors:,}")
            rows.append(t)
        if self._live_view is None:
            console = Console(stderr=True)
            self._live_view = Live(console=console, auto_refresh=False, transient=False)
            self._live_view.start()
        self._live_view.update(Group(*rows), refresh=True)
        if final:
            self._live_view.stop()
            self._live_view = None
