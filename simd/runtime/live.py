"""While a run is on: `GET /status` (JSON, the `Status` model) and `GET /metrics` (Prometheus
text) on 127.0.0.1, served by the supervisor from its workers' progress messages, and live
SLO alerts. The run's truth stays in the logs; this is what a person or a scraper watches.

The server is a stdlib ThreadingHTTPServer in a daemon thread; it reads a snapshot the
supervisor's loop replaces under a lock (the loop never waits for the server).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from simd.log.events import (
    COMPLETED_STATUSES,
    FAILED_STATUSES,
    KINDS,
    NOT_SENT_STATUSES,
    STATUSES,
)
from simd.runtime.live_stats import INTERVAL_QUANTILES, LATENCY_BOUNDS_S
from simd.runtime.local_http import LocalHandler, LocalServer
from simd.runtime.messages import Progress
from simd.runtime.timeline import FIELDS, Timeline

TOP_ERRORS = 20  # error texts /status lists, the most frequent first
ALERT_WINDOW_S = 5.0  # live SLOs are judged over the last few seconds, not the whole run
_P99 = INTERVAL_QUANTILES.index("p99")
_FAILED = list(FAILED_STATUSES)
_COMPLETED = list(COMPLETED_STATUSES)
_NOT_SENT = list(NOT_SENT_STATUSES)


class WorkerStatus(BaseModel):
    worker: int
    state: str  # starting, running, restarting, done, failed
    pid: int | None
    restarts: int
    t_s: float  # run time the worker has reached
    sent: int
    completed: int
    errors: int
    lag_p99_ms: float
    latency_p99_ms: float  # of its last progress interval
    rss_bytes: int
    seconds_since_progress: float | None


class IntervalStatus(BaseModel):
    seconds: float
    sent_per_s: float
    completed_per_s: float
    error_rate: float
    latency_p50_ms: float | None  # max over workers of each worker's last interval
    latency_p99_ms: float | None
    lag_p99_ms: float | None
    latency_p95_ms: float | None = None
    latency_max_ms: float | None = None
    sent_p50_ms: float | None = None  # latency from the actual send time
    sent_p99_ms: float | None = None
    sent_max_ms: float | None = None


class GroupStatus(BaseModel):
    name: str
    sent: int
    completed: int
    errors: int


class MessageStatus(BaseModel):
    """One message of a group (an HTTP run's request name)."""

    group: str
    name: str
    sent: int
    completed: int
    errors: int
    latency_mean_ms: float | None  # of its completed ones, from their intended send time


class PhaseStatus(BaseModel):
    """One phase: its span of run time and the publishes logged in it so far."""

    name: str
    start_s: float
    end_s: float
    sent: int
    completed: int
    errors: int


class KindCount(BaseModel):
    """Rows of a kind other than publish (connect, receive, command, reply...) by status."""

    kind: str
    status: str
    count: int


class ErrorCount(BaseModel):
    text: str
    count: int  # failed publish rows with that error text so far


class Alert(BaseModel):
    slo: str
    threshold: float
    observed: float
    unit: str
    since_s: float  # run time the breach began
    until_s: float | None  # None while it lasts
    active: bool


class Status(BaseModel):
    """GET /status."""

    run_id: str
    scenario: str
    shard: str  # "I/N" for one shard of a sharded run (it serves its own devices), else ""
    state: str
    elapsed_s: float
    duration_s: float
    planned_total: int
    planned_so_far: int
    sent: int
    acked: int
    completed: int
    errors: int
    by_status: dict[str, int]
    interval: IntervalStatus
    workers: list[WorkerStatus]
    alerts: list[Alert]
    groups: list[GroupStatus] = []
    messages: list[MessageStatus] = []
    phases: list[PhaseStatus] = []
    top_errors: list[ErrorCount] = []
    other_rows: list[KindCount] = []


@dataclass
class _Worker:
    state: str = "starting"
    pid: int | None = None
    restarts: int = 0
    last: Progress | None = None
    seen: float | None = None


@dataclass(eq=False)  # hashable by identity: prometheus_client registers it as a collector
class LiveState:
    """The supervisor's view of a run, updated from its loop, read by the server."""

    run_id: str
    scenario: str
    duration_ns: int
    planned_total: int
    groups: list[str]
    expected_cum: np.ndarray  # expected publishes by the end of each window
    window_ns: int
    slo: dict[str, tuple[float, str]]  # name -> (threshold, unit) of the live-judged SLOs
    shard: str = ""  # "I/N" when this process runs one shard of the run
    messages: list[list[str]] = field(default_factory=list)  # names per group, if any
    target: str = ""
    phases: list[tuple[str, float, float]] = field(default_factory=list)  # (name, start, end s)
    timeline: Timeline = field(default_factory=Timeline)
    # what progress messages brought since the last tick: interval quantiles, lag p99 (ns)
    _since_tick: list[list[int]] = field(default_factory=list)
    _lag_since_tick: int | None = None
    _last_tick: tuple[float, np.ndarray, int] | None = None  # (monotonic, totals, planned)
    workers: dict[int, _Worker] = field(default_factory=dict)
    state: str = "starting"
    alerts: list[Alert] = field(default_factory=list)
    history: deque[tuple[float, np.ndarray]] = field(default_factory=lambda: deque(maxlen=64))
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_alert: Any = None  # called with (Alert, began: bool)

    def worker(self, w: int) -> _Worker:
        return self.workers.setdefault(w, _Worker())

    def progress(self, p: Progress) -> None:
        with self.lock:
            wk = self.worker(p.worker)
            wk.last, wk.seen = p, time.monotonic()
            if p.interval_completed and p.interval_ns and len(self._since_tick) < 10_000:
                self._since_tick.append(p.interval_ns)
            self._lag_since_tick = max(self._lag_since_tick or 0, p.lag_p99_ns)
            if wk.state in ("starting", "restarting"):
                wk.state = "running"
            if p.pid:
                wk.pid = p.pid

    def set_worker(self, w: int, state: str, pid: int | None = None, restart: bool = False) -> None:
        with self.lock:
            wk = self.worker(w)
            wk.state = state
            if pid is not None:
                wk.pid = pid
            if restart:
                wk.restarts += 1

    def _summed(self, name: str, dtype: type = np.int64) -> np.ndarray | None:
        """A Progress array field summed over the workers' last messages (None before any)."""
        out = None
        for wk in self.workers.values():
            value = getattr(wk.last, name) if wk.last is not None else None
            if value:
                a = np.array(value, dtype=dtype)
                out = a if out is None else out + a
        return out

    def _by_message(self) -> np.ndarray | None:
        """[group][message][status] summed over workers (None before any progress)."""
        return self._summed("by_message")

    def _totals(self, by_message: np.ndarray | None = None) -> np.ndarray:
        """[group][status] summed over workers."""
        bm = self._by_message() if by_message is None else by_message
        if bm is None:
            return np.zeros((len(self.groups), len(STATUSES)), dtype=np.int64)
        return bm.sum(axis=1)

    def _messages(self, bm: np.ndarray | None) -> list[MessageStatus]:
        """A row per named message of each group (nothing for a run without names)."""
        out: list[MessageStatus] = []
        lat = self._summed("message_latency_sum_ns", np.float64)
        for gi, names in enumerate(self.messages):
            for mi, name in enumerate(names):
                st = bm[gi, mi] if bm is not None and mi < bm.shape[1] else _NONE
                counts = _outcome(st)
                mean = None
                if counts["completed"] and lat is not None and mi < lat.shape[1]:
                    mean = float(lat[gi, mi]) / counts["completed"] / 1e6
                out.append(
                    MessageStatus(group=self.groups[gi], name=name, latency_mean_ms=mean, **counts)
                )
        return out

    def t_ns(self) -> int:
        ts = [wk.last.t_ns for wk in self.workers.values() if wk.last is not None]
        return max(0, min(ts)) if ts else 0

    def tick(self) -> None:
        """Once a second or so: remember the totals, judge the live SLOs."""
        with self.lock:
            now = time.monotonic()
            totals = self._totals().sum(axis=0)
            self.history.append((now, totals))
            self._add_point(now, totals)
            iv = self._interval(now)
            observed = {
                "latency_p99": None if iv.latency_p99_ms is None else iv.latency_p99_ms * 1e6,
                "error_rate": iv.error_rate if iv.sent_per_s or iv.error_rate else None,
                "schedule_lag_p99": None if iv.lag_p99_ms is None else iv.lag_p99_ms * 1e6,
            }
            t_s = self.t_ns() / 1e9
            for name, (threshold, unit) in self.slo.items():
                value = observed.get(name)
                active = next((a for a in self.alerts if a.slo == name and a.active), None)
                if value is None:
                    continue
                if value > threshold and active is None:
                    a = Alert(
                        slo=name,
                        threshold=threshold,
                        observed=value,
                        unit=unit,
                        since_s=t_s,
                        until_s=None,
                        active=True,
                    )
                    self.alerts.append(a)
                    if self.on_alert:
                        self.on_alert(a, True)
                elif value > threshold and active is not None:
                    active.observed = max(active.observed, value)
                elif value <= threshold and active is not None:
                    active.active, active.until_s = False, t_s
                    if self.on_alert:
                        self.on_alert(active, False)

    def _add_point(self, now: float, totals: np.ndarray) -> None:
        """The timeline's point for this tick: rates since the last one, the worst interval
        quantiles and lag the workers reported since, workers up, the largest worker RSS."""
        t = self.t_ns()
        planned = self._planned_by(t)
        last, self._last_tick = self._last_tick, (now, totals, planned)
        if last is None or t <= 0 or now <= last[0]:
            return
        secs = now - last[0]
        d = (totals - last[1]) / secs
        v: dict[str, float | None] = {
            "t_s": t / 1e9,
            "planned_per_s": (planned - last[2]) / secs,
            "sent_per_s": float(d.sum() - d[_NOT_SENT].sum()),
            "completed_per_s": float(d[_COMPLETED].sum()),
            "failed_per_s": float(d[_FAILED].sum()),
        }
        for s in ("timeout", "error", "dropped", "missed", "unsent"):
            v[f"{s}_per_s"] = float(d[STATUSES.index(s)])
        if self._since_tick:
            for i, k in enumerate(INTERVAL_QUANTILES):
                v[f"{k}_ms"] = max(q[i] for q in self._since_tick) / 1e6
        if self._lag_since_tick is not None:
            v["lag_p99_ms"] = self._lag_since_tick / 1e6
        self._since_tick, self._lag_since_tick = [], None
        lasts = [wk.last for wk in self.workers.values() if wk.last is not None]
        v["rss_mib"] = max((p.rss_bytes for p in lasts), default=0) / 2**20
        v["workers_up"] = float(sum(wk.state == "running" for wk in self.workers.values()))
        self.timeline.add(v)

    def _interval(self, now: float) -> IntervalStatus:
        hist = [h for h in self.history if now - h[0] <= ALERT_WINDOW_S + 0.5]
        if len(hist) >= 2:
            (t0, a), (t1, b) = hist[0], hist[-1]
            d, secs = b - a, max(t1 - t0, 1e-9)
        else:
            d, secs = np.zeros(len(STATUSES), dtype=np.int64), 0.0
        logged = int(d.sum())
        done = int(d[_COMPLETED].sum())
        failed = int(d[_FAILED].sum())
        lasts = [wk.last for wk in self.workers.values() if wk.last is not None]
        with_lat = [p.interval_ns for p in lasts if p.interval_completed and p.interval_ns]
        q = {
            k: max(v[i] for v in with_lat) / 1e6 if with_lat else None
            for i, k in enumerate(INTERVAL_QUANTILES)
        }
        return IntervalStatus(
            seconds=round(secs, 3),
            sent_per_s=(logged - int(d[_NOT_SENT].sum())) / secs if secs else 0.0,
            completed_per_s=done / secs if secs else 0.0,
            error_rate=failed / logged if logged else 0.0,
            latency_p50_ms=q["p50"],
            latency_p99_ms=q["p99"],
            lag_p99_ms=max(p.lag_p99_ns for p in lasts) / 1e6 if lasts else None,
            latency_p95_ms=q["p95"],
            latency_max_ms=q["max"],
            sent_p50_ms=q["sent_p50"],
            sent_p99_ms=q["sent_p99"],
            sent_max_ms=q["sent_max"],
        )

    def status(self) -> Status:
        with self.lock:
            now = time.monotonic()
            bm = self._by_message()
            per_group = self._totals(bm)
            totals = per_group.sum(axis=0)
            t = self.t_ns()
            planned = self._planned_by(t)
            workers = []
            for w in sorted(self.workers):
                wk = self.workers[w]
                p = wk.last
                workers.append(
                    WorkerStatus(
                        worker=w,
                        state=wk.state,
                        pid=wk.pid,
                        restarts=wk.restarts,
                        t_s=(p.t_ns / 1e9) if p else 0.0,
                        sent=p.sent if p else 0,
                        completed=p.completed if p else 0,
                        errors=p.errors if p else 0,
                        lag_p99_ms=(p.lag_p99_ns / 1e6) if p else 0.0,
                        latency_p99_ms=(p.interval_ns[_P99] / 1e6) if p and p.interval_ns else 0.0,
                        rss_bytes=p.rss_bytes if p else 0,
                        seconds_since_progress=None if wk.seen is None else now - wk.seen,
                    )
                )
            by = {s: int(totals[i]) for i, s in enumerate(STATUSES) if s != "ok"}
            return Status(
                run_id=self.run_id,
                scenario=self.scenario,
                shard=self.shard,
                state=self.state,
                elapsed_s=max(t, 0) / 1e9,
                duration_s=self.duration_ns / 1e9,
                planned_total=self.planned_total,
                planned_so_far=min(planned, self.planned_total),
                sent=int(totals.sum() - totals[_NOT_SENT].sum()),
                acked=by["acked"],
                completed=int(totals[_COMPLETED].sum()),
                errors=int(totals[_FAILED].sum()),
                by_status=by,
                interval=self._interval(now),
                workers=workers,
                alerts=[a.model_copy() for a in self.alerts],
                groups=[
                    GroupStatus(name=name, **_outcome(g))
                    for name, g in zip(self.groups, per_group, strict=True)
                ],
                messages=self._messages(bm),
                phases=self._phases(),
                top_errors=self._top_errors(),
                other_rows=self._other_rows(),
            )

    def _planned_by(self, t: int) -> int:
        """Publishes the plan expects by run time t: whole windows, then the share of the
        current one."""
        if t <= 0:
            return 0
        k = min(int(t // self.window_ns), len(self.expected_cum) - 1)
        before = float(self.expected_cum[k - 1]) if k > 0 else 0.0
        frac = min(1.0, (t - k * self.window_ns) / self.window_ns)
        return min(int(before + frac * (float(self.expected_cum[k]) - before)), self.planned_total)

    def _phases(self) -> list[PhaseStatus]:
        by = self._summed("by_phase")
        return [
            PhaseStatus(
                name=name,
                start_s=a,
                end_s=b,
                **_outcome(by[i] if by is not None and i < len(by) else _NONE),
            )
            for i, (name, a, b) in enumerate(self.phases)
        ]

    def _other_rows(self) -> list[KindCount]:
        by = self._summed("by_kind")
        if by is None:
            return []
        return [
            KindCount(kind=KINDS[k], status=STATUSES[s], count=int(by[k, s]))
            for k, s in zip(*np.nonzero(by), strict=True)
        ]

    def _top_errors(self) -> list[ErrorCount]:
        counts: dict[str, int] = {}
        for wk in self.workers.values():
            if wk.last is not None:
                for text, n in wk.last.error_texts.items():
                    counts[text] = counts.get(text, 0) + n
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:TOP_ERRORS]
        return [ErrorCount(text=t, count=n) for t, n in top]

    def dashboard(self, start: int = 0, epoch: int = 0) -> dict[str, Any]:
        """GET /api/dashboard: the status, the phases' spans and the timeline's points from
        `start` on (all of them for a client of another epoch)."""
        st = self.status()
        with self.lock:
            first, points = self.timeline.since(start, epoch)
            return {
                "status": st.model_dump(),
                "target": self.target,
                "slo": {k: {"threshold": t, "unit": u} for k, (t, u) in self.slo.items()},
                "fields": list(FIELDS),
                "epoch": self.timeline.epoch,
                "start": first,
                "points": points,
            }

    def collect(self) -> Iterator[Any]:
        """Prometheus metric families (prometheus_client's collector protocol)."""
        st = self.status()
        with self.lock:
            per_group = self._totals()
            buckets = self._summed("latency_buckets")
            if buckets is None:
                buckets = np.zeros((len(self.groups), len(LATENCY_BOUNDS_S) + 1), np.int64)
            lat = self._summed("message_latency_sum_ns", np.float64)
            sums = np.zeros(len(self.groups)) if lat is None else lat.sum(axis=1)
        info = GaugeMetricFamily(
            "simd_run_info",
            "the run being served",
            labels=["run_id", "scenario", "state", "shard"],
        )
        info.add_metric([st.run_id, st.scenario, st.state, st.shard], 1)
        yield info
        yield GaugeMetricFamily("simd_elapsed_seconds", "run time reached", value=st.elapsed_s)
        yield GaugeMetricFamily(
            "simd_planned_publishes", "publishes planned for the whole run", value=st.planned_total
        )
        yield GaugeMetricFamily(
            "simd_planned_publishes_so_far",
            "publishes the plan expects by now",
            value=st.planned_so_far,
        )
        pubs = CounterMetricFamily(
            "simd_publishes", "publishes by final status", labels=["group", "status"]
        )
        for gi, g in enumerate(self.groups):
            for si, s in enumerate(STATUSES):
                if s != "ok":
                    pubs.add_metric([g, s], float(per_group[gi, si]))
        yield pubs
        lat = HistogramMetricFamily(
            "simd_publish_latency_seconds",
            "latency of completed publishes from their intended send time",
            labels=["group"],
        )
        for gi, g in enumerate(self.groups):
            cum = np.cumsum(buckets[gi])
            pts = [(_le(b), float(cum[i])) for i, b in enumerate(LATENCY_BOUNDS_S)]
            pts.append(("+Inf", float(cum[-1])))
            lat.add_metric([g], pts, sum_value=float(sums[gi]) / 1e9)
        yield lat
        lag = GaugeMetricFamily(
            "simd_schedule_lag_p99_seconds", "schedule lag p99, last interval", labels=["worker"]
        )
        up = GaugeMetricFamily("simd_worker_up", "1 while the worker runs", labels=["worker"])
        restarts = CounterMetricFamily(
            "simd_worker_restarts", "times the worker was restarted", labels=["worker"]
        )
        rss = GaugeMetricFamily(
            "simd_worker_rss_bytes", "worker resident memory", labels=["worker"]
        )
        for w in st.workers:
            lbl = [str(w.worker)]
            lag.add_metric(lbl, w.lag_p99_ms / 1e3)
            up.add_metric(lbl, 1.0 if w.state == "running" else 0.0)
            restarts.add_metric(lbl, float(w.restarts))
            rss.add_metric(lbl, float(w.rss_bytes))
        yield from (lag, up, restarts, rss)
        breach = GaugeMetricFamily(
            "simd_slo_breached", "1 while a live SLO is breached", labels=["slo"]
        )
        for name in self.slo:
            breach.add_metric(
                [name], 1.0 if any(a.active and a.slo == name for a in st.alerts) else 0.0
            )
        yield breach


_NONE = np.zeros(len(STATUSES), dtype=np.int64)  # no rows of any status


def _outcome(st: np.ndarray) -> dict[str, int]:
    """sent, completed and errors of a [status] row count (a group's, a message's, a phase's)."""
    return {
        "sent": int(st.sum() - st[_NOT_SENT].sum()),
        "completed": int(st[_COMPLETED].sum()),
        "errors": int(st[_FAILED].sum()),
    }


def _ints(query: str) -> dict[str, int]:
    """A query string's integer parameters (others, and non-integers, left out)."""
    out = {}
    for part in query.split("&"):
        k, _, v = part.partition("=")
        digits = v.removeprefix("-")
        if digits.isascii() and digits.isdigit() and len(v) < 19:
            out[k] = int(v)
    return out


def _le(b: float) -> str:
    return f"{b:g}" if not math.isinf(b) else "+Inf"


class StatusServer(LocalServer):
    """Serves a LiveState on host:port (loopback unless told; port 0: a free one) until closed:
    /status, /metrics, the dashboard page (/) and its feed (/api/dashboard)."""

    def __init__(self, live: LiveState, port: int = 0, host: str = "127.0.0.1") -> None:
        from simd.runtime.dashboard import CSP, assets

        pages = assets()
        self.live = live
        registry = CollectorRegistry(auto_describe=False)
        registry.register(live)  # type: ignore[arg-type]
        live_ref = live

        class Handler(LocalHandler):
            csp = CSP

            def do_GET(self) -> None:
                if self.refused():
                    return
                path, _, query = self.path.partition("?")
                if path == "/api/dashboard":
                    q = _ints(query)
                    data = live_ref.dashboard(q.get("start", 0), q.get("epoch", 0))
                    body = json.dumps(data, allow_nan=False).encode()
                    ctype = "application/json"
                elif path == "/status":
                    body = live_ref.status().model_dump_json().encode()
                    ctype = "application/json"
                elif path == "/metrics":
                    body = generate_latest(registry)
                    ctype = CONTENT_TYPE_LATEST
                elif path in pages:
                    ctype, body = pages[path]
                else:
                    self.send_error(404)
                    return
                self.reply(200, ctype, body)

        super().__init__(Handler, port, host)
