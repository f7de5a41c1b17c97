"""Publishes awaiting their ack (qos 1/2), kept column-wise per batch.

A connection maps packet id -> key (batch id << 32 | row), one int per publish: registering a
batch is one `dict.update`, and acks, timeouts and losses are finished a vector at a time, so
the per-publish cost stays in C (docs/architecture.md; hot-path rules in docs/decisions).
"""

from __future__ import annotations

import numpy as np

from simd.log.events import ACKED, PUBLISH

_ROW = 0xFFFFFFFF


class InFlight:
    COLS = (
        "device",
        "seq",
        "t_intended",
        "t_sent",
        "phase",
        "message",
        "bytes",
        "qos",
        "conn",
        "pid",
    )

    def __init__(self) -> None:
        self.batches: dict[int, dict[str, np.ndarray]] = {}
        self.alive: dict[int, np.ndarray] = {}
        self.count = 0
        self._next = 0
        self._done_keys: list[int] = []
        self._done_t: list[int] = []

    def __len__(self) -> int:
        return self.count

    def add(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        """Register a batch (every column of COLS, same length); return each row's key."""
        bid = self._next
        self._next += 1
        n = len(cols["seq"])
        self.batches[bid] = cols
        self.alive[bid] = np.ones(n, dtype=bool)
        self.count += n
        return (bid << 32) + np.arange(n, dtype=np.int64)

    def acked(self, keys: list[int], t_done: int) -> None:
        """Remember acks (cheap); `flush` logs them."""
        self._done_keys += keys
        self._done_t += [t_done] * len(keys)

    def flush(self, log: object) -> None:
        if self._done_keys:
            keys, times = self._done_keys, self._done_t
            self._done_keys, self._done_t = [], []
            self.finish(keys, ACKED, np.array(times, dtype=np.int64), 0, log)

    def finish(
        self,
        keys: list[int] | np.ndarray,
        status: int,
        t_done: int | np.ndarray,
        error: int,
        log: object,
    ) -> None:
        """Log these rows with a final status and forget them."""
        k = np.asarray(keys, dtype=np.int64)
        if not len(k):
            return
        t = np.broadcast_to(np.asarray(t_done, dtype=np.int64), k.shape)
        bids = k >> 32
        for bid in np.unique(bids).tolist():
            sel = bids == bid
            rows, at = np.unique((k[sel] & _ROW).astype(np.int64), return_index=True)
            cols = self.batches[bid]
            alive = self.alive[bid]
            first = alive[rows]  # a row finishes once (a late or repeated ack is ignored)
            rows, at = rows[first], at[first]
            if not len(rows):
                continue
            alive[rows] = False
            self.count -= len(rows)
            log.append(  # type: ignore[attr-defined]
                len(rows),
                device=cols["device"][rows],
                seq=cols["seq"][rows],
                kind=PUBLISH,
                status=status,
                phase=cols["phase"][rows],
                message=cols["message"][rows],
                t_intended=cols["t_intended"][rows],
                t_sent=cols["t_sent"][rows],
                t_done=t[sel][at] if np.ndim(t_done) else int(t_done),
                bytes=cols["bytes"][rows],
                qos=cols["qos"][rows],
                error=error,
            )
            if not alive.any():
                del self.batches[bid], self.alive[bid]

    def oldest_intended(self) -> int | None:
        """The intended time of the oldest publish still waiting (None: none is)."""
        return min(
            (int(cols["t_intended"][self.alive[bid]].min()) for bid, cols in self.batches.items()
             if self.alive[bid].any()),
            default=None,
        )  # fmt: skip

    def older_than(self, t_sent_limit: int) -> tuple[np.ndarray, ...]:
        """(keys, conn, pid, t_sent) of rows still waiting that were sent before the limit."""
        keys, conns, pids, sent = [], [], [], []
        for bid, cols in self.batches.items():
            alive = self.alive[bid]
            late = alive & (cols["t_sent"] < t_sent_limit)
            if late.any():
                rows = np.nonzero(late)[0]
                keys.append((bid << 32) + rows)
                conns.append(cols["conn"][rows])
                pids.append(cols["pid"][rows])
                sent.append(cols["t_sent"][rows])
        if not keys:
            z = np.zeros(0, dtype=np.int64)
            return z, z, z, z
        return tuple(np.concatenate(x) for x in (keys, conns, pids, sent))
