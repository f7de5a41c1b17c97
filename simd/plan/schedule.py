"""Deterministic publish schedules: a pure function of (scenario, seed, device index).

Each device lives in *work space*: its k-th publish sits at work v_k (periodic: v_k = k + phi,
phi a per-device phase in [0, 1); poisson: v_k = E_1 + ... + E_{k+1}, E unit exponentials), and
work grows as rate * M(t) (simd.plan.shape). A publish exists iff v_k < rate * M(end). Its
segment is found by comparing v_k with rate * M at the segment knots; its time by inverting M there.

Which events exist and when is decided per device, from integer hashes and exactly rounded float
operations, so worker count, chunk size and machine never change it. Chunks of time are only a
way to walk the schedule in order: an event belongs to the chunk whose work interval holds v_k.

Pure: no I/O, no clock. `plan_counts` gives the exact expected counts without running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simd.model.scenario import FleetGroup, Scenario
from simd.plan.arrivals import ArrivalStreams, GapLaw
from simd.plan.hashing import hash2, stream_key, uniform01
from simd.plan.replay import ReplayCursor, ReplayPlan, replay_plan
from simd.plan.shape import Shape, compile_shape

_RANKS: dict[tuple[int, int], np.ndarray] = {}  # spawn ranks per (key, group size), computed once


@dataclass(frozen=True)
class GroupLayout:
    """One fleet group's place in the global device index and its fixed per-device inputs."""

    index: int
    name: str
    offset: int  # global index of its first device
    count: int
    rate: float  # messages/s per device at level 1
    arrival: str
    phase_key: int
    arrival_key: int
    mix_key: int
    mix_cdf: np.ndarray  # cumulative weights, last == 1.0
    spawn_rate: float | None = None  # devices/s: the group's connect ramp
    spawn_key: int = 0
    replay: ReplayPlan | None = None  # a replay group: timing from its recording
    steps: int = 1  # rows per arrival: a journey's steps (http)
    closed: bool = False  # a closed-model http group: no schedule, users send when ready
    users_requests: int = 0  # closed: requests per user (0: until the run ends)
    law: GapLaw | None = None  # random arrivals (poisson, pareto, zipf): the gaps' law

    def spawn_rank(self) -> np.ndarray:
        """Each device's place in the ramp: a seeded shuffle of the group, so that every
        worker's contiguous slice ramps at its share of the rate the whole time."""
        cached = _RANKS.get((self.spawn_key, self.count))
        if cached is None:
            order = np.argsort(hash2(self.spawn_key, np.arange(self.count)), kind="stable")
            cached = np.empty(self.count, dtype=np.int64)
            cached[order] = np.arange(self.count)
            _RANKS[(self.spawn_key, self.count)] = cached
        return cached

    def start_ns(self, local: np.ndarray) -> np.ndarray:
        """When each device starts (connects, then publishes): 0, or its place in the ramp."""
        if not self.spawn_rate:
            return np.zeros(len(local), dtype=np.int64)
        rank = self.spawn_rank()[np.asarray(local, dtype=np.int64)]
        return np.rint(rank * (1e9 / self.spawn_rate)).astype(np.int64)

    def start_work(self, shape: Shape, local: np.ndarray) -> np.ndarray:
        """Work already done by the shape when each device starts (0 without a ramp)."""
        if not self.spawn_rate:
            return np.zeros(len(local), dtype=np.float64)
        return self.rate * shape.m_at_many(self.start_ns(local))

    def phases(self, local: np.ndarray) -> np.ndarray:
        """Each device's periodic phase in [0, 1)."""
        return uniform01(hash2(self.phase_key, local))

    def message_of(self, local: np.ndarray, seq: np.ndarray) -> np.ndarray:
        """Which entry of the weighted message mix each (device, seq) publishes."""
        if len(self.mix_cdf) == 1:
            return np.zeros(len(seq), dtype=np.uint8)
        u = uniform01(hash2(self.mix_key, local, seq))
        return np.searchsorted(self.mix_cdf, u, side="right").astype(np.uint8)


