"""The supervisor: plans a run, starts one worker process per core, watches, stops, records.

It never touches events; the workers' logs are the result. Signals: the first SIGINT/SIGTERM
asks every worker to stop (they drain, flush and close); a second one kills them at once (their
logs stay readable up to the last whole frame).
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from simd._version import __version__
from simd.broker import EmbeddedBroker
from simd.clock import parse_clock
from simd.errors import RunError, UserError
from simd.manifest import scenario_hash, write_manifest
from simd.messages import Done, Failed, Progress, Ready, Start, Stop, WorkerSpec
from simd.payloads import check_plugins
from simd.scenario import Scenario
from simd.schedule import Plan, plan_counts
from simd.transports import does_real_io, scheme_of

READY_TIMEOUT_S = 120.0
START_MARGIN_NS = 300_000_000  # t=0 lies this far after the last worker said Ready
CONNECT_MARGIN_NS = 2_000_000  # plus this per device of the largest slice, for real I/O:
# workers connect their devices before t=0 (measured: mosquitto on loopback takes ~0.3 ms each)


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
    done: dict[int, Done] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)


class _Signals:
    def __init__(self) -> None:
        self.count = 0
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class ProgressLine:
    """One status line on stderr: rewritten in place on a terminal, every few seconds otherwise."""

    def __init__(self, total: int, duration_ns: int, enabled: bool) -> None:
        self.total = total
        self.duration = duration_ns
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.last_line = ""

    def show(self, latest: dict[int, Progress], final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self.last < (0.25 if self.tty else 5.0):
            return
        self.last = now
        sent = sum(p.sent for p in latest.values())
        done = sum(p.completed for p in latest.values())
        errors = sum(p.errors for p in latest.values())
        t = max(min((p.t_ns for p in latest.values()), default=0), 0)
        lag = max((p.lag_p99_ns for p in latest.values()), default=0)
        pct = 100.0 * sent / self.total if self.total else 100.0
        left = max(self.duration - t, 0)
        line = (
            f"{t / 1e9:7.1f}s elapsed, {left / 1e9:7.1f}s left  sent {sent:,}/{self.total:,}"
            f" ({pct:5.1f}%)  completed {done:,}  errors {errors:,}  lag p99 {lag / 1e6:6.2f} ms"
        )
        if line == self.last_line and not self.tty:
            return
        self.last_line = line
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if final else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def run(
    scenario: Scenario,
    *,
    scenario_path: Path,
    runs_dir: Path,
    run_id: str | None = None,
    workers: int | None = None,
    clock: str | None = None,
    progress: bool = True,
) -> RunOutcome:
    """Run a scenario to its end (or until a signal); return how it ended. Logs are the result.

    `target = "embedded"` starts a broker (simd.broker) for the run's lifetime."""
    go = functools.partial(
        _run,
        scenario,
        scenario_path=scenario_path,
        runs_dir=runs_dir,
        run_id=run_id,
        workers=workers,
        clock=clock,
        progress=progress,
    )
    check_clock(clock or scenario.run.clock, scenario.target)
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


