"""PUBLISH packets for a batch's rows, vectorised: rows in, bytes out (no socket, no clock).

Built once per worker from the scenario and each connection's topics; the transport
(simd.transports.mqtt.transport) chooses the rows, takes packet ids from the sessions and
moves the bytes.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from simd.log.ragged import Ragged, concat_columns, format_ints, scatter_rows
from simd.model.scenario import Scenario
from simd.transports._base import PublishBatch
from simd.transports.mqtt import codec as c
from simd.transports.mqtt.commands import TRACE_LINE

# user property 0x26, key "simd-trace" (length-prefixed); the value's length and text follow
TRACE_KEY = b"\x26" + c.utf8("simd-trace")


def group_properties(scenario: Scenario) -> list[bytes]:
    """Each group's constant MQTT 5 properties, encoded (b"" under 3.1.1)."""
    out = []
    for g in scenario.fleet:
        opts = g.mqtt
        props: c.Properties = tuple(("user_property", kv) for kv in opts.user_properties.items())
        if opts.message_expiry is not None:
            props += (("message_expiry_interval", math.ceil(opts.message_expiry / 1e9)),)
        out.append(c.encode_properties(props) if opts.version == "5" else b"")
    return out


def _props_len(encoded: bytes) -> int:
    """The length a pre-encoded property block announces (its leading varint)."""
    value, shift = 0, 0
    for b in encoded:
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value
        shift += 7
    return value


class BatchEncoder:
    """Tables per connection (topics), per group (properties, tracing, stamping) and per
    (group, message) (the fixed header's first byte), and the vector builds over them."""

    def __init__(
        self,
        scenario: Scenario,
        topics: list[list[bytes]],
        group_of: np.ndarray,
    ) -> None:
        fleet = scenario.fleet
        self.max_msgs = max(len(g.resolved_messages()) for g in fleet)
        self.topic_table = Ragged.from_list(
            [t for ts in topics for t in ts + [b""] * (self.max_msgs - len(ts))]
        )
        self.group_of = group_of  # per connection
        props = group_properties(scenario)
        self.props_table = Ragged.from_list(props)
        self.props_inner = Ragged.from_list(
            [p[len(c.varint(_props_len(p))) :] if p else b"" for p in props]
        )
        # groups whose publishes carry simd-trace (their properties are built per row)
        self.trace = np.array([g.mqtt.trace_in == "property" for g in fleet], dtype=bool)
        # groups whose payloads start with a '#simd <device> <seq> <ns>' line
        self.stamp = np.array(
            [g.mqtt.trace_in == "payload" or g.commands is not None for g in fleet], dtype=bool
        )
        self.stamping = bool(self.stamp.any())  # checked per batch: a bool, not a scan
        self.first_byte = np.full((len(fleet), self.max_msgs), 0x30, dtype=np.uint8)  # PUBLISH
        for gi, g in enumerate(fleet):
            for mi, m in enumerate(g.resolved_messages()):
                self.first_byte[gi, mi] |= int(bool(m.retain))

    def topics(self, conn_idx: np.ndarray, msg: np.ndarray) -> Ragged:
        """Each row's encoded topic (length-prefixed), from its connection and message."""
        return self.topic_table.take(conn_idx * self.max_msgs + msg)

    def stamped(self, batch: PublishBatch) -> PublishBatch:
        """Payloads of tracing groups behind a first line '#simd <device> <seq> <ns>'."""
        stamped = self.stamp[batch.group]
        if not stamped.any():
            return batch
        rows = np.nonzero(stamped)[0]
        n = len(rows)
        sp = Ragged.constant(b" ", n)
        head = concat_columns(
            [
                Ragged.constant(TRACE_LINE, n),
                format_ints(batch.device[rows]),
                sp,
                format_ints(batch.seq[rows]),
                sp,
                format_ints(batch.t_intended[rows]),
                Ragged.constant(b"\n", n),
            ]
        )
        new = concat_columns([head, batch.payload.take(rows)])
        if n < len(batch):
            other = np.nonzero(~stamped)[0]
            new = scatter_rows(len(batch), [(rows, new), (other, batch.payload.take(other))])
        return replace(batch, payload=new)

    def properties(self, batch: PublishBatch, rows: np.ndarray, groups: np.ndarray) -> Ragged:
        """Each row's encoded MQTT 5 properties (b"" for 3.1.1): the group's constant ones, plus
        simd-trace for groups that trace."""
        props = self.props_table.take(groups)
        traced = self.trace[groups]
        if not traced.any():
            return props
        n = len(rows)
        sp = Ragged.constant(b" ", n)
        value = concat_columns(
            [
                format_ints(batch.device[rows]),
                sp,
                format_ints(batch.seq[rows]),
                sp,
                format_ints(batch.t_intended[rows]),
            ]
        )
        inner_const = self.props_inner.take(groups)
        value_len = Ragged(
            value.lengths.astype(">u2").view(np.uint8).copy(), np.arange(n + 1, dtype=np.int64) * 2
        )
        inner = concat_columns([inner_const, Ragged.constant(TRACE_KEY, n), value_len, value])
        built = concat_columns([c.varints(inner.lengths), inner])
        if traced.all():
            return built
        idx = np.arange(n)
        return scatter_rows(
            n, [(idx[traced], built.take(idx[traced])), (idx[~traced], props.take(idx[~traced]))]
        )

    def packets(
        self,
        batch: PublishBatch,
        rows: np.ndarray,
        conn_idx: np.ndarray,
        topics: Ragged,
        pids: np.ndarray | None = None,
    ) -> tuple[Ragged, Ragged]:
        """(the PUBLISH packet of each row, its payload): QoS 0 without `pids`, else each
        row's QoS (1 or 2) with its packet id."""
        msg = batch.message[rows].astype(np.int64)
        groups = self.group_of[conn_idx]
        props = self.properties(batch, rows, groups)
        payload = batch.payload.take(rows)
        first = self.first_byte[groups, msg]
        if pids is None:
            rem = topics.lengths + props.lengths + payload.lengths
            parts = [c.varint_prefixes(first, rem), topics, props, payload]
        else:
            first = first | (batch.qos[rows].astype(np.uint8) << 1)
            rem = topics.lengths + 2 + props.lengths + payload.lengths
            pid_bytes = Ragged(
                pids.astype(">u2").view(np.uint8).copy(),
                np.arange(len(rows) + 1, dtype=np.int64) * 2,
            )
            parts = [c.varint_prefixes(first, rem), topics, pid_bytes, props, payload]
        return concat_columns(parts), payload