def layout_groups(scenario: Scenario) -> list[GroupLayout]:
    out = []
    offset = 0
    for gi, g in enumerate(scenario.fleet):
        weights = np.array([m.weight for m in g.resolved_messages()], dtype=np.float64)
        cdf = np.cumsum(weights) / weights.sum()
        cdf[-1] = 1.0
        replay = replay_plan(g) if g.replay is not None else None
        out.append(
            GroupLayout(
                index=gi,
                name=g.name,
                offset=offset,
                count=g.count,
                rate=g.rate_per_s,
                arrival="replay" if replay is not None else g.arrival,
                replay=replay,
                steps=g.steps,
                closed=g.closed,
                users_requests=(g.http.requests_per_user or 0) * g.steps,
                phase_key=stream_key(scenario.seed, "phase", g.name),
                arrival_key=stream_key(scenario.seed, "arrival", g.name),
                mix_key=stream_key(scenario.seed, "mix", g.name),
                mix_cdf=cdf,
                spawn_rate=g.mqtt.connect_rate,
                spawn_key=stream_key(scenario.seed, "spawn", g.name),
                law=_gap_law(g),
            )
        )
        offset += g.count
    return out


def _gap_law(g: FleetGroup) -> GapLaw | None:
    if g.arrival == "periodic" or g.replay is not None:
        return None
    spacing = g.burst_spacing * g.rate_per_s / 1e9 if g.rate_per_s else 0.0
    return GapLaw(g.arrival, g.pareto_shape, g.zipf_exponent, g.burst_max, spacing)


def device_ids(group: FleetGroup, local: range | np.ndarray) -> list[str]:
    """Render device ids from the group's pattern (`sensor-{index:05d}`), or a replay group's
    recorded ids (simd.plan.replay)."""
    if group.replay is not None:
        return replay_plan(group).device_ids(local)
    return [group.id.format(index=int(i), group=group.name) for i in local]


def periodic_count(x: float | np.ndarray, phi: np.ndarray) -> np.ndarray:
    """#{k >= 0 : fl(k + phi) < x} per device, exactly as the event test computes it (phi is
    the device's phase plus the work done before it started, so it may exceed 1)."""
    c = np.maximum(np.ceil(x - phi), 0.0)
    c = np.where(c + phi < x, c + 1.0, c)
    c = np.where((c > 0) & ((c - 1.0) + phi >= x), c - 1.0, c)
    return c.astype(np.int64)


@dataclass
class Chunk:
    """Publishes of one stretch of time, sorted by intended time."""

    device: np.ndarray  # int64 global index
    seq: np.ndarray  # int64
    t_intended: np.ndarray  # int64 ns
    phase: np.ndarray  # int16
    message: np.ndarray  # uint8
    group: np.ndarray  # int16

    def __len__(self) -> int:
        return len(self.seq)

    @staticmethod
    def empty() -> Chunk:
        return _empty_chunk()


class GroupCursor:
    """Walks one group's part of a device slice through time, chunk by chunk."""

    def __init__(self, layout: GroupLayout, shape: Shape, local: np.ndarray) -> None:
        self.layout = layout
        self.shape = shape
        self.local = local
        self.wknots = layout.rate * shape.knots  # work at each segment start, then the end
        start = layout.start_work(shape, local)
        if layout.arrival == "periodic":
            # v_k = (start + phi) + k: the device's k-th publish, in work space
            self.phi = start + layout.phases(local)
            self.poisson = None
        else:
            self.phi = None
            self.poisson = ArrivalStreams(layout.arrival_key, local, start, layout.law)

    def events(self, w_lo: float, w_hi: float) -> Chunk:
        """Events with work in [w_lo, w_hi); w_hi is clamped to the work at the run's end."""
        w_hi = min(w_hi, float(self.wknots[-1]))
        if w_hi <= w_lo or len(self.local) == 0:
            return _empty_chunk()
        if self.phi is not None:
            k_lo = periodic_count(w_lo, self.phi)
            k_hi = periodic_count(w_hi, self.phi)
            n = k_hi - k_lo
            rows = np.repeat(np.arange(len(self.local)), n)
            starts = np.repeat(np.cumsum(n) - n, n)
            k = k_lo[rows] + (np.arange(len(rows)) - starts)
            v = k.astype(np.float64) + self.phi[rows]
        else:
            assert self.poisson is not None
            rows, k, v = self.poisson.take(w_lo, w_hi)
        seg = np.searchsorted(self.wknots[:-1], v, side="right") - 1
        seg = np.maximum(seg, 0)
        t = self.shape.time_of(v / self.layout.rate, seg)
        local = self.local[rows]
        steps = self.layout.steps
        if steps > 1:  # a journey: its steps, in order, all due at the arrival
            return Chunk(
                device=np.repeat(local.astype(np.int64) + self.layout.offset, steps),
                seq=(
                    np.repeat(k.astype(np.int64) * steps, steps) + np.tile(np.arange(steps), len(k))
                ),
                t_intended=np.repeat(t, steps),
                phase=np.repeat(self.shape.phase[seg], steps),
                message=np.tile(np.arange(steps, dtype=np.uint8), len(k)),
                group=np.full(len(k) * steps, self.layout.index, dtype=np.int16),
            )
        return Chunk(
            device=local.astype(np.int64) + self.layout.offset,
            seq=k.astype(np.int64),
            t_intended=t,
            phase=self.shape.phase[seg],
            message=self.layout.message_of(local, k),
            group=np.full(len(k), self.layout.index, dtype=np.int16),
        )


