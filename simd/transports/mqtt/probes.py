"""Probes: subscribers that log a receive row per delivered message (scenario: [[probe]]).

Each probe (run once per run, by the first worker) holds one connection, subscribes to its
filter and logs what arrives: a `receive` row whose `message` column is the probe's index,
named by its sender's (device, seq) and intended time when the message carries a trace (the
MQTT 5 `simd-trace` user property or a '#simd' first line; simd.transports.mqtt.commands) or a
JSON timestamp field, so delivery and end-to-end latency come from the log. In its offline
windows a probe is away (a disconnect row, then a new connection at the window's end).
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from collections.abc import Callable

import trio

from simd.clock import RunClock
from simd.log.events import CONNECT, DISCONNECT, FAILED, NULL_NS, OK, RECEIVE
from simd.model.scenario import Probe, Scenario
from simd.transports._base import Row, RowStage
from simd.transports._net import Target, reason_of
from simd.transports.mqtt import codec as c
from simd.transports.mqtt.commands import parse_trace
from simd.transports.mqtt.connection import LINK_ERRORS, ConnectRefused, Link, open_link
from simd.transports.mqtt.session import ClientSession, Event, Received

PROBE_KEEPALIVE_S = 60
PROBE_CONNECT_TIMEOUT_S = 10.0
PROBE_SESSION_EXPIRY_S = 3600  # a persistent (clean = false) v5 probe's session lifetime
_NULL = int(NULL_NS)  # no time (simd.log.events)


class Probes:
    """The probes of a run, on one worker's nursery (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        target: Target,
        ssl_context: ssl.SSLContext | None,
        clock: RunClock,
        stage: RowStage,
        code: Callable[[str], int],
    ) -> None:
        self.scenario = scenario
        self.target = target
        self.ssl_context = ssl_context
        self.clock = clock
        self.stage = stage
        self.code = code
        self.scopes: list[trio.CancelScope] = []
        self.nursery: trio.Nursery | None = None

    async def start(self, nursery: trio.Nursery) -> None:
        """Start every probe; return when each subscribed (or failed, or 10 s passed)."""
        self.nursery = nursery
        for pi, probe in enumerate(self.scenario.probe):
            ready = trio.Event()
            scope = trio.CancelScope()
            self.scopes.append(scope)
            nursery.start_soon(self._probe, pi, probe, ready, scope)
            with trio.move_on_after(PROBE_CONNECT_TIMEOUT_S):
                await ready.wait()

    def stop(self) -> None:
        """Every probe says goodbye and ends."""
        for scope in self.scopes:
            scope.cancel()

    async def _probe(
        self, index: int, probe: Probe, ready: trio.Event, scope: trio.CancelScope
    ) -> None:
        client_id = f"simd-probe-{probe.name}-{os.getpid()}"
        windows = sorted((w.start, w.end) for w in probe.offline)
        with scope:
            try:
                while True:
                    until = windows[0][0] if windows else None
                    await self._session(index, probe, client_id, ready, until)
                    if not windows:
                        return
                    _, end = windows.pop(0)
                    now = self.clock.now_ns()
                    self.stage.add(
                        Row(-1, -1, DISCONNECT, OK, message=index, t_sent=now, t_done=now)
                    )
                    await self.clock.sleep_until_ns(end)
            finally:
                ready.set()

    async def _session(
        self, index: int, probe: Probe, client_id: str, ready: trio.Event, until: int | None
    ) -> None:
        """One connection of a probe: until run time `until` (an offline window) or the end."""
        version = c.V5 if probe.version == "5" else c.V311
        props: c.Properties = ()
        if not probe.clean and version == c.V5:
            props = (("session_expiry_interval", PROBE_SESSION_EXPIRY_S),)
        packet = c.Connect(
            client_id, version, probe.clean, PROBE_KEEPALIVE_S, self.target.username,
            self.target.password, properties=props,
        )  # fmt: skip
        t0 = self.clock.now_ns()
        link: Link | None = None

        def handle(done: list[int], events: list[Event]) -> None:
            now = self.clock.now_ns()
            for ev in events:
                if isinstance(ev, Received):
                    self._received(index, probe, ev.publish, now)
                    now += 1  # one read's messages keep their order in receive time

        try:
            assert self.nursery is not None
            with trio.fail_after(PROBE_CONNECT_TIMEOUT_S):
                link, _, rest = await open_link(
                    self.target,
                    self.ssl_context,
                    self.scenario.tls,
                    self.nursery,
                    ClientSession(version),
                    packet,
                )
                handle([], rest)
                _, after = await link.subscribe([(probe.topic, probe.qos)], handle)
            handle([], after)
            ready.set()
            self.stage.add(
                Row(-1, -1, CONNECT, OK, message=index, t_sent=t0, t_done=self.clock.now_ns())
            )
            scope = trio.CancelScope() if until is None else self.clock.scope_until(until)
            with scope:
                await link.run(handle, keepalive_s=PROBE_KEEPALIVE_S)
        except (*LINK_ERRORS, ConnectRefused) as exc:
            why = self.code(f"probe {probe.name}: {reason_of(exc)}")
            now = self.clock.now_ns()
            self.stage.add(
                Row(-1, -1, CONNECT, FAILED, message=index, t_sent=t0, t_done=now, error=why)
            )
        finally:
            if link is not None:
                with trio.CancelScope(shield=True):
                    await link.goodbye()

    def _received(self, index: int, probe: Probe, p: c.Publish, now: int) -> None:
        device, seq, t_int = -1, -1, _NULL
        payload = p.payload
        trace = next(
            (v[1] for k, v in p.properties if k == "user_property" and v[0] == "simd-trace"), None
        )
        stamped = parse_trace(payload) if trace is None else None
        if stamped is not None:
            device, seq, t_int, payload = stamped
        elif trace is not None:
            with contextlib.suppress(ValueError):
                device, seq, t_int = (int(x) for x in trace.split())
        elif probe.timestamp_field is not None:
            try:
                ms = json.loads(payload)[probe.timestamp_field]
                t_int = int(ms * 1_000_000) - self.clock.epoch_ns
            except (ValueError, KeyError, TypeError):
                pass
        self.stage.add(
            Row(
                device,
                seq,
                RECEIVE,
                OK,
                message=index,
                t_intended=t_int,
                t_done=now,
                bytes=len(p.payload),
                qos=p.qos,
            )
        )
