"""Devices that listen, and commanders that command them (scenario: subscribe, reply, commands).

A listening device subscribes to its own topic filters on its connection (after CONNACK). What
arrives is logged as a `receive` row with `message` = COMMAND_MESSAGE that, like a probe's,
names the message by its sender's (device, seq) and intended time, from the message's trace
line (an untraced message: the receiving device, seq -1). A device with `reply` answers each
traced message after its service time, at qos 0, on its reply topic, with the trace line as the
payload, and logs a `reply` row of its own (device = the replying device, seq = the command's).

A commander group's scheduled publishes are commands: publish (device c, seq k) goes to device
hash(seed, group, c, k) mod n of the target group, on the command topic rendered with that
device's id, behind a trace line '#simd c k t'. The commander subscribes to the reply filter;
the reply to (c, k), wherever it comes from, ends the command: a `command` row (c, k) with
status acked and t_done the reply's arrival (the round trip from the intended send time), or
status timeout when no reply came within the group's timeout (or before the run ended). Every
command publish so gets one command row with a final status.

Replies can only come while the target device's worker is still connected: in a run with
several workers, a command due in the run's last moments may time out because its device's
worker already closed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import trio

from simd.log.events import (
    ACKED,
    COMMAND,
    COMMAND_MESSAGE,
    FAILED,
    NULL_NS,
    OK,
    RECEIVE,
    REPLY,
    SENT,
)
from simd.log.events import TIMEOUT as TIMED_OUT
from simd.log.ragged import Ragged, scatter_rows
from simd.model.scenario import Scenario, fill_template
from simd.plan.hashing import hash2, stream_key
from simd.plan.schedule import device_ids, layout_groups
from simd.transports._base import PublishBatch, Row, RowStage
from simd.transports.mqtt.session import topic_bytes

TRACE_LINE = b"#simd "  # '#simd <device> <seq> <intended ns>\n' before a traced payload
_NULL = int(NULL_NS)  # no time (simd.log.events)


def parse_trace(payload: bytes) -> tuple[int, int, int, bytes] | None:
    """(device, seq, intended ns, the payload after the line) of a traced payload, or None."""
    if not payload.startswith(TRACE_LINE):
        return None
    head, _, rest = payload.partition(b"\n")
    try:
        device, seq, t_int = (int(x) for x in head[len(TRACE_LINE) :].split())
    except ValueError:
        return None
    return device, seq, t_int, rest


@dataclass(frozen=True)
class _Commander:
    key: int  # hashes (commander, seq) to the target device
    targets: Ragged  # the command topic (encoded) per device of the target group
    timeout_ns: int


class Commands:
    """The command and reply traffic of one worker's connections (see the module docstring)."""

    def __init__(self, scenario: Scenario, groups: np.ndarray) -> None:
        self.scenario = scenario
        fleet = scenario.fleet
        layouts = {lay.name: lay for lay in layout_groups(scenario)}
        self.commanders: dict[int, _Commander] = {}
        here = set(groups.tolist())  # the groups with devices in this worker
        for gi, g in enumerate(fleet):
            if g.commands is None or gi not in here:
                continue
            target = fleet[[x.name for x in fleet].index(g.commands.to)]
            ids = device_ids(target, range(layouts[target.name].count))
            self.commanders[gi] = _Commander(
                stream_key(scenario.seed, "command", g.name),
                Ragged.from_list(
                    [topic_bytes(g.commands.topic.replace("{target_id}", i)) for i in ids]
                ),
                g.commands.timeout,
            )
        self.commanding = np.array([gi in self.commanders for gi in range(len(fleet))])
        self.listening = np.array([bool(g.subscribe) for g in fleet])
        self.outstanding: dict[tuple[int, int], tuple[int, int, int]] = {}  # -> t, phase, due
        self.replies: list[tuple[int, int, int, bytes]] = []  # due, conn, seq, trace line
        self.reply_topic: dict[int, bytes] = {}  # conn index -> its reply topic
        self.devices: dict[int, int] = {}  # conn index -> its device (global index)
        self.wake = trio.Event()

    @property
    def active(self) -> bool:
        return bool(self.commanders) or bool(self.listening.any())

    def subscriptions(self, group: int, fields: dict[str, str]) -> list[tuple[str, int]]:
        """The filters a device subscribes to once connected."""
        g = self.scenario.fleet[group]
        subs = [(fill_template(f, fields), g.subscribe_qos) for f in g.subscribe]
        if g.commands is not None:
            subs.append((g.commands.replies, 1))
        return subs

    def set_reply_topic(self, conn: int, device: int, group: int, fields: dict[str, str]) -> None:
        reply = self.scenario.fleet[group].reply
        if reply is not None:
            self.reply_topic[conn] = topic_bytes(fill_template(reply.topic, fields))
            self.devices[conn] = device

    def topics(self, batch: PublishBatch, rows: np.ndarray, default: Ragged) -> Ragged:
        """Each row's topic: commands go to their target device's command topic."""
        groups = batch.group[rows]
        cmd = self.commanding[groups]
        if not cmd.any():
            return default
        out = []
        for gi, c in self.commanders.items():
            sel = np.nonzero(groups == gi)[0]
            if len(sel):
                r = rows[sel]
                target = hash2(c.key, batch.device[r], batch.seq[r]) % np.uint64(len(c.targets))
                out.append((sel, c.targets.take(target.astype(np.int64))))
        plain = np.nonzero(~cmd)[0]
        out.append((plain, default.take(plain)))
        return scatter_rows(len(rows), out)

    def sent(self, batch: PublishBatch) -> None:
        """Remember the commands of a batch until their replies come (or time out)."""
        cmd = np.nonzero(self.commanding[batch.group])[0]
        for i in cmd.tolist():
            g = int(batch.group[i])
            t = int(batch.t_intended[i])
            key = (int(batch.device[i]), int(batch.seq[i]))
            self.outstanding[key] = (t, int(batch.phase[i]), t + self.commanders[g].timeout_ns)

    def on_message(
        self, conn: int, device: int, group: int, payload: bytes, qos: int, now: int,
        stage: RowStage,
    ) -> None:  # fmt: skip
        """A message on connection `conn` (of `device` in `group`), on the device's own
        subscription: a reply to one of ours, or a command."""
        trace = parse_trace(payload)
        if group in self.commanders:
            if trace is None or trace[0] != device:
                return  # not a reply to this commander (the reply filter takes others' too)
            kept = self.outstanding.pop((trace[0], trace[1]), None)
            if kept is not None:
                row = Row(trace[0], trace[1], COMMAND, ACKED, phase=kept[1], t_intended=kept[0],
                          t_done=now, bytes=len(payload), qos=qos)  # fmt: skip
                stage.add(row)
            return
        # like a probe's, the row names the message: its sender's (device, seq); an untraced
        # message can only be named by its receiver, with seq -1
        sender, seq, t_int = trace[:3] if trace else (device, -1, _NULL)
        stage.add(Row(sender, seq, RECEIVE, OK, message=COMMAND_MESSAGE, t_intended=t_int,
                      t_done=now, bytes=len(payload), qos=qos))  # fmt: skip
        reply = self.scenario.fleet[group].reply
        if reply is not None and trace is not None:
            line = payload[: len(payload) - len(trace[3])]
            heapq.heappush(self.replies, (now + reply.service_time, conn, seq, line))
            self.wake.set()

    async def replier(
        self,
        clock: Any,
        stage: RowStage,
        code: Callable[[str], int],
        send: Callable[[int, bytes, bytes], bool],
        notify: Callable[[], None],
    ) -> None:
        """Send each reply when its service time is up (qos 0), with a reply row. `send(conn,
        topic, payload)` publishes on a connection and says whether it could (connected);
        `code` gives an error text its code; `notify` tells a waiting drain that replies went."""
        while True:
            if not self.replies:
                self.wake = trio.Event()
                await self.wake.wait()
                continue
            due = self.replies[0][0]
            if clock.now_ns() < due:
                with trio.move_on_after(max(0.0, (due - clock.now_ns()) / 1e9)):
                    self.wake = trio.Event()
                    await self.wake.wait()  # an earlier reply may have been queued meanwhile
                continue
            now = clock.now_ns()
            while self.replies and self.replies[0][0] <= now:
                due, ci, seq, line = heapq.heappop(self.replies)
                device = self.devices[ci]
                if not send(ci, self.reply_topic[ci], line):
                    why = code("reply: not connected")
                    stage.add(Row(device, seq, REPLY, FAILED, t_intended=due, t_sent=now,
                                  t_done=now, bytes=len(line), error=why))  # fmt: skip
                    continue
                stage.add(Row(device, seq, REPLY, SENT, t_intended=due, t_sent=now,
                              t_done=now, bytes=len(line)))  # fmt: skip
            notify()

    def expire(self, now: int, stage: RowStage, code: Any) -> None:
        """Commands whose reply is overdue: a timeout row each."""
        if not self.outstanding:
            return
        late = [k for k, (_, _, due) in self.outstanding.items() if due <= now]
        for k in late:
            t, phase, _ = self.outstanding.pop(k)
            why = code("command: no reply within its timeout")
            stage.add(Row(k[0], k[1], COMMAND, TIMED_OUT, phase=phase, t_intended=t, error=why))

    def finish(self, stage: RowStage, code: int, reply_code: int, now: int) -> None:
        """At the end of the run: commands still waiting get a timeout row, replies not yet
        sent a failed reply row."""
        for (dev, seq), (t, phase, _) in self.outstanding.items():
            stage.add(Row(dev, seq, COMMAND, TIMED_OUT, phase=phase, t_intended=t, error=code))
        self.outstanding.clear()
        for due, ci, seq, line in self.replies:
            stage.add(Row(self.devices[ci], seq, REPLY, FAILED, t_intended=due, t_done=now,
                          bytes=len(line), error=reply_code))  # fmt: skip
        self.replies.clear()