def _empty_chunk() -> Chunk:
    z = np.zeros(0, dtype=np.int64)
    return Chunk(z, z, z, np.zeros(0, np.int16), np.zeros(0, np.uint8), np.zeros(0, np.int16))


def concat_sorted(chunks: list[Chunk]) -> Chunk:
    """Merge group chunks and order by (intended time, device): the order a worker sends in."""
    chunks = [c for c in chunks if len(c)]
    if not chunks:
        return _empty_chunk()
    if len(chunks) == 1:
        c = chunks[0]
    else:
        c = Chunk(
            *(np.concatenate([getattr(x, f) for x in chunks]) for f in Chunk.__dataclass_fields__)
        )
    order = np.lexsort((c.device, c.t_intended))
    return Chunk(*(getattr(c, f)[order] for f in Chunk.__dataclass_fields__))


class SliceSchedule:
    """The schedule of a contiguous slice [lo, hi) of the global device index, in time order."""

    def __init__(self, scenario: Scenario, lo: int, hi: int, shape: Shape | None = None) -> None:
        self.shape = shape or compile_shape(scenario)
        self.cursors: list[GroupCursor] = []
        self.replays: list[ReplayCursor] = []
        for layout in layout_groups(scenario):
            a = max(lo, layout.offset)
            b = min(hi, layout.offset + layout.count)
            if a < b:
                local = np.arange(a - layout.offset, b - layout.offset, dtype=np.int64)
                if layout.replay is not None:
                    self.replays.append(
                        ReplayCursor(layout.replay, layout.index, layout.offset, local)
                    )
                elif layout.closed:
                    continue  # users send when ready (simd.transports.http)
                else:
                    self.cursors.append(GroupCursor(layout, self.shape, local))
        self._m_done = 0.0
        self._t_done = 0

    def chunk_until(self, t_ns: int) -> Chunk:
        """Every event not yet returned whose work lies before M(t_ns) (replay groups: whose
        time lies before t_ns). Call with rising t_ns."""
        m_hi = self.shape.m_at(t_ns)
        m_lo = self._m_done
        self._m_done = m_hi
        t_lo, t_hi = self._t_done, min(t_ns, self.shape.duration_ns)
        self._t_done = max(t_lo, t_hi)
        # Work boundaries are rate * M, computed the same way for every chunk.
        chunks = [c.events(c.layout.rate * m_lo, c.layout.rate * m_hi) for c in self.cursors]
        chunks += [self._replayed(c, t_lo, t_hi) for c in self.replays]
        return concat_sorted(chunks)

    def state(self) -> dict[str, Any]:
        """Where the walk stands after the last chunk_until (a worker's checkpoint): periodic
        and replay groups are computed from time alone, poisson-like ones keep their streams."""
        return {
            "m_done": self._m_done,
            "t_done": self._t_done,
            "streams": [c.poisson.state() if c.poisson else None for c in self.cursors],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a `state` of this slice's schedule (ValueError if it is another's)."""
        streams = state["streams"]
        if len(streams) != len(self.cursors) or any(
            (st is None) != (c.poisson is None)
            or (c.poisson is not None and st["values"].shape != c.poisson.values.shape)
            for c, st in zip(self.cursors, streams, strict=False)
        ):
            raise ValueError("schedule state of another slice")
        for cursor, st in zip(self.cursors, streams, strict=True):
            if cursor.poisson is not None:
                cursor.poisson.restore(st)
        self._m_done = float(state["m_done"])
        self._t_done = int(state["t_done"])

    def _replayed(self, cursor: ReplayCursor, t_lo: int, t_hi: int) -> Chunk:
        device, seq, t, message = cursor.events(t_lo, t_hi)
        return Chunk(
            device=device,
            seq=seq,
            t_intended=t,
            phase=self.shape.phase_of(t),
            message=message,
            group=np.full(len(seq), cursor.group_index, dtype=np.int16),
        )


@dataclass(frozen=True)
class GroupPlan:
    name: str
    devices: int
    rate: float
    per_phase: dict[str, int]
    peak_rate: dict[str, float]

    @property
    def total(self) -> int:
        return sum(self.per_phase.values())


@dataclass(frozen=True)
class Plan:
    """What a run will do: exact publish counts per group and phase, peak rates, connections."""

    scenario: str
    duration_ns: int
    groups: list[GroupPlan]
    phases: list[str]

    @property
    def total_publishes(self) -> int:
        return sum(g.total for g in self.groups)

    @property
    def devices(self) -> int:
        return sum(g.devices for g in self.groups)

    def to_json(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "duration_ns": self.duration_ns,
            "total_publishes": self.total_publishes,
            "devices": self.devices,
            "connections": self.devices,
            "phases": self.phases,
            "groups": [
                {
                    "name": g.name,
                    "devices": g.devices,
                    "connections": g.devices,
                    "rate_per_device": g.rate,
                    "total_publishes": g.total,
                    "per_phase": g.per_phase,
                    "peak_rate": g.peak_rate,
                }
                for g in self.groups
            ],
        }


def local_range(layout: GroupLayout, devices: tuple[int, int] | None) -> range:
    """The group's local device indices that fall in the global range [lo, hi) (all if None)."""
    if devices is None:
        return range(layout.count)
    lo, hi = devices
    return range(max(lo - layout.offset, 0), max(min(hi - layout.offset, layout.count), 0))


