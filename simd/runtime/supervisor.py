"""The supervisor: plans a run, starts one worker process per core, watches, stops, records.

It never touches events; the workers' logs are the result. Signals: the first SIGINT/SIGTERM
asks every worker to stop (they drain, flush and close); a second one kills them at once (their
logs stay readable up to the last whole frame).
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from simd._version import __version__
from simd.clock import parse_clock
from simd.errors import RunError, UserError
from simd.model.manifest import (
    Resume,
    RunManifest,
    ShardInfo,
    read_manifest,
    reserve_space,
    scenario_hash,
    write_manifest,
)
from simd.model.scenario import DURATION_SLOS, Scenario
from simd.plan.payloads import check_plugins
from simd.plan.replay import expand_replays
from simd.plan.schedule import Plan, plan_counts
from simd.plan.shard import Shard, check_start_at
from simd.runtime.broker import EmbeddedBroker
from simd.runtime.clock_sync import clock_at, clock_sync
from simd.runtime.live import ALERT_WINDOW_S, LiveState, StatusServer
from simd.runtime.messages import (
    Begin,
    Connected,
    Done,
    Failed,
    Progress,
    Ready,
    Resumed,
    Start,
    Stop,
    WorkerSpec,
)
from simd.runtime.preload import worker_context
from simd.runtime.progress import ProgressView
from simd.transports import check_target, does_real_io, scheme_of

READY_TIMEOUT_S = 120.0
START_MARGIN_NS = 300_000_000  # t=0 lies this far after the last worker said Ready (no I/O)
BEGIN_MARGIN_NS = 100_000_000  # t=0 lies this far after the last worker said Connected
# Begin goes out anyway this long after Start: a worker's connect returns once every device
# has tried (each try bounded by its connect_timeout), so only a transport that hangs needs it;
# what is still connecting then is late to t=0, and the schedule lag says so
CONNECT_WAIT_MAX_NS = 120_000_000_000


def usable_cores() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def new_run_id(name: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{secrets.token_hex(2)}"


@dataclass
class RunOutcome:
    run_dir: Path
    state: str  # completed | stopped | aborted | failed
    plan: Plan
    manifest: RunManifest | None = None

    @property
    def problems(self) -> str:
        """Each failed worker and why, in one line ("" when none failed)."""
        return "; ".join(f"worker {w}: {m}" for w, m in sorted(self.failures.items()))

    done: dict[int, Done] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)
    aborted_by: str | None = None  # "a second SIGINT": the user stopped it at once
    # run(keep_serving=True): the status server and dashboard, still up; the caller closes it
    server: StatusServer | None = None


class _Signals:
    def __init__(self) -> None:
        self.count = 0
        self.last = ""  # the name of the latest signal (SIGINT, SIGTERM)
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        self.last = signal.Signals(signum).name

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def run(
    scenario: Scenario,
    *,
    scenario_path: Path,
    runs_dir: Path,
    run_id: str | None = None,
    workers: int | None = None,
    clock: str | None = None,
    progress: bool | float = True,
    status_port: int | None = None,
    status_host: str = "127.0.0.1",
    shard: Shard | None = None,
    start_at_ns: int | None = None,
    stop_when: Callable[[LiveState], str | None] | None = None,
    keep_serving: bool = False,
) -> RunOutcome:
    """Run a scenario to its end (or until a signal); return how it ended. Logs are the result.

    `target = "embedded"` starts a broker (simd.runtime.broker) for the run's lifetime.
    `status_port`: where /status and /metrics listen on `status_host` (0: a free port; default [run]
    status_port, negative: not served). `shard`: run only that shard's devices, into
    RUNS/ID/shard-I/, with t=0 at `start_at_ns` (wall-clock epoch ns, required then).
    `stop_when(live)`, asked about once a second, stops the run (as a signal would) when it
    returns a reason. `progress`: live progress on stderr (simd.runtime.progress), or, as a
    number, the seconds between its plain lines when stderr is not a terminal. `keep_serving`:
    the status server and its dashboard stay up after the run (the outcome's `server`, for the
    caller to close: `simd run --linger`)."""
    if shard is not None:
        if start_at_ns is None:
            raise UserError("--shard needs --start-at: every shard must share one t=0")
        if scheme_of(scenario.target) == "embedded":
            raise UserError(
                "--shard: target embedded would give every shard a broker of its own; "
                "point all shards at one broker with --target"
            )
        if shard.count > scenario.device_count:
            raise UserError(
                f"--shard {shard.label}: the fleet has {scenario.device_count} devices; "
                f"use at most {scenario.device_count} shards"
            )
    if start_at_ns is not None:
        check_start_at(start_at_ns)
    go = functools.partial(
        _run,
        scenario,
        scenario_path=scenario_path,
        runs_dir=runs_dir,
        run_id=run_id,
        workers=workers,
        clock=clock,
        progress=progress,
        status_port=_port(scenario, status_port),
        status_host=status_host,
        shard=shard,
        start_at_ns=start_at_ns,
        stop_when=stop_when,
        keep_serving=keep_serving,
    )
    check_clock(clock or scenario.run.clock, scenario.target)
    return _with_target(scenario, go)


def resume(
    run_dir: Path,
    *,
    progress: bool | float = True,
    status_port: int | None = None,
    status_host: str = "127.0.0.1",
    keep_serving: bool = False,
) -> RunOutcome:
    """Continue a run whose supervisor died (a reboot, kill -9): every worker resumes from its
    own log on the run's own timeline; publishes due while the run was down are logged missed."""
    if not (run_dir / "run.json").is_file():
        raise UserError(f"{run_dir}: not a run folder (no run.json)")
    manifest = read_manifest(run_dir)
    if manifest.state in ("completed", "stopped"):
        raise UserError(f"{run_dir}: the run {manifest.state} already; nothing to resume")
    scenario = manifest.scenario_model
    # a replay group's recording must be the one the run started with (run.json pins its hash)
    scenario = expand_replays(scenario, run_dir, str(run_dir / "run.json"))
    go = functools.partial(
        _run,
        scenario,
        scenario_path=Path(manifest.scenario_path),
        runs_dir=run_dir.parent,
        run_id=manifest.run_id,
        workers=None,
        clock=None,
        progress=progress,
        resume=manifest,
        status_port=_port(scenario, status_port),
        status_host=status_host,
        resume_dir=run_dir,
        keep_serving=keep_serving,
    )
    return _with_target(scenario, go)


