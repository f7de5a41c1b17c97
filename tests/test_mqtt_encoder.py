"""The vectorised PUBLISH encoder (simd.transports.mqtt.encoder) the transport sends with: every
packet it builds decodes, with the codec's own decoder, to the row it was built from."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simd.log.ragged import Ragged
from simd.model.scenario import parse_scenario
from simd.transports._base import PublishBatch
from simd.transports.mqtt import codec as c
from simd.transports.mqtt.encoder import BatchEncoder

SCENARIO = {
    "name": "enc",
    "target": "mqtt://127.0.0.1:1883",
    "duration": "1s",
    "fleet": [
        {"name": "v5", "count": 2, "rate": 1.0, "mqtt": {"version": "5", "trace": True,
         "user_properties": {"site": "a"}, "message_expiry": "30s"}},
        {"name": "old", "count": 2, "rate": 1.0, "retain": True, "mqtt": {"version": "3.1.1"}},
    ],
}  # fmt: skip
TOPICS = [[c.utf8(f"t/{i}")] for i in range(4)]  # per connection, one message each


def _batch(rows: list[tuple[int, int, int, bytes]]) -> PublishBatch:
    """(device, seq, qos, payload) rows; devices 0-1 are group v5, 2-3 group old."""
    n = len(rows)
    dev = np.array([r[0] for r in rows], dtype=np.int64)
    return PublishBatch(
        device=dev,
        seq=np.array([r[1] for r in rows], dtype=np.int64),
        t_intended=np.arange(n, dtype=np.int64) * 1000,
        t_sent=np.arange(n, dtype=np.int64) * 1000,
        phase=np.zeros(n, np.int16),
        message=np.zeros(n, np.uint8),
        group=(dev >= 2).astype(np.int16),
        qos=np.array([r[2] for r in rows], dtype=np.uint8),
        payload=Ragged.from_list([r[3] for r in rows]),
    )


def _decode(data: bytes, version: int) -> c.Publish:
    dec = c.Decoder(version)
    (packet,) = dec.feed(data)
    assert isinstance(packet, c.Publish)
    return packet


row = st.tuples(
    st.integers(0, 3), st.integers(0, 2**31 - 1), st.integers(0, 2), st.binary(max_size=300)
)


@settings(max_examples=60, deadline=None)
@given(st.lists(row, min_size=1, max_size=20))
def test_every_packet_decodes_to_its_row(rows: list[tuple[int, int, int, bytes]]) -> None:
    scenario = parse_scenario(SCENARIO)
    enc = BatchEncoder(scenario, TOPICS, np.array([0, 0, 1, 1]))
    batch = _batch(rows)
    idx = np.arange(len(rows))
    conn = batch.device.copy()
    acked = batch.qos > 0
    pids = np.arange(1, len(rows) + 1, dtype=np.int64)
    for sel, with_pids in ((idx[~acked], None), (idx[acked], pids[acked])):
        if not len(sel):
            continue
        packets, payload = enc.packets(
            batch, sel, conn[sel], enc.topics(conn[sel], np.zeros(len(sel), np.int64)), with_pids
        )
        for k, i in enumerate(sel.tolist()):
            d, seq, qos, body = rows[i]
            v5 = d < 2
            p = _decode(packets.item(k), c.V5 if v5 else c.V311)
            assert (p.topic, p.payload, p.qos, p.retain) == (f"t/{d}", body, qos, not v5)
            assert p.packet_id == (None if qos == 0 else int(pids[i]))
            assert payload.item(k) == body
            if v5:
                props = dict(p.properties)
                assert props["message_expiry_interval"] == 30
                users = [v for k2, v in p.properties if k2 == "user_property"]
                assert ("site", "a") in users
                assert ("simd-trace", f"{d} {seq} {i * 1000}") in users
            else:
                assert p.properties == ()