def _run(
    scenario: Scenario,
    target_url: str,
    *,
    scenario_path: Path,
    runs_dir: Path,
    run_id: str | None,
    workers: int | None,
    clock: str | None,
    progress: bool,
    broker: str | None = None,
) -> RunOutcome:
    clock_text = clock or scenario.run.clock
    spec = parse_clock(clock_text)
    check_plugins([m for g in scenario.fleet for m in g.resolved_messages()])
    cores = usable_cores()
    n_workers = workers or scenario.run.workers or len(cores)
    n_workers = max(1, min(n_workers, scenario.device_count))
    plan = plan_counts(scenario)
    run_id = run_id or new_run_id(scenario.name)
    run_dir = runs_dir / run_id
    if (run_dir / "run.json").exists():
        raise UserError(f"{run_dir}: a run with this id exists already (choose another --run-id)")
    (run_dir / "events").mkdir(parents=True, exist_ok=True)
    scenario_json = scenario.model_dump(mode="json")
    n = scenario.device_count
    slices = [(w * n // n_workers, (w + 1) * n // n_workers) for w in range(n_workers)]
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "simd_version": __version__,
        "scenario_path": str(scenario_path),
        "scenario_hash": scenario_hash(scenario_json),
        "scenario": scenario_json,
        "seed": scenario.seed,
        "target": scenario.target,
        "target_url": target_url,
        "embedded_broker": broker,
        "clock": spec.label,
        "clock_scale": spec.scale,
        "workers": n_workers,
        "slices": slices,
        "duration_ns": scenario.duration_ns,
        "plan": plan.to_json(),
        "state": "starting",
        "started_wall_ns": time.time_ns(),
        "t0_epoch_ns": None,
    }
    write_manifest(run_dir, manifest)

    ctx = mp.get_context("spawn")
    procs: list[Any] = []
    conns: list[Connection] = []
    for w, (lo, hi) in enumerate(slices):
        parent, child = ctx.Pipe()
        wspec = WorkerSpec(
            run_id=run_id,
            run_dir=str(run_dir),
            scenario=scenario_json,
            scenario_dir=str(scenario_path.parent.resolve()),
            target=target_url,
            clock=clock_text,
            worker=w,
            workers=n_workers,
            lo=lo,
            hi=hi,
            cpu=cores[w % len(cores)] if n_workers <= len(cores) else None,
        )
        from simd.worker import worker_main

        p = ctx.Process(
            target=worker_main, args=(wspec, child), name=f"simd-worker-{w}", daemon=True
        )
        p.start()
        child.close()
        procs.append(p)
        conns.append(parent)

    outcome = RunOutcome(run_dir, "failed", plan)
    latest: dict[int, Progress] = {}
    bar = ProgressLine(plan.total_publishes, scenario.duration_ns, progress)
    with _Signals() as sigs:
        ready: set[int] = set()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while len(ready) < n_workers:
            if sigs.count or time.monotonic() > deadline:
                for c in conns:
                    _send(c, Stop("startup interrupted"))
                _join(procs, kill=True)
                manifest.update(state="aborted", ended_wall_ns=time.time_ns())
                write_manifest(run_dir, manifest)
                outcome.state = "aborted"
                return outcome
            for c in wait([*conns, *(p.sentinel for p in procs)], timeout=0.5):
                if isinstance(c, Connection):
                    try:
                        msg = c.recv()
                    except EOFError:
                        continue
                    if isinstance(msg, Ready):
                        ready.add(msg.worker)
            dead = [w for w, p in enumerate(procs) if p.exitcode is not None and w not in ready]
            if dead:
                _join(procs, kill=True)
                raise RunError(
                    f"worker {dead[0]} exited during startup (code {procs[dead[0]].exitcode})"
                )
        margin = START_MARGIN_NS
        if does_real_io(scenario.target):
            biggest = max(hi - lo for lo, hi in slices)
            margin += min(CONNECT_MARGIN_NS * biggest, 120_000_000_000)
        t0 = time.time_ns() + margin
        manifest.update(state="running", t0_epoch_ns=t0)
        write_manifest(run_dir, manifest)
        for c in conns:
            c.send(Start(t0))

        stop_sent = False
        open_conns = dict(enumerate(conns))
        while True:
            if sigs.count >= 2:
                _join(procs, kill=True)
                outcome.state = "aborted"
                break
            if sigs.count == 1 and not stop_sent:
                for c in open_conns.values():
                    _send(c, Stop("signal"))
                stop_sent = True
            waitables: list[Any] = [*open_conns.values()]
            waitables += [p.sentinel for p in procs if p.exitcode is None]
            if not waitables:
                break
            for ready_obj in wait(waitables, timeout=0.25):
                if not isinstance(ready_obj, Connection):
                    continue
                w = next(k for k, c in open_conns.items() if c is ready_obj)
                try:
                    msg = ready_obj.recv()
                except (EOFError, OSError):
                    del open_conns[w]
                    continue
                if isinstance(msg, Progress):
                    latest[w] = msg
                elif isinstance(msg, Done):
                    outcome.done[w] = msg
                    end = scenario.duration_ns if msg.stopped_at_ns is None else msg.stopped_at_ns
                    latest[w] = Progress(w, end, msg.sent, msg.completed, msg.errors, 0, msg.rows)
                elif isinstance(msg, Failed):
                    outcome.failures[w] = msg.message
            bar.show(latest)
            if all(p.exitcode is not None for p in procs) and not open_conns:
                break
            if all(p.exitcode is not None for p in procs):
                # drain anything still buffered in the pipes, then finish
                for w, c in list(open_conns.items()):
                    while c.poll():
                        try:
                            msg = c.recv()
                        except EOFError:
                            break
                        if isinstance(msg, Done):
                            outcome.done[w] = msg
                        elif isinstance(msg, Failed):
                            outcome.failures[w] = msg.message
                    del open_conns[w]
        bar.show(latest, final=True)
        _join(procs, kill=False)

    for w, p in enumerate(procs):
        if w not in outcome.done and w not in outcome.failures:
            outcome.failures[w] = f"worker {w} died (exit code {p.exitcode})"
    if outcome.state != "aborted":
        if outcome.failures:
            outcome.state = "failed"
        elif any(d.stopped_at_ns is not None for d in outcome.done.values()):
            outcome.state = "stopped"
        else:
            outcome.state = "completed"
    stops = [d.stopped_at_ns for d in outcome.done.values() if d.stopped_at_ns is not None]
    manifest.update(
        state=outcome.state,
        ended_wall_ns=time.time_ns(),
        stopped_at_ns=max(stops) if stops else None,
        worker_results={
            str(w): (
                {
                    "state": "done",
                    "sent": d.sent,
                    "unsent": d.unsent,
                    "rows": d.rows,
                    "stopped_at_ns": d.stopped_at_ns,
                    "torn_tails": d.torn_tails,
                }
                if (d := outcome.done.get(w))
                else {
                    "state": "failed",
                    "error": outcome.failures.get(w, "unknown"),
                    "exit_code": procs[w].exitcode,
                }
            )
            for w in range(n_workers)
        },
    )
    write_manifest(run_dir, manifest)
    return outcome


def _send(c: Connection, msg: object) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):
        c.send(msg)


def _join(procs: list[Any], kill: bool) -> None:
    for p in procs:
        if kill and p.exitcode is None:
            p.kill()
    for p in procs:
        p.join(timeout=30)
