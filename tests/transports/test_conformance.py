"""The transport contract (simd.transports._base.Transport), held over every transport in-process:
null, sim, MQTT on mosquitto and on amqtt, HTTP on the test server, the Redis plugin example."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import trio

from tests.transports.harness import FINAL, Harness, Under, wait_for

COMPLETED = {"acked", "sent"}


async def test_every_publish_has_exactly_one_final_row(under: Under) -> None:
    """Four rounds to a healthy target: one row per publish, each final and completed; a
    device with a session has a connect and, after close, a disconnect row."""
    async with Harness(under) as h:
        for _ in range(4):
            await h.publish()
            await trio.sleep(0.02)
        rows = await h.finish()
    keys = rows.publishes()
    assert len(keys) == len(set(keys)) == 4 * h.devices
    assert set(rows.statuses()) <= COMPLETED, rows.texts()
    assert rows.statuses("connect") == {"ok": h.devices}
    if under.sessions:
        assert rows.statuses("disconnect") == {"ok": h.devices}


async def test_a_cancelled_publish_breaks_nothing(under: Under) -> None:
    """A publish call cancelled at its first checkpoint: no publish gets two rows, the next
    batch is whole, and drain and close still work."""
    async with Harness(under) as h:
        first = h.batch()
        with trio.CancelScope() as scope:
            scope.cancel()
            await h.transport.publish(first)
        await h.publish()
        rows = await h.finish()
    keys = rows.publishes()
    assert len(keys) == len(set(keys))
    second = {(d, 1) for d in range(h.devices)}
    assert second <= set(keys)
    assert set(rows.statuses()) <= FINAL


async def test_a_stalled_target_gives_timeout_rows(under: Under) -> None:
    """The server stops answering (SIGSTOP, or an HTTP server that waits 2 s): publishes
    in the stall end as timeout (or error) rows within their timeout, never as completed, and
    an answer that comes after its timeout does not add a second row."""
    if under.stall is None or under.unstall is None:
        pytest.skip(f"{under.name}: no server to stall (its own timeouts are modelled)")
    async with Harness(under) as h:
        await h.publish()
        await wait_for(lambda: len(h.rows().publishes()) == h.devices)
        under.stall()
        try:
            await h.publish()
            await wait_for(lambda: len(h.rows().publishes()) == 2 * h.devices, 20)
        finally:
            under.unstall()
        await trio.sleep(0.5)  # answers to the timed-out publishes arrive now
        rows = await h.finish()
    keys = rows.publishes()
    assert len(keys) == len(set(keys)) == 2 * h.devices
    stalled = rows.of("publish") & (rows.cols["seq"] == 1)
    assert set(rows.status[stalled]) <= {"timeout", "error"}, rows.texts()


async def test_a_target_restart_is_survived(under: Under) -> None:
    """The server is restarted on its port: publishes fail or drop while it is away, the
    transport reconnects by itself, later publishes complete, and each has one row."""
    if under.restart is None:
        pytest.skip(f"{under.name}: no server to restart")
    async with Harness(under) as h:
        await h.publish()
        await wait_for(lambda: len(h.rows().publishes()) == h.devices)
        under.restart()

        def completed_round() -> bool:
            rows = h.rows()
            late = rows.of("publish") & (rows.cols["seq"] >= 1)
            by_seq: dict[int, int] = {}
            for seq, status in zip(rows.cols["seq"][late], rows.status[late], strict=True):
                by_seq[seq] = by_seq.get(seq, 0) + (status in COMPLETED)
            return any(n == h.devices for n in by_seq.values())

        with trio.fail_after(30):
            while not completed_round():
                await h.publish()
                await trio.sleep(0.2)
        rows = await h.finish()
    keys = rows.publishes()
    assert len(keys) == len(set(keys)) == h.rounds * h.devices
    assert set(rows.statuses()) <= FINAL


def _patient(group: dict[str, Any], timeout: str) -> dict[str, Any]:
    """The group's options with every publish timeout set to `timeout`."""
    return {
        k: {o: (timeout if o in ("publish_timeout", "timeout") else v) for o, v in opts.items()}
        if isinstance(opts, dict)
        else opts
        for k, opts in group.items()
    }


async def test_back_pressure_shows_as_lag(under: Under) -> None:
    """While the target is stalled nothing handed over completes; when it thaws, what
    completes carries the whole wait in its latency from the intended time: a slow target
    shows as lag, never as completions the target did not make."""
    if under.stall is None or under.unstall is None:
        pytest.skip(f"{under.name}: no server to stall (its own timeouts are modelled)")
    patient = replace(under, group=_patient(under.group, "20s"))
    async with Harness(patient) as h:
        await h.publish()
        await wait_for(lambda: len(h.rows().publishes()) == h.devices)
        under.stall()
        try:
            await h.publish()
            await trio.sleep(1.0)
            rows = h.rows()
            during = rows.of("publish") & (rows.cols["seq"] == 1)
            assert not set(rows.status[during]) & COMPLETED
        finally:
            under.unstall()
        await wait_for(lambda: len(h.rows().publishes()) == 2 * h.devices, 30)
        rows = await h.finish()
    late = rows.of("publish") & (rows.cols["seq"] == 1)
    done = late & np.isin(rows.status, list(COMPLETED))
    assert done.any(), rows.texts()
    waited = rows.cols["t_done"][done] - rows.cols["t_intended"][done]
    assert waited.min() >= 1_000_000_000, waited
