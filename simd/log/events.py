"""What one row of the event log holds, and the column buffer a worker fills on the hot path.

Codes, not strings, are stored: `KINDS` and `STATUSES` map them to the names the `events` view
shows (analysis/schema.sql spells the same lists; tests/test_events.py checks they agree).
Times are virtual ns since t=0; `NULL_NS` marks "does not apply".
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

KINDS = ("publish", "connect", "disconnect", "receive", "error", "command", "reply")
STATUSES = ("acked", "sent", "timeout", "error", "dropped", "missed", "unsent", "ok")

PUBLISH, CONNECT, DISCONNECT, RECEIVE, ERROR, COMMAND, REPLY = range(len(KINDS))
COMMAND_MESSAGE = 254  # a listening device's receive row of a command (probes: their index)
ACKED, SENT, TIMEOUT, FAILED, DROPPED, MISSED, UNSENT, OK = range(len(STATUSES))

# publish statuses by outcome (analysis/views.sql spells the same sets as codes 0-1 and 2-6)
COMPLETED_STATUSES = (ACKED, SENT)
FAILED_STATUSES = (TIMEOUT, FAILED, DROPPED, MISSED, UNSENT)
NOT_SENT_STATUSES = (MISSED, UNSENT)

NULL_NS = np.iinfo(np.int64).min
NO_PHASE = 255

# (name, numpy dtype): the column list in every segment header, in frame order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("device", "<i4"),
    ("seq", "<i4"),
    ("kind", "u1"),
    ("status", "u1"),
    ("phase", "u1"),
    ("message", "u1"),
    ("t_intended", "<i8"),
    ("t_sent", "<i8"),
    ("t_done", "<i8"),
    ("bytes", "<u4"),
    ("qos", "u1"),
    ("error", "<u2"),
)
COLUMN_NAMES = tuple(c for c, _ in COLUMNS)
TIME_COLUMNS = ("t_intended", "t_sent", "t_done")  # ns since t=0, NULL_NS where absent


class ErrorTable:
    """Error texts <-> small codes (0 = no error), per worker. New texts ride in the next frame."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.pending: dict[int, str] = {}

    def code(self, text: str) -> int:
        c = self.codes.get(text)
        if c is None:
            c = len(self.codes) + 1
            if c > 0xFFFF:
                c = 0xFFFF  # past 65,534 distinct texts they share the last code
            else:
                self.codes[text] = c
                self.pending[c] = text
        return c

    def take_pending(self) -> dict[int, str]:
        out, self.pending = self.pending, {}
        return out

    def learn(self, known: dict[int, str]) -> None:
        """Adopt the texts a resumed log already holds, so codes stay stable."""
        for c, text in known.items():
            self.codes[text] = c


class EventBuffer:
    """Preallocated columns; `append_*` writes slices, `flush` hands a full batch to a sink.

    The sink receives (columns dict of views, row count, new error texts, resource samples) and
    must copy what it keeps before returning: the buffer is reused.
    """

    def __init__(
        self,
        sink: Callable[
            [dict[str, np.ndarray], int, dict[int, str], list[tuple[int, int, int, int]]], None
        ],
        capacity: int = 65536,
    ) -> None:
        self.capacity = capacity
        self.cols = {name: np.empty(capacity, dtype=dt) for name, dt in COLUMNS}
        self.n = 0
        self.sink = sink
        self.errors = ErrorTable()
        self.rows_written = 0
        self.samples: list[tuple[int, int, int, int]] = []

    def _room(self, k: int) -> int:
        if self.n + k > self.capacity:
            self.flush()
        return self.n

    def append(self, count: int, **values: np.ndarray | int) -> None:
        """Append `count` rows; each column is an array of `count` or a scalar for all of them."""
        start = 0
        while start < count:
            take = min(count - start, self.capacity)
            i = self._room(take)
            for name, arr in self.cols.items():
                v = values.get(name, _DEFAULTS[name])
                if isinstance(v, np.ndarray):
                    arr[i : i + take] = v[start : start + take]
                else:
                    arr[i : i + take] = v
            self.n += take
            start += take

    def add_sample(self, t_ns: int, rss_bytes: int, cpu_ns: int, open_fds: int) -> None:
        """Queue one resource sample of this process; it is written with the next frame."""
        self.samples.append((t_ns, rss_bytes, cpu_ns, open_fds))

    def flush(self) -> None:
        if self.n == 0 and not self.errors.pending and not self.samples:
            return
        n = self.n
        samples, self.samples = self.samples, []
        self.sink({k: v[:n] for k, v in self.cols.items()}, n, self.errors.take_pending(), samples)
        self.rows_written += n
        self.n = 0


_DEFAULTS: dict[str, int] = {
    "device": -1,
    "seq": -1,
    "kind": PUBLISH,
    "status": SENT,
    "phase": NO_PHASE,
    "message": 0,
    "t_intended": int(NULL_NS),
    "t_sent": int(NULL_NS),
    "t_done": int(NULL_NS),
    "bytes": 0,
    "qos": 0,
    "error": 0,
}