def plan_counts(
    scenario: Scenario, chunk_devices: int = 65536, devices: tuple[int, int] | None = None
) -> Plan:
    """Exact expected publishes per group and phase, without running anything; of the devices
    whose global index is in [lo, hi) when `devices` is given (a shard's slice)."""
    shape = compile_shape(scenario)
    groups = []
    nphase = len(shape.phase_names)
    for layout in layout_groups(scenario):
        span = local_range(layout, devices)
        if layout.replay is not None:
            groups.append(_replay_group_plan(layout, layout.replay, shape, span))
            continue
        per_phase = np.zeros(nphase, dtype=np.int64)
        if layout.closed:  # known only when each user sends a fixed number (else 0: open-ended)
            per_phase[0] = len(span) * layout.users_requests
            groups.append(
                GroupPlan(layout.name, len(span), 0.0,
                          {n: int(per_phase[i]) for i, n in enumerate(shape.phase_names)},
                          dict.fromkeys(shape.phase_names, 0.0))
            )  # fmt: skip
            continue
        wknots = layout.rate * shape.knots
        for start in range(span.start, span.stop, chunk_devices):
            local = np.arange(start, min(span.stop, start + chunk_devices), dtype=np.int64)
            if layout.arrival == "periodic":
                phi = layout.start_work(shape, local) + layout.phases(local)
                at_knots = np.stack([periodic_count(w, phi) for w in wknots])
                per_seg = (at_knots[1:] - at_knots[:-1]).sum(axis=1)
                np.add.at(per_phase, shape.phase.astype(np.int64), per_seg)
            else:
                streams = ArrivalStreams(
                    layout.arrival_key, local, layout.start_work(shape, local), layout.law
                )
                _rows, _k, v = streams.take(0.0, float(wknots[-1]))
                seg = np.maximum(np.searchsorted(wknots[:-1], v, side="right") - 1, 0)
                np.add.at(per_phase, shape.phase[seg].astype(np.int64), 1)
        per_phase *= layout.steps
        peaks = {
            name: layout.rate * len(span) * layout.steps * shape.peak_level(pi)
            for pi, name in enumerate(shape.phase_names)
        }
        groups.append(
            GroupPlan(
                name=layout.name,
                devices=len(span),
                rate=layout.rate,
                per_phase={n: int(per_phase[i]) for i, n in enumerate(shape.phase_names)},
                peak_rate=peaks,
            )
        )
    return Plan(scenario.name, shape.duration_ns, groups, list(shape.phase_names))


