"""Replay: a recording as a fleet group's timing, topics and payloads.

A recording (simd.log.recording) is turned into a `ReplayPlan` once per process: its messages in
recorded order, each with its *source* (the simulated device it belongs to), its rank within
that source, its topic template and its offset from the recording's first message. Everything
else is arithmetic, so replay keeps the schedule's rules (simd.plan.schedule): which publishes exist
and when is a pure function of (recording, options, device, seq), whatever the worker count.

- Device local index d of the group is copy `d // sources` of source `d % sources`; copy 0 keeps
  the recorded id, copy j > 0 is `<id>-r<j>` (fanout).
- Publish seq of a device is `loop * n_s + i`: the i-th recorded message of its source s (n_s of
  them) in pass `loop` through the recording.
- It is due at `lead_in + rint((loop * period + offset_i) / speed)` ns; period is the
  recording's length (from its first message to its clean close, or past its last message).

Pure apart from reading the recording file (cached per path, size and mtime).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from simd.errors import ScenarioError, UserError
from simd.log.ragged import Ragged
from simd.log.recording import Recording, read_recording
from simd.model.scenario import (
    PLACEHOLDER,
    FleetGroup,
    Message,
    ReplayPayload,
    ReplaySource,
    Scenario,
    resolve_path,
)

MAX_TEMPLATES = 256  # a message index is a byte (simd.log.events)
NS = 1_000_000_000


def copy_id(source_id: str, copy: int) -> str:
    """The id of fanout copy `copy` of a recorded device."""
    return source_id if copy == 0 else f"{source_id}-r{copy}"


def map_topic(topic: str, topic_map: dict[str, str]) -> str:
    """Replace the longest matching prefix FROM of `topic_map` with its TO."""
    for old in sorted(topic_map, key=len, reverse=True):
        if topic.startswith(old):
            return topic_map[old] + topic[len(old) :]
    return topic


def _device_level(topics: list[str], level: int | str) -> int | None:
    """The topic level that names devices (None: each topic is its own device)."""
    if level == "topic":
        return None
    if isinstance(level, int):
        return level
    split = [t.split("/") for t in topics]
    depth = max(len(s) for s in split)
    best, best_n = None, 1
    for lv in range(depth):
        n = len({s[lv] for s in split if len(s) > lv})
        if n > best_n:
            best, best_n = lv, n
    return best


def _majority(values: np.ndarray, groups: np.ndarray, ngroups: int, nvalues: int) -> np.ndarray:
    """Per group, the most common value (ties: the smallest)."""
    table = np.zeros((ngroups, nvalues), dtype=np.int64)
    np.add.at(table, (groups, values.astype(np.int64)), 1)
    return table.argmax(axis=1)


@dataclass(frozen=True)
class ReplayPlan:
    """A recording laid out for replay (see the module docstring for the arithmetic)."""

    options: ReplaySource
    recording: Recording
    ids: list[str]  # per source: the recorded device id
    templates: list[str]  # topic templates ({device_id} where the device's level was)
    template_qos: list[int]
    template_retain: list[bool]
    offset: np.ndarray  # int64 per message: ns after the recording's first message
    source: np.ndarray  # int64 per message
    rank: np.ndarray  # int64 per message: its index among its source's messages
    template: np.ndarray  # uint8 per message
    per_source: np.ndarray  # int64 messages per source
    source_start: np.ndarray  # int64: where each source's messages start in `by_source`
    by_source: np.ndarray  # int64 message indices ordered by (source, rank)
    period_ns: int

    @property
    def sources(self) -> int:
        return len(self.ids)

    @property
    def devices(self) -> int:
        return self.sources * self.options.fanout

    @property
    def mean_rate_per_device(self) -> float:
        """Messages per second per device, averaged over one pass through the recording."""
        return len(self.offset) * self.options.speed / (self.period_ns / NS) / self.sources

    def device_ids(self, local: range | np.ndarray) -> list[str]:
        n = self.sources
        return [copy_id(self.ids[int(d) % n], int(d) // n) for d in local]

    def messages(self) -> list[Message]:
        """The group's messages: one per topic template, carrying the recorded payloads."""
        return [
            Message(name=f"topic{i}", topic=t, qos=q, retain=r, payload=ReplayPayload())
            for i, (t, q, r) in enumerate(
                zip(self.templates, self.template_qos, self.template_retain, strict=True)
            )
        ]

    def due(self, loop: int, rows: np.ndarray | slice) -> np.ndarray:
        """When messages `rows` of pass `loop` play, in ns of run time."""
        o = self.options
        return o.lead_in + np.rint((loop * self.period_ns + self.offset[rows]) / o.speed).astype(
            np.int64
        )

    def loops_before(self, t_ns: int) -> int:
        """How many passes start before run time t_ns (bounded by `loop` unless it is 0)."""
        o = self.options
        if t_ns <= o.lead_in:
            return 0
        n = math.floor((t_ns - o.lead_in) * o.speed / self.period_ns) + 1
        return min(n, o.loop) if o.loop else n

    def end_ns(self) -> int:
        """Just past the last publish of the last pass (loop > 0)."""
        return int(self.due(self.options.loop - 1, slice(-1, None))[0]) + 1

    def window(self, loop: int, t_lo: int, t_hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Messages of pass `loop` due in [t_lo, t_hi): (message indices, due times)."""
        o = self.options
        margin = 4 * o.speed + 4  # rint and float rounding, in recording ns
        r_lo = (t_lo - o.lead_in) * o.speed - loop * self.period_ns - margin
        r_hi = (t_hi - o.lead_in) * o.speed - loop * self.period_ns + margin
        a = int(np.searchsorted(self.offset, r_lo, side="left"))
        b = int(np.searchsorted(self.offset, r_hi, side="right"))
        if a >= b:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        rows = np.arange(a, b, dtype=np.int64)
        t = self.due(loop, rows)
        keep = (t >= t_lo) & (t < t_hi)
        return rows[keep], t[keep]

    def passes(self, duration_ns: int) -> range:
        return range(self.loops_before(duration_ns))

    def due_counts(self, duration_ns: int, bin_ns: int) -> np.ndarray:
        """Publishes of the whole fanout due per bin [k*bin, (k+1)*bin) of the run."""
        n = max(1, -(-duration_ns // bin_ns))
        out = np.zeros(n, dtype=np.float64)
        for loop in self.passes(duration_ns):
            t = self.due(loop, slice(None))
            t = t[t < duration_ns]
            out += np.bincount(t // bin_ns, minlength=n)[:n]
        return out * self.options.fanout

    def payloads(self, local: np.ndarray, seq: np.ndarray) -> Ragged:
        """The recorded payload of each (device, seq)."""
        s = local % self.sources
        i = seq % self.per_source[s]
        return self.recording.payload.take(self.by_source[self.source_start[s] + i])


def build_plan(rec: Recording, options: ReplaySource, name: str) -> ReplayPlan:
    """Lay a recording out for replay; a recording that cannot be replayed is a UserError."""
    if not len(rec):
        raise UserError(f"{name}: the recording holds no messages")
    order = np.argsort(rec.t_ns, kind="stable")
    t = rec.t_ns[order]
    offset = t - t[0]
    topics = [map_topic(rec.topic[i], options.topic_map) for i in order.tolist()]
    clients = [rec.client[i] for i in order.tolist()] if rec.client is not None else None
    keys, tmpl_of = _devices_and_templates(topics, clients, options.device_level, name)
    ids = list(dict.fromkeys(keys))
    templates = list(dict.fromkeys(tmpl_of))
    if len(templates) > MAX_TEMPLATES:
        raise UserError(
            f"{name}: {len(templates)} distinct topic templates (at most {MAX_TEMPLATES}); "
            "set replay.device_level to the topic level that names the device"
        )
    src_index = {k: i for i, k in enumerate(ids)}
    tmpl_index = {k: i for i, k in enumerate(templates)}
    source = np.array([src_index[k] for k in keys], dtype=np.int64)
    template = np.array([tmpl_index[k] for k in tmpl_of], dtype=np.uint8)
    by_source = np.argsort(source, kind="stable").astype(np.int64)
    per_source = np.bincount(source, minlength=len(ids)).astype(np.int64)
    source_start = np.concatenate([[0], np.cumsum(per_source)[:-1]]).astype(np.int64)
    rank = np.empty(len(source), dtype=np.int64)
    rank[by_source] = np.arange(len(source)) - np.repeat(source_start, per_source)
    qos = rec.qos[order]
    if options.qos is not None:
        tq = [options.qos] * len(templates)
    else:
        tq = _majority(qos, template, len(templates), 3).tolist()
    tr = _majority(rec.retain[order], template, len(templates), 2).astype(bool).tolist()
    period = _period_ns(rec.end_ns, int(t[0]), offset)
    payload = rec.payload.take(order)
    return ReplayPlan(
        options=options,
        recording=Recording(
            rec.header,
            t,
            topics,
            payload,
            qos,
            rec.retain[order],
            torn=rec.torn,
            damaged=rec.damaged,
        ),
        ids=ids,
        templates=templates,
        template_qos=[int(q) for q in tq],
        template_retain=tr,
        offset=offset.astype(np.int64),
        source=source,
        rank=rank,
        template=template,
        per_source=per_source,
        source_start=source_start,
        by_source=by_source,
        period_ns=period,
    )


def _devices_and_templates(
    topics: list[str], clients: list[str | None] | None, device_level: int | str, name: str
) -> tuple[list[str], list[str]]:
    """Per message: the device it is (its client id, else the topic level that names devices)
    and its topic template ({device_id} where the device's name stood)."""
    distinct = list(dict.fromkeys(topics))
    level = _device_level(distinct, device_level)
    # per distinct topic: (device key, template) unless a client id names the device
    by_topic: dict[str, tuple[str, str]] = {}
    for topic in distinct:
        parts = topic.split("/")
        if level is not None and len(parts) > level:
            key = parts[level]
            by_topic[topic] = (key, "/".join([*parts[:level], "{device_id}", *parts[level + 1 :]]))
        else:
            by_topic[topic] = (topic, "{device_id}")
    keys: list[str] = []
    tmpl_of: list[str] = []
    for i, topic in enumerate(topics):
        client = clients[i] if clients is not None else None
        if client is not None:
            parts = topic.split("/")
            tmpl = topic
            if client in parts:
                j = parts.index(client)
                tmpl = "/".join([*parts[:j], "{device_id}", *parts[j + 1 :]])
            keys.append(client)
            tmpl_of.append(tmpl)
        else:
            key, tmpl = by_topic[topic]
            keys.append(key)
            tmpl_of.append(tmpl)
    for tmpl in dict.fromkeys(tmpl_of):
        rest = tmpl.replace("{device_id}", "")
        if PLACEHOLDER.search(rest) or "{" in rest:
            raise UserError(f"{name}: recorded topic {tmpl!r} holds braces; it cannot be replayed")
    return keys, tmpl_of


def _period_ns(end_ns: int | None, first: int, offset: np.ndarray) -> int:
    """One pass through the recording: to its clean close, or (cut or imported) one typical
    gap after the last message (1 s if there is only one message)."""
    if end_ns is not None:
        return max(end_ns - first, int(offset[-1]) + 1)
    gaps = np.diff(offset)
    return int(offset[-1]) + max(1, int(np.median(gaps)) if len(gaps) else NS)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=16)
def _cached_plan(path: str, size: int, mtime_ns: int, options_json: str) -> ReplayPlan:
    options = ReplaySource.model_validate_json(options_json)
    rec = read_recording(path)
    return build_plan(rec, options, path)


def replay_plan(group: FleetGroup) -> ReplayPlan:
    """The replay plan of a replay group (read once per process, per recording and options)."""
    opts = group.replay
    assert opts is not None
    path = Path(opts.recording)
    try:
        st = path.stat()
    except OSError:
        raise UserError(f"fleet {group.name}: recording {opts.recording} not found") from None
    derived = {"recording_sha256": None, "messages": None, "mean_rate": None}
    key = opts.model_copy(update=derived).model_dump_json()
    plan = _cached_plan(str(path), st.st_size, st.st_mtime_ns, key)
    if group.count is not None and group.count != plan.devices:
        raise UserError(
            f"fleet {group.name}: count {group.count}, but the recording holds {plan.sources} "
            f"devices x fanout {opts.fanout} = {plan.devices}"
        )
    return plan


def expand_replays(scenario: Scenario, base: Path, source: str) -> Scenario:
    """Resolve every replay group against its recording: the recording's absolute path and
    content hash (a resumed run refuses a changed recording), the derived device count, and
    the run's duration when the scenario gives none (the longest replay's end)."""
    if not any(g.replay for g in scenario.fleet):
        return scenario
    problems: list[str] = []
    fleet: list[FleetGroup] = []
    ends: list[int] = []
    for gi, g in enumerate(scenario.fleet):
        if g.replay is None:
            fleet.append(g)
            continue
        where = f"fleet[{gi}].replay"
        path = resolve_path(g.replay.recording, base).resolve()
        if not path.is_file():
            problems.append(
                f"{where}.recording: {g.replay.recording!r} not found (looked in {path})"
            )
            continue
        sha = file_sha256(path)
        if g.replay.recording_sha256 not in (None, sha):
            problems.append(
                f"{where}.recording: {path} changed since the run started "
                f"(sha256 {sha[:12]}..., expected {g.replay.recording_sha256[:12]}...)"
            )
            continue
        opts = g.replay.model_copy(update={"recording": str(path), "recording_sha256": sha})
        try:
            plan = replay_plan(g.model_copy(update={"replay": opts, "count": None}))
        except UserError as exc:
            problems.append(f"{where}.recording: {exc}")
            continue
        if g.count is not None and g.count != plan.devices:
            problems.append(
                f"fleet[{gi}].count: {g.count}, but the recording holds {plan.sources} devices "
                f"x fanout {opts.fanout} = {plan.devices}; leave count out"
            )
            continue
        opts = opts.model_copy(
            update={"messages": plan.messages(), "mean_rate": plan.mean_rate_per_device}
        )
        fleet.append(g.model_copy(update={"replay": opts, "count": plan.devices}))
        if opts.loop:
            ends.append(plan.end_ns())
        elif scenario.duration is None and not scenario.phase:
            problems.append(f"{where}.loop: 0 (until the duration) needs a duration")
    if problems:
        raise ScenarioError(source, problems)
    update: dict[str, object] = {"fleet": fleet}
    if scenario.duration is None and not scenario.phase:
        update["duration"] = max(ends)
    return scenario.model_copy(update=update)


class ReplayCursor:
    """Walks one replay group's part of a device slice through run time (simd.plan.schedule)."""

    def __init__(self, plan: ReplayPlan, group_index: int, offset: int, local: np.ndarray) -> None:
        self.plan = plan
        self.group_index = group_index
        self.offset = offset
        self.local = local
        n = plan.sources
        src = local % n
        self.order = np.argsort(src, kind="stable")
        self.first = np.searchsorted(src[self.order], np.arange(n))
        self.count = np.bincount(src, minlength=n)

    def events(self, t_lo: int, t_hi: int) -> tuple[np.ndarray, ...]:
        """(device, seq, t, message) of every publish due in [t_lo, t_hi), unsorted."""
        p = self.plan
        parts: list[tuple[np.ndarray, ...]] = []
        last = p.loops_before(t_hi)
        first = max(0, p.loops_before(t_lo) - 2)  # a pass may end on the next one's first ns
        for loop in range(first, last):
            rows, t = p.window(loop, t_lo, t_hi)
            if not len(rows):
                continue
            src = p.source[rows]
            reps = self.count[src]
            total = int(reps.sum())
            if not total:
                continue
            within = np.arange(total) - np.repeat(np.cumsum(reps) - reps, reps)
            pos = np.repeat(self.first[src], reps) + within
            local = self.local[self.order[pos]]
            rows_r = np.repeat(rows, reps)
            seq = loop * p.per_source[p.source[rows_r]] + p.rank[rows_r]
            parts.append((local + self.offset, seq, np.repeat(t, reps), p.template[rows_r]))
        if not parts:
            z = np.zeros(0, np.int64)
            return z, z, z, np.zeros(0, np.uint8)
        return tuple(np.concatenate([x[i] for x in parts]) for i in range(4))
