"""The worker process: one trio run over one contiguous slice of the fleet.

The schedule (simd.plan.schedule) says what is due; this shell sleeps until it is, builds payloads,
hands batches to the transport and keeps the event buffer flushed to the log. It reads time only
from trio (RunClock); wall time is used only for flush cadence and progress, never for events.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import trio

from simd.clock import RunClock, parse_clock, trio_clock
from simd.errors import SimdError, UserError, first_leaf
from simd.log.eventlog import SegmentWriter
from simd.log.events import (
    MISSED,
    NOT_SENT_STATUSES,
    NULL_NS,
    PUBLISH,
    TIME_COLUMNS,
    UNSENT,
    EventBuffer,
)
from simd.log.ragged import Ragged, scatter_rows
from simd.model.scenario import Scenario
from simd.plan.payloads import PayloadContext, PayloadGenerator, make_generator
from simd.plan.schedule import Chunk, SliceSchedule, device_ids, layout_groups
from simd.runtime.checkpoint import (
    Checkpoint,
    Checkpointer,
    cursor_path,
    restore_checkpoint,
)
from simd.runtime.live_stats import LiveStats
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
from simd.runtime.resources import rss_bytes, sample
from simd.runtime.resume import MISSED_TEXT, LogState, owed_rows, read_log_state
from simd.transports import (
    DeviceSet,
    PublishBatch,
    SelfPacing,
    TransportContext,
    open_transport,
)

TARGET_CHUNK_EVENTS = 32768  # events per schedule chunk: big enough to vectorise, small in memory
MAX_BATCH = 8192  # publishes handed to a transport per wake-up
VIRTUAL_WINDOW_NS = 5_000_000_000  # virtual clock: a wake-up sends what is due in the next 5 s
PROGRESS_EVERY_S = 0.5
TOP_ERRORS = 20  # error texts a progress message carries, the most frequent first
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
DRAIN_GRACE_S = 1.0

# a frame as the event buffer hands it to its sink: columns, rows, new error texts, samples
_Frame = tuple[dict[str, np.ndarray], int, dict[int, str], list[tuple[int, int, int, int]]]
RESUME_CHUNK_FACTOR = 16  # a restart walks the schedule to where it resumes in bigger chunks


class SliceRunner:
    """Runs one slice; built inside trio.run."""

    def __init__(
        self,
        spec: WorkerSpec,
        scenario: Scenario,
        t0_epoch_ns: int,
        conn: Connection | None,
        provisional: bool = False,
    ) -> None:
        self.spec = spec
        self.scenario = scenario
        self.conn = conn
        self.clock_spec = parse_clock(spec.clock)
        self.virtual = self.clock_spec.kind == "virtual"
        # a provisional t=0 (real clocks): connect, say Connected, and wait for Begin's t=0
        provisional = provisional and not self.virtual and conn is not None
        self.clock = RunClock(self.clock_spec, t0_epoch_ns, provisional)
        self.begun = trio.Event()
        self.begin_at: int | None = None  # Begin's t=0, once it came
        # frames logged before Begin, held until their times can be moved to the real t=0
        self.held: list[_Frame] | None = [] if provisional else None
        self.duration = scenario.duration_ns
        events_dir = Path(spec.run_dir) / "events"
        resume = any(events_dir.glob(f"w{spec.worker:03d}-*.simlog"))
        self.layouts = layout_groups(scenario)
        group_of = np.zeros(spec.hi - spec.lo, dtype=np.int64)
        for lay in self.layouts:
            a, b = max(spec.lo, lay.offset), min(spec.hi, lay.offset + lay.count)
            if a < b:
                group_of[a - spec.lo : b - spec.lo] = lay.index
        n_messages = max(len(g.resolved_messages()) for g in scenario.fleet)
        self.schedule = SliceSchedule(scenario, spec.lo, spec.hi)
        n_phases = len(self.schedule.shape.phase_names)
        self.live = LiveStats(group_of, spec.lo, len(self.layouts), n_messages, n_phases)
        self.closed = any(
            lay.closed and lay.offset < spec.hi and spec.lo < lay.offset + lay.count
            for lay in self.layouts
        )
        # checkpoints, unless closed-model users continue their seqs from the whole log
        cursor = cursor_path(events_dir, spec.worker)
        key = (spec.run_id, spec.worker, spec.lo, spec.hi)
        self.checkpoints = None if self.closed else Checkpointer(cursor, *key)
        self.checkpoint: Checkpoint | None = None  # where a restarted worker takes up
        if resume and self.checkpoints is not None:
            self.checkpoint = restore_checkpoint(cursor, key, self.schedule, self.live)
        start = self.checkpoint.position if self.checkpoint else None
        self.writer = SegmentWriter(
            events_dir,
            spec.run_id,
            spec.worker,
            segment_bytes=scenario.run.segment_bytes,
            fsync=scenario.run.fsync,
            resume=resume,
            resume_from=start,
        )
        self.log = EventBuffer(self._sink)
        self.log.errors.learn(self.writer.errors_known)
        # a restarted worker: what its log already holds (and the live counters it implies)
        self.resumed: LogState | None = None
        if resume:
            self.resumed = read_log_state(
                sorted(events_dir.glob(f"w{spec.worker:03d}-*.simlog")),
                spec.lo,
                spec.hi,
                observe=self.live.observe,
                start=start,
                since_ns=self.checkpoint.horizon_ns if self.checkpoint else None,
            )
            self.live.take_interval()
        self._build_messages()
        first_seq = None
        if self.resumed is not None:
            first_seq = self.resumed.max_seq + 1
        self.transport = open_transport(
            spec.target,
            TransportContext(
                scenario,
                spec.worker,
                spec.workers,
                self.log,
                self.clock,
                Path(spec.scenario_dir),
                pacing=SelfPacing(self._render_one, first_seq),
            ),
        )
        self.stop_event = trio.Event()
        st = self.live.status.sum(axis=0)
        self.sent = int(st.sum() - st[list(NOT_SENT_STATUSES)].sum())
        self.unsent = int(st[UNSENT])
        self.stop_requested = False
        self.lags: list[np.ndarray] = []
        self.flush_s = scenario.run.flush_interval / 1e9

    def _build_messages(self) -> None:
        base = Path(self.spec.scenario_dir)
        self.generators: dict[tuple[int, int], PayloadGenerator] = {}
        max_msgs = max(len(g.resolved_messages()) for g in self.scenario.fleet)
        self.qos = np.zeros((len(self.scenario.fleet), max_msgs), dtype=np.uint8)
        self.offsets = np.array([lay.offset for lay in self.layouts], dtype=np.int64)
        ids_all: list[str] = []
        for gi, (group, layout) in enumerate(zip(self.scenario.fleet, self.layouts, strict=True)):
            a = max(self.spec.lo, layout.offset)
            b = min(self.spec.hi, layout.offset + layout.count)
            # ids for the whole group (payloads index them by in-group position)
            local_ids = device_ids(group, range(layout.count)) if a < b else []
            ids_all += local_ids[a - layout.offset : b - layout.offset] if a < b else []
            table = (
                Ragged.from_list([s.encode() for s in local_ids]) if a < b else Ragged.from_list([])
            )
            for mi, msg in enumerate(group.resolved_messages()):
                self.qos[gi, mi] = msg.qos or 0
                if a < b:
                    assert msg.payload is not None
                    self.generators[(gi, mi)] = make_generator(
                        msg.payload,
                        seed=self.scenario.seed,
                        group=group.name,
                        message=msg.name,
                        ids=table,
                        base=base,
                        replay=layout.replay,
                    )
        dev = np.arange(self.spec.lo, self.spec.hi, dtype=np.int64)
        grp = (np.searchsorted(self.offsets, dev, side="right") - 1).astype(np.int16)
        self.devices = DeviceSet(dev, grp, ids_all)

    def _render_one(self, gi: int, local: int, seq: int, t_ns: int) -> tuple[int, int, bytes]:
        """One request of a closed-model user: (message, phase, payload) for (device, seq)."""
        lay = self.layouts[gi]
        loc = np.array([local], dtype=np.int64)
        s = np.array([seq], dtype=np.int64)
        msg = seq % lay.steps if lay.steps > 1 else int(lay.message_of(loc, s)[0])
        phase = int(self.schedule.shape.phase_of(np.array([max(t_ns, 0)]))[0])
        ctx = PayloadContext(
            local=loc,
            seq=s // lay.steps,
            t_intended=np.array([t_ns], dtype=np.int64),
            t0_epoch_ns=self.clock.epoch_ns,
        )
        return msg, phase, self.generators[(gi, msg)].render(ctx).item(0)

    def _payloads(self, c: Chunk, i: int, j: int) -> Ragged:
        group = c.group[i:j]
        msg = c.message[i:j]
        key = group.astype(np.int32) * 256 + msg
        uniq = np.unique(key)

        def render(rows: slice | np.ndarray, k: int) -> Ragged:
            gi, mi = divmod(int(k), 256)
            seq = c.seq[i:j][rows]
            steps = self.layouts[gi].steps
            ctx = PayloadContext(
                local=c.device[i:j][rows] - self.offsets[gi],
                seq=seq // steps if steps > 1 else seq,  # a journey's steps share its id
                t_intended=c.t_intended[i:j][rows],
                t0_epoch_ns=self.clock.epoch_ns,
            )
            return self.generators[(gi, mi)].render(ctx)

        if len(uniq) == 1:
            return render(slice(None), int(uniq[0]))
        pieces = []
        for k in uniq.tolist():
            rows = np.nonzero(key == k)[0]
            pieces.append((rows, render(rows, k)))
        return scatter_rows(j - i, pieces)

    async def _send(self, c: Chunk, i: int, j: int, now: int) -> None:
        t_int = c.t_intended[i:j]
        t_sent = t_int.copy() if self.virtual else np.full(j - i, now, dtype=np.int64)
        batch = PublishBatch(
            device=c.device[i:j],
            seq=c.seq[i:j],
            t_intended=t_int,
            t_sent=t_sent,
            phase=c.phase[i:j],
            message=c.message[i:j],
            group=c.group[i:j],
            qos=self.qos[c.group[i:j], c.message[i:j]],
            payload=self._payloads(c, i, j),
        )
        await self.transport.publish(batch)
        self.sent += j - i
        if not self.virtual:
            self.lags.append(now - t_int)

    def _chunk_span_ns(self) -> int:
        rate = 0.0
        for lay in self.layouts:
            n = max(0, min(self.spec.hi, lay.offset + lay.count) - max(self.spec.lo, lay.offset))
            rate += n * lay.rate
        peak = max(float(self.schedule.shape.a.max()), 1e-9)
        per_s = max(rate * peak, 1e-9)
        return int(min(max(TARGET_CHUNK_EVENTS / per_s, 0.001), 3600.0) * 1e9)

    async def _watch_control(self) -> None:
        """Wake the schedule loop as soon as the supervisor says Stop."""
        assert self.conn is not None
        while True:
            await trio.lowlevel.wait_readable(self.conn.fileno())
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):  # the supervisor is gone: stop as if told to
                msg = Stop("supervisor gone")
            if isinstance(msg, Begin):
                self.begin_at = msg.t0_epoch_ns
                self.begun.set()
            elif isinstance(msg, Stop):
                self.stop_requested = True
                self.stop_event.set()
                return

    def _sink(
        self,
        cols: dict[str, np.ndarray],
        n: int,
        errors: dict[int, str],
        samples: list[tuple[int, int, int, int]],
    ) -> None:
        """Every frame: count it for live progress, then append it to the log."""
        if self.held is not None:  # before Begin: kept (copied) until t=0 is fixed
            self.held.append(({k: v.copy() for k, v in cols.items()}, n, errors, samples))
            return
        self.live.observe(cols, n)
        self.writer.write(cols, n, errors, samples)

    def _resume_at(self, span: int) -> int:
        """Log every planned publish the log has no row for, up to now; return now."""
        assert self.resumed is not None
        since = self.checkpoint.horizon_ns if self.checkpoint else 0
        if self.virtual:  # virtual time restarts where the log ends
            t_r = max(self.resumed.last_intended_ns + 1, since)
            self.clock.t0 = trio.current_time() - t_r / 1e9
        else:
            t_r = max(self.clock.now_ns(), since)
        code = self.log.errors.code(MISSED_TEXT)
        # walked in bigger chunks than the run's: owed rows are few, and a chunk costs per call
        walk_span = span * RESUME_CHUNK_FACTOR
        for c, owed in owed_rows(self.resumed, self.schedule, t_r, walk_span, since):
            self._log_unsent(c, owed, MISSED, code)
        if self.conn is not None:
            at = self.checkpoint.horizon_ns if self.checkpoint else None
            self.conn.send(Resumed(self.spec.worker, t_r, at, self.resumed.rows))
        return t_r

    def _log_unsent(self, c: Chunk, rows: np.ndarray | slice, status: int, error: int = 0) -> int:
        """Log planned publishes of `c` that were never sent (missed, or unsent at a stop)."""
        g, m = c.group[rows], c.message[rows]
        k = len(g)
        if k:
            self.log.append(
                k,
                device=c.device[rows],
                seq=c.seq[rows],
                kind=PUBLISH,
                status=status,
                phase=c.phase[rows],
                message=m,
                t_intended=c.t_intended[rows],
                qos=self.qos[g, m],
                error=error,
            )
        return k

    async def _keep_up(self) -> None:
        """The log reaches disk every flush interval and the supervisor hears progress every
        PROGRESS_EVERY_S, whatever the schedule does (a slice with nothing due for a while, a
        connection storm that publishes nothing, listening devices waiting to the end)."""
        wall = time.monotonic
        last_progress = wall()
        while True:
            await trio.sleep(self.flush_s)
            self.log.flush()
            if wall() - last_progress >= PROGRESS_EVERY_S:
                self._progress()
                last_progress = wall()

    async def _sample_resources(self) -> None:
        """Log this process's RSS, CPU time and open fds every `resource_samples` of run time."""
        every = self.scenario.run.resource_samples
        t = max(0, self.clock.now_ns())
        while True:
            self.log.add_sample(t, *sample())
            t = (t // every + 1) * every
            await self.clock.sleep_until_ns(t)

    async def _sleep_until(self, t_ns: int) -> None:
        """Sleep until t_ns of run time, or until a Stop arrives."""
        with trio.move_on_at(self.clock.deadline(t_ns)):
            await self.stop_event.wait()

    def _progress(self) -> None:
        if self.conn is None:
            return
        lag = 0
        if self.lags:
            lag = int(np.percentile(np.concatenate(self.lags), 99))
            self.lags = []
        completed, errors = self.live.outcomes()
        n_int, quantiles = self.live.take_interval()
        self.conn.send(
            Progress(
                worker=self.spec.worker,
                t_ns=self.clock.now_ns(),
                sent=self.sent,
                completed=completed,
                errors=errors,
                lag_p99_ns=lag,
                rows=self.log.rows_written + self.log.n,
                by_message=self.live.by_message.tolist(),
                latency_buckets=self.live.buckets.tolist(),
                message_latency_sum_ns=self.live.message_latency_sum_ns.tolist(),
                by_phase=self.live.by_phase.tolist(),
                error_texts=self._error_texts(),
                by_kind=self.live.by_kind.tolist(),
                interval_completed=n_int,
                interval_ns=quantiles,
                rss_bytes=rss_bytes(),
                pid=os.getpid(),
            )
        )

    def _error_texts(self) -> dict[str, int]:
        """The live failed-row counts by error text (the most frequent ones)."""
        codes = self.live.error_codes
        if not codes:
            return {}
        text_of = {c: t for t, c in self.log.errors.codes.items()}
        top = sorted(codes.items(), key=lambda kv: -kv[1])[:TOP_ERRORS]
        return {text_of.get(c, "(no error text)" if c == 0 else f"error {c}"): n for c, n in top}

    async def run(self) -> Done:
        async with trio.open_nursery() as nursery:
            if self.conn is not None:
                nursery.start_soon(self._watch_control)
            if not self.virtual:
                nursery.start_soon(self._keep_up)
            done = await self._run(nursery)
            nursery.cancel_scope.cancel()
        return done

    async def _run(self, nursery: trio.Nursery) -> Done:
        # connect before t=0, then (a provisional t=0) say so and wait for the real one
        await self.transport.connect(self.devices, self.clock.now_ns(), nursery)
        began = await self._begin() if self.held is not None else True
        if not began:  # stopped before t=0 was chosen: none of the schedule fell due
            stopped_at, chunk, i = 0, Chunk.empty(), 0
        else:
            if self.scenario.run.resource_samples > 0:
                nursery.start_soon(self._sample_resources)
            chunk, horizon = await self._first_chunk()
            stopped_at, chunk, i = await self._walk(chunk, horizon)
            if stopped_at is None:
                stopped_at = await self._until_the_end()
        if stopped_at is not None:
            # publishes that were due before the stop but not yet sent: logged, never absent
            k = int((chunk.t_intended[i:] <= stopped_at).sum())
            self.unsent += self._log_unsent(chunk, slice(i, i + k), UNSENT)
        end = self.clock.now_ns()
        if self.virtual and stopped_at is None:
            end = max(end, self.duration)  # the virtual clock sends ahead of the last publish
        deadline = end + self.scenario.run.drain_timeout
        # the transport stops at the deadline itself; this guard is for one that hangs
        with trio.move_on_at(self.clock.deadline(deadline) + DRAIN_GRACE_S):
            await self.transport.drain(deadline)
        await self.transport.close(self.clock.now_ns())
        self.log.flush()
        self.writer.close()
        self._progress()  # the final counts, so the live view ends on the log's numbers
        torn = [f"{t.reason} at byte {t.offset}" for t in self.writer.torn_truncated]
        completed, errors = self.live.outcomes()
        return Done(
            worker=self.spec.worker,
            sent=self.sent,
            completed=completed,
            errors=errors,
            unsent=self.unsent,
            rows=self.log.rows_written,
            stopped_at_ns=stopped_at,
            torn_tails=torn,
        )

    async def _begin(self) -> bool:
        """Connected: wait for Begin (or a Stop), fix t=0 there, and move what was logged
        meanwhile (connect rows) to it, before any of it reaches the log. False if a Stop came
        first (t=0 stays the guess the clock ran on; the supervisor records it)."""
        assert self.conn is not None and self.held is not None
        self.conn.send(Connected(self.spec.worker))
        async with trio.open_nursery() as waiting:
            waiting.start_soon(_cancel_on, self.begun, waiting.cancel_scope)
            waiting.start_soon(_cancel_on, self.stop_event, waiting.cancel_scope)
        shift = 0
        if self.begin_at is not None:  # else stopped first: t=0 stays where it was guessed
            shift = self.clock.retime(self.begin_at)
        self.transport.oldest_pending_ns()  # rows the transport still holds: into the log
        self.log.flush()
        held, self.held = self.held, None
        for cols, n, errors, samples in held:
            if shift:
                for name in TIME_COLUMNS:
                    t = cols[name]
                    t[t != NULL_NS] += shift
            self._sink(cols, n, errors, samples)
        return self.begin_at is not None

    async def _first_chunk(self) -> tuple[Chunk, int]:
        """The schedule's first chunk and its horizon, at t=0 (or where a restart resumes)."""
        span = self._chunk_span_ns()
        resuming = self.resumed is not None and (
            not self.resumed.empty or self.checkpoint is not None
        )
        horizon = 0
        chunk = self.schedule.chunk_until(horizon) if self.checkpoint is None else Chunk.empty()
        if not resuming:
            # the first chunk before t=0: computed after it, it held the first publishes back
            # by ~50 ms (a lag p99 of 70-80 ms over a 8 s HTTP run at 15k/s came from that)
            horizon = min(self.duration, span)
            chunk = self.schedule.chunk_until(horizon)
        if not self.virtual:
            await self._sleep_until(0)
        if resuming:
            horizon = min(self._resume_at(span), self.duration)
            chunk = self.schedule.chunk_until(horizon)
        return chunk, horizon

    async def _walk(self, chunk: Chunk, horizon: int) -> tuple[int | None, Chunk, int]:
        """Send every publish as it falls due, chunk after chunk, to the run's end or a stop:
        (the stop's run time or None, the chunk it ended in, the first row not sent)."""
        span = self._chunk_span_ns()
        i = 0
        wall = time.monotonic
        last_flush = last_progress = wall()
        while True:
            if self.virtual:  # virtual time races ahead: flush and report on the wall's clock
                w = wall()
                if w - last_flush >= self.flush_s:
                    self.log.flush()
                    last_flush = w
                if w - last_progress >= PROGRESS_EVERY_S:
                    self._progress()
                    last_progress = w
            now = self.clock.now_ns()
            if self.stop_requested:
                return now, chunk, i
            if i >= len(chunk):
                if horizon >= self.duration:
                    return None, chunk, i
                if self.checkpoints is not None and self.checkpoints.due(horizon):
                    self.checkpoints.take(
                        horizon, self.schedule, self.transport, self.log, self.writer, self.live
                    )
                horizon = min(self.duration, horizon + span)
                chunk = self.schedule.chunk_until(horizon)
                i = 0
                continue
            limit = now + VIRTUAL_WINDOW_NS if self.virtual else now
            j = int(np.searchsorted(chunk.t_intended, limit, side="right"))
            j = min(j, i + MAX_BATCH, len(chunk))
            if j > i:
                await self._send(chunk, i, j, now)
                i = j
                await trio.lowlevel.checkpoint()
            else:
                nxt = int(chunk.t_intended[i])
                if self.virtual:
                    await self._sleep_until(nxt)
                else:
                    # wake at the next due publish, but at least every progress tick
                    await self._sleep_until(min(nxt, now + 200_000_000))

    async def _until_the_end(self) -> int | None:
        """After the schedule: wait, up to the run's end, for closed-model users to finish,
        then (real clocks) for the end itself; the stop's run time if one came meanwhile."""
        if self.closed:
            # closed-model users send until the run's end (or their count): wait for them
            with trio.move_on_at(self.clock.deadline(self.duration)):
                async with trio.open_nursery() as waiting:
                    waiting.start_soon(_set_after, self.transport.paced_done, self.stop_event)
                    await self.stop_event.wait()
                    waiting.cancel_scope.cancel()
            if self.stop_requested:
                return self.clock.now_ns()
        if not self.virtual and not self.closed:
            # devices stay connected until the run's end, not only while their slice has
            # publishes due: listening devices answer, a connection storm's connections are
            # held, and a slice whose last publish came early does not leave before the others
            # (closed-model users end the run when they are done: requests_per_user)
            with trio.move_on_at(self.clock.deadline(self.duration)):
                await self.stop_event.wait()
            if self.stop_requested:
                return self.clock.now_ns()
        return None


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _set_after(done: trio.Event, then: trio.Event) -> None:
    await done.wait()
    then.set()


def run_worker(
    spec: WorkerSpec, t0_epoch_ns: int, conn: Connection | None = None, provisional: bool = False
) -> Done:
    """Run one slice to its end in this process (tests call this directly)."""
    scenario = Scenario.model_validate(spec.scenario)
    clock = trio_clock(parse_clock(spec.clock))

    async def main() -> Done:
        return await SliceRunner(spec, scenario, t0_epoch_ns, conn, provisional).run()

    return trio.run(main, clock=clock)


def worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """Entry point of a worker process: Ready, wait for Start, run (a provisional Start:
    connect, Connected, wait for Begin), report Done or Failed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides; it sends Stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if spec.cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {spec.cpu})
    conn.send(Ready(spec.worker))
    msg = conn.recv()
    if isinstance(msg, Stop):
        return
    assert isinstance(msg, Start)
    try:
        done = run_worker(spec, msg.t0_epoch_ns, conn, msg.provisional)
    except BaseException as raised:  # trio wraps task errors in exception groups
        exc = first_leaf(raised)
        if isinstance(exc, UserError):
            _tell(conn, Failed(spec.worker, str(exc), True))
            sys.exit(2)
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            where = exc.filename or str(Path(spec.run_dir) / "events")
            text = f"disk full writing {where} ({exc.strerror}); the log reads up to there"
            _tell(conn, Failed(spec.worker, text, False))
            sys.exit(3)
        if isinstance(exc, OSError | SimdError):
            _tell(conn, Failed(spec.worker, f"{type(exc).__name__}: {exc}", False))
            sys.exit(3)
        raise
    _tell(conn, done)


def _tell(conn: Connection, msg: object) -> None:
    """The last word to the supervisor, if it is still there to hear it (else the log says
    all: a worker outliving its supervisor ends quietly)."""
    with contextlib.suppress(OSError):
        conn.send(msg)