def _replay_group_plan(
    layout: GroupLayout, replay: ReplayPlan, shape: Shape, span: range
) -> GroupPlan:
    """A replay group's exact counts per phase and its peak rate (busiest second) per phase,
    for the group's devices in `span` (device d replays recorded device d % sources)."""
    nphase = len(shape.phase_names)
    n_src = replay.sources
    by_source = np.zeros((n_src, nphase), dtype=np.int64)
    for loop in replay.passes(shape.duration_ns):
        t = replay.due(loop, slice(None))
        keep = t < shape.duration_ns
        cell = replay.source[keep] * nphase + shape.phase_of(t[keep])
        by_source += np.bincount(cell, minlength=n_src * nphase).reshape(n_src, nphase)
    copies = np.bincount(np.arange(span.start, span.stop) % n_src, minlength=n_src)
    per_phase = copies @ by_source
    share = len(span) / layout.count if layout.count else 0.0
    per_second = replay.due_counts(shape.duration_ns, 1_000_000_000) * share
    second_phase = shape.phase_of(np.arange(len(per_second), dtype=np.int64) * 1_000_000_000)
    peaks = {
        name: float(per_second[second_phase == pi].max(initial=0.0))
        for pi, name in enumerate(shape.phase_names)
    }
    return GroupPlan(
        name=layout.name,
        devices=len(span),
        rate=layout.rate,
        per_phase={n: int(per_phase[i]) for i, n in enumerate(shape.phase_names)},
        peak_rate=peaks,
    )


SERIES_WINDOWS = 720  # a run's time axis is cut in at most this many windows
_NICE_WINDOWS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)


def series_window_ns(duration_ns: int) -> int:
    """The width of one point on a run's time axis: 1 s, or the smallest round width that
    keeps a run within SERIES_WINDOWS points (a 2 h run: 10 s; a day: 2 min)."""
    for w in _NICE_WINDOWS_S:
        if duration_ns <= w * SERIES_WINDOWS * 1_000_000_000:
            return w * 1_000_000_000
    return -(-duration_ns // SERIES_WINDOWS)


def expected_series(
    scenario: Scenario,
    window_ns: int,
    shape: Shape | None = None,
    devices: tuple[int, int] | None = None,
) -> np.ndarray:
    """Expected publishes per time window [k*w, (k+1)*w) of the run: the fluid rate (the shape
    times each device's rate, from each device's start in a connect ramp), not the exact counts
    (those are in the log). What a report draws as the planned rate. `devices`: only those
    of the global range [lo, hi) (a shard's)."""
    shape = shape or compile_shape(scenario)
    n = max(1, -(-shape.duration_ns // window_ns))
    edges = np.minimum(np.arange(n + 1, dtype=np.int64) * window_ns, shape.duration_ns)
    m_edges = shape.m_at_many(edges)
    total = np.zeros(n, dtype=np.float64)
    for layout in layout_groups(scenario):
        span = local_range(layout, devices)
        if not span:
            continue
        if layout.replay is not None:
            share = len(span) / layout.count
            total += layout.replay.due_counts(shape.duration_ns, window_ns)[:n] * share
            continue
        if not layout.spawn_rate:
            total += layout.rate * len(span) * layout.steps * np.diff(m_edges)
            continue
        starts = np.sort(layout.start_ns(np.arange(span.start, span.stop, dtype=np.int64)))
        cum = np.concatenate([[0.0], np.cumsum(shape.m_at_many(starts))])
        k = np.searchsorted(starts, edges, side="left")  # devices started before each edge
        work = k * m_edges - cum[k]  # sum over started devices of M(edge) - M(start)
        total += layout.rate * layout.steps * np.diff(work)
    return total