def _port(scenario: Scenario, flag: int | None) -> int | None:
    port = scenario.run.status_port if flag is None else flag
    return None if port < 0 else port


def _with_target(scenario: Scenario, go: Any) -> RunOutcome:
    if scheme_of(scenario.target) != "embedded":
        return go(scenario.target)
    with EmbeddedBroker() as broker:
        if not broker.mqtt5 and any(g.mqtt.version == "5" for g in scenario.fleet):
            raise UserError(
                f"the embedded broker here is {broker.kind}, which speaks MQTT 3.1.1 only; "
                'install mosquitto for MQTT 5 or set mqtt.version = "3.1.1"'
            )
        return go(broker.url, broker=broker.kind)


def check_clock(clock: str, target: str) -> None:
    """UserError for a clock the target cannot run on (virtual needs a target without real I/O)."""
    if parse_clock(clock).kind == "virtual" and does_real_io(target):
        raise UserError(
            f"clock virtual: target {target!r} does real I/O; "
            "the virtual clock works only with null: and sim: (use real or scaled:N)"
        )


ALERT_TICK_S = 1.0
DEFAULT_PROGRESS_S = 10.0  # without a terminal: a progress line this often
CRASH_LOOP = 3  # a worker that dies this many times in a row without progress is not restarted


@dataclass
class _Worker:
    """One worker slot: its current process and pipe, and how it has fared."""

    spec: WorkerSpec
    proc: Any = None
    conn: Connection | None = None
    restarts: int = 0
    ready: bool = False
    connected: bool = False  # said Connected after a provisional Start
    progressed: bool = False  # sent progress since it was (re)started
    restarted_at: float = 0.0  # time.monotonic() of the last restart
    fast_deaths: int = 0  # deaths in a row without progress


