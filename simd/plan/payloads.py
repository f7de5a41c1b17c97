"""Payload generators: what each publish carries, built a batch at a time.

Every generator is a `PayloadGenerator`: given a `PayloadContext` (the batch's devices, seqs and
intended times) it returns one byte string per row as a `Ragged`. Values are pure functions of
(seed, device, seq), except a random walk, which also carries each device's position forward.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from simd.errors import UserError
from simd.loading import load_object
from simd.log.ragged import Ragged, concat_columns, format_fixed, format_ints
from simd.model.scenario import (
    PLACEHOLDER,
    ChoiceField,
    JsonLinesPayload,
    Payload,
    PluginPayload,
    RandomBytesPayload,
    ReplayPayload,
    TemplatePayload,
    UniformField,
    WalkField,
    resolve_path,
)
from simd.plan.hashing import hash2, stream_key, uniform01
from simd.plan.replay import ReplayPlan


@dataclass
class PayloadContext:
    """One batch of publishes of one (group, message): row i is device local[i], publish seq[i]."""

    local: np.ndarray  # int64 device index within its group
    seq: np.ndarray  # int64
    t_intended: np.ndarray  # int64 ns since t=0
    t0_epoch_ns: int

    def __len__(self) -> int:
        return len(self.seq)


@runtime_checkable
class PayloadGenerator(Protocol):
    """Contract: `render(ctx)` returns exactly len(ctx) payloads, row for row.

    It may keep per-device state (it sees each device's publishes in rising seq order) but must
    not do I/O, sleep, or read a clock: times come from ctx. Raise UserError for bad options.
    """

    def render(self, ctx: PayloadContext) -> Ragged: ...


def _json_inner(value: Any) -> bytes:
    """A value as it stands inside a template: strings JSON-escaped without their quotes."""
    if isinstance(value, str):
        return json.dumps(value)[1:-1].encode()
    return json.dumps(value).encode()


class TemplateGenerator:
    """A template split into literal parts and typed slots, each rendered vectorised."""

    def __init__(self, spec: TemplatePayload, key: int, ids: Ragged, group: str) -> None:
        self.parts: list[Any] = []
        pos = 0
        for m in PLACEHOLDER.finditer(spec.template):
            self.parts.append(spec.template[pos : m.start()].encode())
            self.parts.append(m.group(1))
            pos = m.end()
        self.parts.append(spec.template[pos:].encode())
        self.fields = spec.fields
        self.key = key
        self.ids = ids
        self.group = _json_inner(group)
        # a walk's position per device of the group (int steps), advanced batch by batch
        self.walk_pos: dict[str, np.ndarray] = {}
        self.field_keys = {name: stream_key(key, name) for name in spec.fields}
        self.choices: dict[str, Ragged] = {}

    def _values(self, name: str, ctx: PayloadContext) -> np.ndarray | Ragged | bytes:
        """A slot's values for the batch: numbers (int64 or float64), strings, or one constant."""
        if name == "device_id":
            return self.ids.take(ctx.local)
        if name == "index":
            return ctx.local
        if name == "seq":
            return ctx.seq
        if name == "timestamp":
            return (ctx.t0_epoch_ns + ctx.t_intended) // 1_000_000
        if name == "group":
            return self.group
        f = self.fields[name]
        fkey = self.field_keys[name]
        if isinstance(f, UniformField):
            u = uniform01(hash2(fkey, ctx.local, ctx.seq))
            return f.min + (f.max - f.min) * u
        if isinstance(f, ChoiceField):
            table = self.choices.setdefault(
                name, Ragged.from_list([_json_inner(v) for v in f.values])
            )
            pick = (hash2(fkey, ctx.local, ctx.seq) % np.uint64(len(f.values))).astype(np.int64)
            return table.take(pick)
        assert isinstance(f, WalkField)
        return self._walk(name, f, fkey, ctx)

    def _decimals(self, name: str) -> int:
        f = self.fields.get(name)
        return f.decimals if isinstance(f, UniformField | WalkField) else 0

    def _walk(self, name: str, f: WalkField, fkey: int, ctx: PayloadContext) -> np.ndarray:
        """Integer +-1 steps summed per device in seq order, scaled, folded into [min, max]."""
        steps = np.where(hash2(fkey, ctx.local, ctx.seq) & np.uint64(1), 1, -1).astype(np.int64)
        order = np.lexsort((ctx.seq, ctx.local))
        dev = ctx.local[order]
        pos = self.walk_pos.get(name)
        if pos is None:
            pos = self.walk_pos[name] = np.zeros(len(self.ids), dtype=np.int64)
        out = np.empty(len(ctx), dtype=np.int64)
        csum = np.cumsum(steps[order])
        first = np.r_[True, dev[1:] != dev[:-1]]
        starts = np.nonzero(first)[0]
        base = csum[starts] - steps[order][starts]
        seg = np.cumsum(first) - 1
        walked = csum - base[seg] + pos[dev[starts]][seg]
        out[order] = walked
        last = np.r_[starts[1:] - 1, len(dev) - 1]
        pos[dev[starts]] = walked[last]
        value = f.start + f.step * out
        span = f.max - f.min
        if span <= 0:
            return np.full(len(ctx), f.min)
        y = np.mod(value - f.min, 2 * span)
        return f.min + np.where(y <= span, y, 2 * span - y)

    def render(self, ctx: PayloadContext) -> Ragged:
        n = len(ctx)
        values = [p if isinstance(p, bytes) else self._values(p, ctx) for p in self.parts]
        if n <= SMALL_BATCH:
            return self._render_rows(values, n)
        cols = []
        for part, v in zip(self.parts, values, strict=True):
            if isinstance(v, bytes):
                if v:
                    cols.append(Ragged.constant(v, n))
            elif isinstance(v, Ragged):
                cols.append(v)
            elif v.dtype.kind == "f":
                cols.append(format_fixed(v, self._decimals(part)))
            else:
                cols.append(format_ints(v))
        return concat_columns(cols) if cols else Ragged.constant(b"", n)

    def _render_rows(self, values: list[Any], n: int) -> Ragged:
        """The same bytes as the vectorised path, built per row: cheaper for a handful of rows."""
        cells: list[list[bytes]] = []
        for part, v in zip(self.parts, values, strict=True):
            if isinstance(v, bytes):
                cells.append([v] * n)
            elif isinstance(v, Ragged):
                cells.append(v.to_list())
            elif v.dtype.kind == "f":
                d = self._decimals(part)
                cells.append([_fixed(x, d) for x in v.tolist()])
            else:
                cells.append([b"%d" % x for x in v.tolist()])
        return Ragged.from_list([b"".join(row) for row in zip(*cells, strict=True)])


SMALL_BATCH = 48  # below this, per-row formatting beats numpy's per-call overhead


def _fixed(x: float, decimals: int) -> bytes:
    """`format_fixed` for one value: round half to even on x * 10**decimals, no '-0'."""
    scaled = round(x * (10.0**decimals))
    if decimals == 0:
        return b"%d" % scaled
    a = abs(scaled)
    unit = 10**decimals
    return b"%s%d.%0*d" % (b"-" if scaled < 0 else b"", a // unit, decimals, a % unit)


class JsonLinesGenerator:
    """One payload per line of a JSON-lines file; sequential (per device, cycling) or random."""

    def __init__(self, spec: JsonLinesPayload, key: int, base: Path) -> None:
        path = resolve_path(spec.file, base)
        try:
            lines = [ln.rstrip(b"\r") for ln in path.read_bytes().split(b"\n") if ln.strip()]
        except OSError as exc:
            raise UserError(f"{path}: cannot read payload data file: {exc.strerror}") from None
        if not lines:
            raise UserError(f"{path}: payload data file has no lines")
        self.table = Ragged.from_list(lines)
        self.random = spec.order == "random"
        self.key = key

    def render(self, ctx: PayloadContext) -> Ragged:
        n = np.uint64(len(self.table))
        if self.random:
            idx = hash2(self.key, ctx.local, ctx.seq) % n
        else:
            idx = ctx.seq.astype(np.uint64) % n
        return self.table.take(idx.astype(np.int64))


class RandomBytesGenerator:
    """`size` pseudo-random bytes, a pure function of (seed, device, seq)."""

    def __init__(self, spec: RandomBytesPayload, key: int) -> None:
        self.size = spec.size
        self.key = key

    def render(self, ctx: PayloadContext) -> Ragged:
        n = len(ctx)
        words = (self.size + 7) // 8
        if words == 0:
            return Ragged(np.zeros(0, np.uint8), np.zeros(n + 1, np.int64))
        row = hash2(self.key, ctx.local, ctx.seq)
        mat = hash2(self.key, row[:, None] + np.arange(words, dtype=np.uint64)[None, :])
        data = mat.view(np.uint8).reshape(n, words * 8)[:, : self.size]
        return Ragged(
            np.ascontiguousarray(data).ravel(), np.arange(n + 1, dtype=np.int64) * self.size
        )


class PluginGenerator:
    """Adapts a user's `module:Class` (constructed with **options) to the contract."""

    def __init__(self, spec: PluginPayload, base: Path | None = None) -> None:
        cls = load_object(spec.plugin, what="payload plugin", folder=base)
        self.inner = cls(**spec.options)

    def render(self, ctx: PayloadContext) -> Ragged:
        out = self.inner.render(ctx)
        result = out if isinstance(out, Ragged) else Ragged.from_list([bytes(b) for b in out])
        if len(result) != len(ctx):
            raise UserError(f"payload plugin returned {len(result)} payloads for {len(ctx)} rows")
        return result


class ReplayGenerator:
    """The recorded payload of each (device, seq), byte for byte (simd.plan.replay)."""

    def __init__(self, plan: ReplayPlan) -> None:
        self.plan = plan

    def render(self, ctx: PayloadContext) -> Ragged:
        return self.plan.payloads(ctx.local, ctx.seq)


def make_generator(
    spec: Payload,
    *,
    seed: int,
    group: str,
    message: str,
    ids: Ragged,
    base: Path,
    replay: ReplayPlan | None = None,
) -> PayloadGenerator:
    """Build the generator a (group, message) uses (`replay`: the group's replay plan)."""
    key = stream_key(seed, "payload", group, message)
    if isinstance(spec, ReplayPayload):
        if replay is None:
            raise UserError(f"fleet {group}: payload kind 'replay' needs the group's replay")
        return ReplayGenerator(replay)
    if isinstance(spec, TemplatePayload):
        return TemplateGenerator(spec, key, ids, group)
    if isinstance(spec, JsonLinesPayload):
        return JsonLinesGenerator(spec, key, base)
    if isinstance(spec, RandomBytesPayload):
        return RandomBytesGenerator(spec, key)
    return PluginGenerator(spec, base)


def check_plugins(messages: list[Any], base: Path | None = None) -> None:
    """Import every plugin a scenario names, so a bad one is a UserError before any worker runs."""
    for msg in messages:
        if isinstance(msg.payload, PluginPayload):
            PluginGenerator(msg.payload, base)
