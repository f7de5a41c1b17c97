"""Payload generators: deterministic, valid JSON, the same bytes however a batch is split."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simd.errors import UserError
from simd.log.ragged import Ragged
from simd.model.scenario import (
    JsonLinesPayload,
    PluginPayload,
    RandomBytesPayload,
    TemplatePayload,
)
from simd.plan.payloads import PayloadContext, make_generator

SPEC = TemplatePayload(
    template='{"id":"{device_id}","i":{index},"seq":{seq},"ts":{timestamp},"t":{temp},'
    '"w":{w},"s":"{state}","g":"{group}","n":{n}}',
    fields={
        "temp": {"kind": "uniform", "min": -10, "max": 40, "decimals": 2},
        "w": {"kind": "walk", "start": 5, "step": 0.5, "min": 0, "max": 10, "decimals": 1},
        "state": {"kind": "choice", "values": ["ok", "warn", 'say "hi"']},
        "n": {"kind": "choice", "values": [1, 2.5, True]},
    },
)
IDS = Ragged.from_list([f"dev-{i:03d}".encode() for i in range(50)])


def _ctx(local: np.ndarray, seq: np.ndarray) -> PayloadContext:
    return PayloadContext(local, seq, seq * 1_000_000_000 + local, 1_700_000_000_000_000_000)


def _gen() -> object:
    return make_generator(SPEC, seed=9, group="grp", message="m", ids=IDS, base=Path("."))


def _stream(devices: int, per_device: int) -> tuple[np.ndarray, np.ndarray]:
    seq = np.repeat(np.arange(per_device), devices)
    local = np.tile(np.arange(devices), per_device)
    return local, seq


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(1, 400), min_size=1, max_size=8))
def test_same_bytes_however_batches_are_cut(cuts: list[int]) -> None:
    """A stream rendered in one batch or in arbitrary pieces (small, large) gives equal bytes."""
    local, seq = _stream(20, 30)
    whole = _gen().render(_ctx(local, seq)).to_list()  # type: ignore[attr-defined]
    gen = _gen()
    pieces: list[bytes] = []
    i = 0
    k = 0
    while i < len(seq):
        j = min(len(seq), i + cuts[k % len(cuts)])
        pieces += gen.render(_ctx(local[i:j], seq[i:j])).to_list()  # type: ignore[attr-defined]
        i, k = j, k + 1
    assert pieces == whole


def test_template_is_valid_json_with_the_right_values() -> None:
    """Each payload parses as JSON and carries id, seq, timestamp and bounded fields."""
    local, seq = _stream(10, 40)
    out = _gen().render(_ctx(local, seq)).to_list()  # type: ignore[attr-defined]
    walks: dict[int, list[float]] = {}
    for d, q, raw in zip(local.tolist(), seq.tolist(), out, strict=True):
        doc = json.loads(raw)
        assert doc["id"] == f"dev-{d:03d}" and doc["i"] == d and doc["seq"] == q
        assert doc["ts"] == (1_700_000_000_000_000_000 + q * 1_000_000_000 + d) // 1_000_000
        assert -10 <= doc["t"] <= 40
        assert doc["s"] in ("ok", "warn", 'say "hi"') and doc["g"] == "grp"
        assert doc["n"] in (1, 2.5, True)
        walks.setdefault(d, []).append(doc["w"])
    for w in walks.values():
        assert all(0 <= x <= 10 for x in w)
        assert all(abs(b - a) == pytest.approx(0.5) for a, b in itertools.pairwise(w))


def test_jsonl_cycles_per_device(tmp_path: Path) -> None:
    """JSON-lines payloads are taken in order by seq, cycling."""
    f = tmp_path / "data.jsonl"
    f.write_text('{"a":1}\n{"a":2}\n\n{"a":3}\n')
    gen = make_generator(
        JsonLinesPayload(file="data.jsonl"), seed=1, group="g", message="m", ids=IDS, base=tmp_path
    )
    out = gen.render(_ctx(np.zeros(7, np.int64), np.arange(7))).to_list()
    assert out == [b'{"a":1}', b'{"a":2}', b'{"a":3}'] * 2 + [b'{"a":1}']


def test_random_bytes_are_deterministic() -> None:
    """Random payloads have the configured size and depend only on (seed, device, seq)."""
    spec = RandomBytesPayload(size=37)
    a = make_generator(spec, seed=1, group="g", message="m", ids=IDS, base=Path("."))
    b = make_generator(spec, seed=1, group="g", message="m", ids=IDS, base=Path("."))
    local, seq = _stream(5, 5)
    ra = a.render(_ctx(local, seq)).to_list()
    rb = b.render(_ctx(local[::-1].copy(), seq[::-1].copy())).to_list()
    assert all(len(x) == 37 for x in ra)
    assert ra == rb[::-1]
    assert len(set(ra)) == len(ra)


class Upper:
    """A test plugin: the device index and seq, upper-cased."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def render(self, ctx: PayloadContext) -> list[bytes]:
        return [
            f"{self.prefix}-{d}-{s}".upper().encode()
            for d, s in zip(ctx.local, ctx.seq, strict=True)
        ]


def test_plugin_payload() -> None:
    """A module:Class plugin is constructed with its options and called per batch."""
    gen = make_generator(
        PluginPayload(plugin="tests.test_payloads:Upper", options={"prefix": "x"}),
        seed=1,
        group="g",
        message="m",
        ids=IDS,
        base=Path("."),
    )
    assert gen.render(_ctx(np.array([1, 2]), np.array([0, 5]))).to_list() == [b"X-1-0", b"X-2-5"]
    with pytest.raises(UserError, match="cannot be loaded"):
        make_generator(
            PluginPayload(plugin="no_such_module:Nope"),
            seed=1,
            group="g",
            message="m",
            ids=IDS,
            base=Path("."),
        )