def _prepare_manifest(
    scenario: Scenario,
    target_url: str,
    *,
    scenario_path: Path,
    runs_dir: Path,
    run_id: str | None,
    workers: int | None,
    clock_text: str,
    broker: str | None,
    shard: Shard | None = None,
    start_at_ns: int | None = None,
) -> tuple[Path, RunManifest, Plan]:
    spec = parse_clock(clock_text)
    cores = usable_cores()
    n = scenario.device_count
    lo, hi = shard.devices(n) if shard is not None else (0, n)
    n_workers = (workers if workers is not None else scenario.run.workers) or len(cores)
    n_workers = max(1, min(n_workers, hi - lo))
    plan = plan_counts(scenario)
    run_id = run_id or new_run_id(scenario.name)
    run_dir = runs_dir / run_id
    if shard is not None:
        if (run_dir / "run.json").exists() and read_manifest(run_dir).shards is None:
            raise UserError(f"{run_dir}: a run of its own, not a sharded run (another --run-id)")
        run_dir = run_dir / shard.folder
    if (run_dir / "run.json").exists():
        raise UserError(f"{run_dir}: a run with this id exists already (choose another --run-id)")
    (run_dir / "events").mkdir(parents=True, exist_ok=True)
    reserve_space(run_dir)
    scenario_json = scenario.model_dump(mode="json")
    slices = [
        (lo + w * (hi - lo) // n_workers, lo + (w + 1) * (hi - lo) // n_workers)
        for w in range(n_workers)
    ]
    manifest = RunManifest(
        run_id=run_id,
        simd_version=__version__,
        scenario_path=str(scenario_path),
        scenario_hash=scenario_hash(scenario_json),
        scenario=scenario_json,
        seed=scenario.seed,
        target=scenario.target,
        target_url=target_url,
        embedded_broker=broker,
        clock=spec.label,
        clock_text=clock_text,
        clock_scale=spec.scale,
        workers=n_workers,
        slices=slices,
        duration_ns=scenario.duration_ns,
        plan=plan.to_json(),
        state="starting",
        started_wall_ns=time.time_ns(),
        t0_epoch_ns=start_at_ns,
        host=socket.gethostname(),
        clock_sync=clock_sync(),
    )
    if shard is not None:
        manifest.shard = ShardInfo(
            index=shard.index,
            count=shard.count,
            devices=(lo, hi),
            planned_publishes=plan_counts(scenario, devices=(lo, hi)).total_publishes,
            start_at_ns=start_at_ns,
        )
    write_manifest(run_dir, manifest)
    return run_dir, manifest, plan


def _run(
    scenario: Scenario,
    target_url: str,
    *,
    scenario_path: Path,
    runs_dir: Path,
    run_id: str | None,
    workers: int | None,
    clock: str | None,
    progress: bool | float,
    broker: str | None = None,
    resume: RunManifest | None = None,
    status_port: int | None = 0,
    status_host: str = "127.0.0.1",
    shard: Shard | None = None,
    start_at_ns: int | None = None,
    resume_dir: Path | None = None,
    stop_when: Callable[[LiveState], str | None] | None = None,
    keep_serving: bool = False,
) -> RunOutcome:
    clock_text = clock or scenario.run.clock
    check_plugins([m for g in scenario.fleet for m in g.resolved_messages()], scenario_path.parent)
    check_target(scenario, scenario.target, scenario_path.parent)
    if resume is None:
        run_dir, manifest, plan = _prepare_manifest(
            scenario,
            target_url,
            scenario_path=scenario_path,
            runs_dir=runs_dir,
            run_id=run_id,
            workers=workers,
            clock_text=clock_text,
            broker=broker,
            shard=shard,
            start_at_ns=start_at_ns,
        )
    else:
        manifest = resume
        run_dir = resume_dir or runs_dir / manifest.run_id
        plan = plan_counts(scenario)
        resumed = Resume(wall_ns=time.time_ns(), from_state=manifest.state)
        manifest.resumes = [*manifest.resumes, resumed]
        manifest.state, manifest.target_url = "resuming", target_url
        manifest.embedded_broker = broker
        clock_text = manifest.clock_label
        write_manifest(run_dir, manifest)
    supervision = _Supervision(
        scenario, manifest, run_dir, plan, clock_text, progress, status_port, status_host
    )
    supervision.stop_when = stop_when
    supervision.keep_serving = keep_serving
    return supervision.run()


class _Supervision:
    """Starts the workers, watches them (restarting one that dies), serves /status and
    /metrics, stops them on a signal, and records how the run ended in run.json."""

    def __init__(
        self,
        scenario: Scenario,
        manifest: RunManifest,
        run_dir: Path,
        plan: Plan,
        clock_text: str,
        progress: bool | float,
        status_port: int | None,
        status_host: str = "127.0.0.1",
    ) -> None:
        self.scenario = scenario
        self.manifest = manifest
        self.run_dir = run_dir
        self.plan = plan
        self.virtual = parse_clock(clock_text).kind == "virtual"
        self.resuming = manifest.state == "resuming"
        self.outcome = RunOutcome(run_dir, "failed", plan, manifest)
        self.latest: dict[int, Progress] = {}
        shard = manifest.shard
        self.ctx = worker_context()
        cores = usable_cores()
        n_workers = manifest.workers
        # what a transport knows of the whole run (the sim splits its capacity by it): every
        # shard is taken to run as many workers as this one
        run_workers = n_workers * (shard.count if shard else 1)
        self.workers = {
            w: _Worker(
                WorkerSpec(
                    run_id=manifest.run_id,
                    run_dir=str(run_dir),
                    scenario=manifest.scenario,
                    scenario_dir=str(Path(manifest.scenario_path).parent.resolve()),
                    target=manifest.target_url,
                    clock=clock_text,
                    worker=w,
                    workers=run_workers,
                    lo=lo,
                    hi=hi,
                    cpu=cores[w % len(cores)] if n_workers <= len(cores) else None,
                )
            )
            for w, (lo, hi) in enumerate(manifest.slices)
        }
        self.live = _live_state(scenario, manifest, plan)
        every = progress if not isinstance(progress, bool) else DEFAULT_PROGRESS_S
        self.bar = ProgressView(self.live, scenario, bool(progress), float(every))
        self.live.on_alert = self._alert
        self.server: StatusServer | None = None
        if status_port is not None:
            try:
                self.server = StatusServer(self.live, status_port, status_host)
            except OSError as exc:
                raise UserError(
                    f"--status-port {status_port}: cannot listen on {status_host} ({exc.strerror})"
                ) from None
            manifest.status_url = self.server.url
            sys.stderr.write(
                f"simd: live status on {self.server.url}/status and /metrics, the dashboard "
                f"on {self.server.url}/\n"
            )
        self.t0: int | None = None
        # t=0 until every worker has connected: the guess their clocks run on, and when Begin
        # goes out even if some have not (the wall-clock epochs; see _connect_first)
        self.t0_guess: int | None = None
        self.begin_by: int | None = None
        self.clock_at_t0: dict[str, int] | None = None  # set at t=0 by _mark_t0
        self.t0_thread: threading.Thread | None = None
        self.stop_when: Callable[[LiveState], str | None] | None = None
        self.stop_reason: str | None = None  # set once the run is being stopped
        self.keep_serving = False  # leave the server up, in the outcome, for the caller

    def _alert(self, a: Any, began: bool) -> None:
        def fmt(v: float) -> str:
            return f"{v / 1e6:.1f} ms" if a.unit == "ns" else f"{v:.4g}"

        if began:
            sys.stderr.write(
                f"\nsimd: slo breach: {a.slo} {fmt(a.observed)} > {fmt(a.threshold)} "
                f"(last {ALERT_WINDOW_S:g} s, at {a.since_s:.1f} s)\n"
            )
        else:
            sys.stderr.write(f"\nsimd: slo recovered: {a.slo} at {a.until_s:.1f} s\n")

    def _spawn(self, w: int) -> None:
        from simd.runtime.worker import worker_main

        slot = self.workers[w]
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(
            target=worker_main, args=(slot.spec, child), name=f"simd-worker-{w}", daemon=True
        )
        p.start()
        child.close()
        slot.proc, slot.conn, slot.ready, slot.progressed = p, parent, False, False
        slot.connected = False
        self.live.set_worker(w, "starting" if self.t0 is None else "restarting", pid=p.pid)

    def _wait_ready(self, ws: list[int], sigs: _Signals) -> bool:
        """Until each worker in `ws` says Ready; False if interrupted or out of time."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(self.workers[w].ready for w in ws):
            if sigs.count or time.monotonic() > deadline:
                return False
            pending = [self.workers[w] for w in ws if not self.workers[w].ready]
            waitables: list[Any] = [s.conn for s in pending]
            waitables += [s.proc.sentinel for s in pending]
            for obj in wait(waitables, timeout=0.5):
                slot = next((s for s in pending if s.conn is obj), None)
                if slot is None:
                    continue
                try:
                    msg = slot.conn.recv()  # type: ignore[union-attr]
                except EOFError:
                    continue
                if isinstance(msg, Ready):
                    slot.ready = True
            dead = [w for w in ws if self.workers[w].proc.exitcode is not None]
            dead = [w for w in dead if not self.workers[w].ready]
            if dead:
                raise RunError(
                    f"worker {dead[0]} exited during startup "
                    f"(code {self.workers[dead[0]].proc.exitcode})"
                )
        return True

    def run(self) -> RunOutcome:
        served = False
        try:
            outcome = self._run()
            if self.keep_serving and self.server is not None:
                outcome.server, served = self.server, True
            return outcome
        finally:
            if self.server is not None and not served:
                self.server.close()

    def _run(self) -> RunOutcome:
        manifest, outcome = self.manifest, self.outcome
        with _Signals() as sigs:
            for w in self.workers:
                self._spawn(w)
            if not self._wait_ready(list(self.workers), sigs):
                for slot in self.workers.values():
                    _send(slot.conn, Stop("startup interrupted"))  # type: ignore[arg-type]
                _join([s.proc for s in self.workers.values()], kill=True)
                outcome.state = "aborted"
                if sigs.count:  # else the workers were not ready in time
                    outcome.aborted_by = manifest.aborted_by = f"{sigs.last} during start-up"
                else:
                    for w, slot in self.workers.items():
                        if not slot.ready:
                            outcome.failures[w] = f"not ready within {READY_TIMEOUT_S:g} s"
                manifest.state, manifest.ended_wall_ns = "aborted", time.time_ns()
                self._save()
                return outcome
            ready_ns = time.time_ns()
            if not self.resuming:
                manifest.ready_wall_ns = ready_ns
            if manifest.t0_epoch_ns:
                # the run's own t=0 (a resumed run's timeline holds; shards share --start-at)
                if not self.resuming and ready_ns > manifest.t0_epoch_ns:
                    sys.stderr.write(
                        f"simd: warning: ready {(ready_ns - manifest.t0_epoch_ns) / 1e9:.1f} s "
                        "after --start-at: the first publishes go out late (the schedule lag "
                        "shows it)\n"
                    )
                self._fix_t0(manifest.t0_epoch_ns)
            elif does_real_io(self.scenario.target) and not self.virtual:
                self._connect_first(ready_ns)
            else:
                self._fix_t0(time.time_ns() + START_MARGIN_NS)
            for slot in self.workers.values():
                slot.conn.send(self._start())  # type: ignore[union-attr]
            self._watch(sigs)
            self.bar.show(final=True)
            _join([s.proc for s in self.workers.values()], kill=False)
        return self._finish()

    def _connect_first(self, now_ns: int) -> None:
        """Two phases: the workers connect on a guessed t=0 (now), and t=0 is chosen once all
        of them say Connected (or when the wait for them is over: see _begin)."""
        self.t0_guess = now_ns
        self.begin_by = now_ns + CONNECT_WAIT_MAX_NS

    def _start(self) -> Start:
        if self.t0 is not None:
            return Start(self.t0)
        assert self.t0_guess is not None
        return Start(self.t0_guess, provisional=True)

    def _fix_t0(self, t0: int) -> None:
        """t=0 is at this wall-clock epoch: the run is running from there."""
        self.t0 = t0
        manifest = self.manifest
        manifest.state, manifest.t0_epoch_ns = "running", t0
        self._save()
        self.live.state = "running"
        if not self.resuming:
            # this host's own wall clock (and monotonic clock) at t=0, for lining up shards
            # (read at once, with how late, when t=0 has passed already: a late start)
            self.t0_thread = threading.Thread(target=self._mark_t0, daemon=True)
            self.t0_thread.start()

    def _begin(self) -> None:
        """Every worker has connected (or the wait is over): t=0 a moment from now."""
        self._fix_t0(time.time_ns() + BEGIN_MARGIN_NS)
        assert self.t0 is not None
        for slot in self.workers.values():
            if slot.conn is not None and slot.ready:
                _send(slot.conn, Begin(self.t0))

    def _maybe_begin(self) -> None:
        if self.t0 is not None or self.stop_reason is not None:
            return
        assert self.begin_by is not None
        if all(s.connected for s in self.workers.values()) or time.time_ns() >= self.begin_by:
            self._begin()

    def _watch(self, sigs: _Signals) -> None:
        outcome = self.outcome
        stop_sent = False
        next_tick = time.monotonic() + ALERT_TICK_S
        while True:
            if sigs.count >= 2:
                _join([s.proc for s in self.workers.values()], kill=True)
                outcome.state = "aborted"
                outcome.aborted_by = f"a second {sigs.last}"
                return
            if sigs.count == 1 and not stop_sent:
                self._stop_all("signal")
                stop_sent = True
            live = {w: s for w, s in self.workers.items() if s.conn is not None}
            waitables: list[Any] = [s.conn for s in live.values()]
            waitables += [s.proc.sentinel for s in live.values() if s.proc.exitcode is None]
            if not waitables:
                return
            for obj in wait(waitables, timeout=0.25):
                w = next((k for k, s in live.items() if s.conn is obj), None)
                if w is not None:
                    self._receive(w)
            for w, slot in live.items():
                if slot.proc.exitcode is None or slot.conn is None:
                    continue
                self._drain_pipe(w)
                slot.conn = None
                _make_sure_gone(slot.proc.pid)
                if w in outcome.done or w in outcome.failures:
                    self.live.set_worker(w, "done" if w in outcome.done else "failed")
                    continue
                # died without a word: restart it from its own log (even while stopping: it
                # logs what it owes, then stops), unless it has used its restarts or keeps
                # dying before it gets anywhere
                slot.fast_deaths = 0 if slot.progressed else slot.fast_deaths + 1
                crash_loop = slot.fast_deaths >= CRASH_LOOP
                if slot.restarts >= self.scenario.run.max_restarts or crash_loop:
                    outcome.failures[w] = f"worker {w} died (exit code {slot.proc.exitcode})" + (
                        f" after {slot.restarts} restarts" if slot.restarts else ""
                    )
                    if crash_loop:
                        outcome.failures[w] += (
                            f", {slot.fast_deaths} times in a row before reporting progress"
                        )
                    self.live.set_worker(w, "failed")
                    continue
                slot.restarts += 1
                sys.stderr.write(
                    f"\nsimd: worker {w} died (exit code {slot.proc.exitcode}); restarting it "
                    f"from its log (restart {slot.restarts})\n"
                )
                self.live.set_worker(w, "restarting", restart=True)
                slot.restarted_at = time.monotonic()
                self._spawn(w)  # its Ready is answered with Start in _handle
            self._maybe_begin()
            now = time.monotonic()
            if now >= next_tick:
                self.live.tick()
                next_tick = now + ALERT_TICK_S
                if self.stop_when is not None and not stop_sent:
                    why = self.stop_when(self.live)
                    if why:
                        sys.stderr.write(f"\nsimd: stopping the run: {why}\n")
                        self._stop_all(why)
                        stop_sent = True
            self.bar.show()
            if all(s.conn is None for s in self.workers.values()):
                return

    def _stop_all(self, reason: str) -> None:
        self._keep_the_guess()
        self.live.state = "stopping"
        self.stop_reason = reason
        for w, slot in self.workers.items():
            # a worker restarting is told once it has started (see _handle: Ready), so it
            # first logs what it owes; Stop before Start would leave that unlogged
            if w not in self.outcome.done and slot.conn is not None and slot.ready:
                _send(slot.conn, Stop(reason))

    def _keep_the_guess(self) -> None:
        """Stopped before t=0 was chosen: the workers' clocks stay on the guess, so it is t=0."""
        if self.t0 is None and self.t0_guess is not None:
            self._fix_t0(self.t0_guess)

    def _receive(self, w: int) -> None:
        slot = self.workers[w]
        try:
            msg = slot.conn.recv()  # type: ignore[union-attr]
        except (EOFError, OSError):
            return
        self._handle(w, msg)

    def _drain_pipe(self, w: int) -> None:
        conn = self.workers[w].conn
        if conn is None:
            return
        with contextlib.suppress(EOFError, OSError):
            while conn.poll():
                self._handle(w, conn.recv())

    def _handle(self, w: int, msg: object) -> None:
        outcome = self.outcome
        if isinstance(msg, Progress):
            self.workers[w].progressed = True
            self.latest[w] = msg
            self.live.progress(msg)
        elif isinstance(msg, Done):
            outcome.done[w] = msg
            end = self.scenario.duration_ns if msg.stopped_at_ns is None else msg.stopped_at_ns
            self.latest[w] = Progress(w, end, msg.sent, msg.completed, msg.errors, 0, msg.rows)
        elif isinstance(msg, Failed):
            outcome.failures[w] = msg.message
            # the run cannot complete as planned: the others stop cleanly (drain, flush, close)
            sys.stderr.write(f"\nsimd: worker {w} failed: {msg.message}; stopping the run\n")
            self._keep_the_guess()
            for k, slot in self.workers.items():
                if k != w and k not in outcome.done and slot.conn is not None and slot.ready:
                    _send(slot.conn, Stop("another worker failed"))
            self.stop_reason = "another worker failed"
        elif isinstance(msg, Resumed):
            took = time.monotonic() - self.workers[w].restarted_at
            where = (
                "walking its schedule from t=0"
                if msg.checkpoint_ns is None
                else f"from its checkpoint at t={msg.checkpoint_ns / 1e9:,.1f} s"
            )
            sys.stderr.write(
                f"simd: worker {w} resumed at t={msg.at_ns / 1e9:,.1f} s {where}, "
                f"{msg.rows_read:,} log rows read, {took:.2f} s after its restart\n"
            )
        elif isinstance(msg, Ready):  # a restarted worker: it joins the running timeline
            slot = self.workers[w]
            slot.ready = True
            if slot.conn is not None:
                _send(slot.conn, self._start())  # a provisional one while the others connect
                if self.stop_reason is not None:  # the run is stopping: resume, then stop
                    _send(slot.conn, Stop(self.stop_reason))
        elif isinstance(msg, Connected):
            self.workers[w].connected = True
            self._maybe_begin()

    def _mark_t0(self) -> None:
        self.clock_at_t0 = clock_at(self.t0)  # type: ignore[arg-type]

    def _finish(self) -> RunOutcome:
        outcome, manifest = self.outcome, self.manifest
        if self.t0_thread is not None and self.t0 is not None and time.time_ns() >= self.t0:
            self.t0_thread.join(timeout=5)  # t=0 has passed: its reading is due (a busy host)
        if self.clock_at_t0 is not None:
            manifest.clock_at_t0 = self.clock_at_t0
        for w, slot in self.workers.items():
            if w not in outcome.done and w not in outcome.failures and not outcome.aborted_by:
                outcome.failures[w] = f"worker {w} died (exit code {slot.proc.exitcode})"
        if outcome.state != "aborted":
            if outcome.failures:
                outcome.state = "failed"
            elif any(d.stopped_at_ns is not None for d in outcome.done.values()):
                outcome.state = "stopped"
            else:
                outcome.state = "completed"
        self.live.state = outcome.state
        stops = [d.stopped_at_ns for d in outcome.done.values() if d.stopped_at_ns is not None]
        if outcome.aborted_by:
            manifest.aborted_by = outcome.aborted_by
        manifest.state = outcome.state
        manifest.ended_wall_ns = time.time_ns()
        manifest.stopped_at_ns = max(stops) if stops else None
        manifest.worker_results = {
            str(w): (
                {
                    "state": "done",
                    "sent": d.sent,
                    "unsent": d.unsent,
                    "rows": d.rows,
                    "stopped_at_ns": d.stopped_at_ns,
                    "torn_tails": d.torn_tails,
                    "restarts": self.workers[w].restarts,
                }
                if (d := outcome.done.get(w))
                else {
                    "state": "failed",
                    "error": outcome.failures.get(w, "unknown"),
                    "exit_code": self.workers[w].proc.exitcode,
                    "restarts": self.workers[w].restarts,
                }
            )
            for w in self.workers
        }
        self._save()
        return outcome

    def _save(self) -> None:
        """run.json as it stands; a disk that refuses it is a warning (the logs are the
        result; the previous run.json stays)."""
        try:
            write_manifest(self.run_dir, self.manifest)
        except OSError as exc:
            sys.stderr.write(
                f"\nsimd: warning: cannot update {self.run_dir / 'run.json'} ({exc.strerror})\n"
            )


def _live_state(scenario: Scenario, manifest: RunManifest, plan: Plan) -> LiveState:
    from simd.plan.schedule import expected_series, series_window_ns
    from simd.plan.shape import compile_shape

    window = series_window_ns(scenario.duration_ns)
    slo = {}
    for name in ("latency_p99", "error_rate", "schedule_lag_p99"):
        v = getattr(scenario.slo, name)
        if v is not None:
            slo[name] = (float(v), "ns" if name in DURATION_SLOS else "ratio")
    shard = manifest.shard  # a shard serves its own share of the run
    devices = shard.devices if shard else None
    shape = compile_shape(scenario)
    spans = [shape.phase_span(i) for i in range(len(shape.phase_names))]
    return LiveState(
        run_id=manifest.run_id,
        scenario=scenario.name,
        duration_ns=scenario.duration_ns,
        planned_total=shard.planned_publishes if shard else plan.total_publishes,
        groups=[g.name for g in scenario.fleet],
        messages=[[m.name for m in g.resolved_messages()] for g in scenario.fleet],
        expected_cum=np.cumsum(expected_series(scenario, window, devices=devices)),
        window_ns=window,
        slo=slo,
        shard=f"{shard.index}/{shard.count}" if shard else "",
        target=manifest.target_url,
        phases=[(n, a / 1e9, b / 1e9) for n, (a, b) in zip(shape.phase_names, spans, strict=True)],
    )


GONE_WAIT_S = 5.0


def _make_sure_gone(pid: int) -> None:
    """A worker reported dead is gone before anything takes its place: a fork server that
    died (killed, out of memory) reports its workers dead, exit code 255, while they may still
    run and write their log; such a one is killed first (and waited for, at most GONE_WAIT_S;
    a zombie counts as gone)."""
    deadline = time.monotonic() + GONE_WAIT_S
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            state = None  # no such process (or no /proc: fall back on kill's answer)
        if state == "Z":
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.01)


def _send(c: Connection, msg: object) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):
        c.send(msg)


def _join(procs: list[Any], kill: bool) -> None:
    for p in procs:
        if kill and p.exitcode is None:
            p.kill()
    for p in procs:
        p.join(timeout=30)
