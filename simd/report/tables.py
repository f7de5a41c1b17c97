"""The report's tables, declared once: the query, its columns, how each cell reads.

The terminal report (report/terminal.py) and the page (report/html.py) render these same specs;
a new table is a `TableSpec` here (and its place in `TERMINAL` / the page). Every number is
formatted by the one set of formatters below (durations in ms, counts, shares, seconds).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

Format = Callable[[Any], str]


def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return not math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def ms(ns: Any) -> str:
    """A duration held in ns, in ms with three decimals ("-" when absent)."""
    return "-" if _missing(ns) else f"{float(ns) / 1e6:,.3f}"


def ms_unit(ns: Any) -> str:
    """Like `ms`, with its unit ("1.234 ms")."""
    return "-" if _missing(ns) else f"{ms(ns)} ms"


def count(v: Any) -> str:
    return "-" if _missing(v) else f"{int(v):,}"


def text(v: Any) -> str:
    return "-" if v is None else str(v)


def seconds(ns: Any) -> str:
    """A run time held in ns, in seconds with one decimal."""
    return "-" if _missing(ns) else f"{float(ns) / 1e9:.1f}"


def change(v: Any) -> str:
    """A signed share (+1.23 %)."""
    return "-" if _missing(v) else f"{100 * float(v):+.2f} %"


def share(v: Any) -> str:
    """An unsigned share (1.234 %)."""
    return "-" if _missing(v) else f"{float(v):.3%}"


def fixed(digits: int) -> Format:
    return lambda v: "-" if _missing(v) else f"{float(v):,.{digits}f}"


def general(v: Any) -> str:
    return "-" if _missing(v) else f"{float(v):g}"


def mib(v: Any) -> str:
    return "-" if _missing(v) else f"{float(v) / 2**20:,.1f}"


@dataclass(frozen=True)
class Col:
    """One column: its header, the query column it shows, its format; `left` for text; `http`
    its header in an HTTP run's report when that differs ("" leaves the column out)."""

    header: str
    key: str
    fmt: Format = text
    left: bool = False
    http: str | None = None


def label(header: str, key: str) -> Col:
    """A left-aligned text column (names, kinds, error texts)."""
    return Col(header, key, text, left=True)


def rows(con: Any, sql: str) -> list[dict[str, Any]]:
    """A query's rows as dicts by column name."""
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def publishes_word(con: Any) -> str:
    """What the run's publishes are called: requests for an HTTP target (views.sql)."""
    return str(con.execute("SELECT publishes_word()").fetchone()[0] or "publishes")


@dataclass(frozen=True)
class TableSpec:
    """A table: `id` (the page's table id), `title` (the terminal's), `sql` (its rows, whose
    columns the `cols` name), and when it shows: `when` (a query counting what it needs, e.g.
    replay groups), `empty` (a line instead of a table without rows) and `always` (a table
    even without rows; otherwise none)."""

    id: str
    title: str
    sql: str
    cols: tuple[Col, ...]
    when: str | None = None
    empty: str | None = None
    always: bool = False
    note: str = ""  # the page's line under it
    http_title: str | None = None  # an HTTP run's title, when it differs
    http_note: str | None = None

    def worded(self, http: bool) -> TableSpec:
        """The table as a run of its kind reads it: an HTTP run's headers and title."""
        if not http:
            return self
        cols = tuple(
            c if c.http is None else replace(c, header=c.http) for c in self.cols if c.http != ""
        )
        return replace(
            self,
            cols=cols,
            title=self.http_title or self.title,
            note=self.note if self.http_note is None else self.http_note,
        )

    def for_run(self, con: Any) -> TableSpec:
        """`worded` for the run `con` holds."""
        return self.worded(publishes_word(con) == "requests")

    def title_for(self, con: Any) -> str:
        """Its title, with `{publishes}` as the run calls them (an HTTP run: requests)."""
        return self.title.replace("{publishes}", publishes_word(con))

    def fetch(self, con: Any) -> list[dict[str, Any]] | None:
        """Its rows as dicts, or None when it does not apply to this run."""
        if self.when is not None and not con.execute(self.when).fetchone()[0]:
            return None
        return rows(con, self.sql)

    def cells(self, row: dict[str, Any]) -> list[tuple[Any, str, bool]]:
        """Each cell of a row: (raw value, text, left-aligned)."""
        return [(row[c.key], c.fmt(row[c.key]), c.left) for c in self.cols]


GROUP_PHASE = (label("group", "group_name"), label("phase", "phase"))
STATUSES = ("planned", "logged", "acked", "sent", "timeout", "error", "dropped", "missed")
STATUSES += ("unsent",)

STATUS_COUNTS = TableSpec(
    "status_counts",
    "{publishes} by group and phase",
    "SELECT * FROM status_counts",
    (*GROUP_PHASE, *(Col(s, s, count) for s in STATUSES)),
    always=True,
)
LATENCY = TableSpec(
    "latency_percentiles",
    "latency (ms) from intended send time | from actual send time",
    "SELECT * FROM latency_percentiles",
    (
        *GROUP_PHASE,
        Col("completed", "completed", count),
        *(
            Col(h, f"{k}_intended_ns", ms)
            for h, k in (
                ("p50", "p50"),
                ("p90", "p90"),
                ("p99", "p99"),
                ("p99.9", "p999"),
                ("max", "max"),
            )
        ),
        *(Col(f"{k} sent", f"{k}_sent_ns", ms) for k in ("p50", "p99", "max")),
    ),
    always=True,
    note="latency in ms; p-values from ingest-time histograms (within 0.05 %)",
)
SCHEDULE_LAG = TableSpec(
    "schedule_lag",
    "schedule lag (ms): actual minus intended send time",
    "SELECT * FROM schedule_lag",
    (
        *GROUP_PHASE,
        Col("sent", "sent", count),
        *(Col(k, f"lag_{k}_ns", ms) for k in ("p50", "p99", "max")),
    ),
    always=True,
)
TOPICS = TableSpec(
    "topic_stats",
    "by topic: latency (ms) from the intended send time",
    "SELECT * FROM topic_stats",
    (
        label("group", "group_name"),
        Col("message", "message", text, left=True, http="request"),
        Col("topic", "topic", text, left=True, http="path"),
        Col("qos", "qos", http=""),
        Col("publishes", "publishes", count, http="requests"),
        *(Col(k, k, count) for k in ("completed", "failed", "bytes")),
        *(Col(k, f"{k}_ns", ms) for k in ("p50", "p99", "max")),
    ),
    always=True,
    note="per-topic p50/p99 from 1.6 %-wide buckets (within 0.8 %); max is exact",
    http_title="by request: latency (ms) from the intended send time",
    http_note="per-request p50/p99 from 1.6 %-wide buckets (within 0.8 %); max is exact",
)
# an HTTP run's terminal report has the per-request table (an MQTT run's topics are on its page)
REQUESTS = replace(
    TOPICS.worded(http=True), when="SELECT publishes_word() = 'requests'", always=False
)
END_TO_END = TableSpec(
    "end_to_end",
    "end to end (probes): intended send time -> received by a probe, ms",
    "SELECT * FROM end_to_end",
    (label("group", "group_name"), Col("received", "received", count),
     Col("traced", "traced", count), *(Col(k, f"{k}_ns", ms) for k in ("p50", "p99", "max"))),
    when="SELECT count(*) FROM status_totals WHERE kind = kind_code('receive')",
)  # fmt: skip
DELIVERY = TableSpec(
    "delivery",
    "delivery (probes): traced publishes that should have reached each probe",
    "SELECT * FROM delivery_summary",
    (
        label("probe", "probe"),
        label("group", "group_name"),
        *(Col(k, k, count) for k in ("expected", "delivered", "lost")),
        Col("loss", "loss_rate", share),
        *(Col(k, k, count) for k in ("duplicated", "reordered", "unexpected")),
        Col("worst device p99 ms", "worst_device_p99_ns", ms),
    ),
    when="SELECT count(*) FROM probes",
)
COMMANDS = TableSpec(
    "commands",
    "commands: round trip from the intended send time to the reply, ms",
    "SELECT * FROM command_stats",
    (label("group", "group_name"),
     *(Col(k.replace("_", " "), k, count)
       for k in ("commands", "delivered", "answered", "timed_out")),
     *(Col(k, f"rtt_{k}_ns", ms) for k in ("p50", "p99", "max"))),
    when="SELECT count(*) FROM status_totals WHERE kind = kind_code('command')",
)  # fmt: skip
REPLAY = TableSpec(
    "replay_fidelity",
    "replay fidelity: send offset (ms) from the recorded time scaled; correlation of "
    "per-second counts",
    "SELECT *, passes || ' x ' || fanout AS passes_fanout FROM replay_fidelity",
    (
        label("group", "group_name"),
        Col("recorded", "recorded_messages", count),
        Col("passes x fanout", "passes_fanout"),
        Col("speed", "speed", general),
        *(Col(k, k, count) for k in ("planned", "sent", "completed")),
        *(Col(f"offset {k}", f"send_offset_{k}_ms", fixed(3)) for k in ("p50", "p99", "max")),
        Col("corr (sent)", "correlation_sent", fixed(4)),
        Col("size diffs", "size_mismatches", count),
    ),
    when="SELECT count(*) FROM replay_groups",
    note="send offset: actual send time minus the recorded time scaled by speed (ms); "
    "correlation of messages per second of recording time, recorded (x fanout) vs replayed",
)
JOURNEYS = TableSpec(
    "journey_stats",
    "journeys: latency (ms) per step from its send, and of the whole journey",
    "SELECT * FROM journey_stats",
    (
        label("group", "group_name"),
        Col("step", "step"),
        label("request", "request"),
        Col("requests", "requests", count),
        Col("passed", "passed", count),
        *(Col(k, f"{k}_ns", ms) for k in ("p50", "p99", "max")),
    ),
    when="SELECT count(*) FROM groups WHERE steps > 1",
    note="latency per step from its send; a whole journey from its intended start to its last "
    "response (ms)",
)
ERRORS = TableSpec(
    "errors_by_kind",
    "errors by kind",
    "SELECT * FROM errors_by_kind LIMIT 20",
    (
        label("status", "status"),
        label("kind", "kind"),
        label("error", "error"),
        Col("count", "count", count),
        Col("first (s)", "first_ns", seconds),
        Col("last (s)", "last_ns", seconds),
    ),
    empty="errors: none",
)
BURSTS = TableSpec(
    "error_bursts",
    "error bursts",
    "SELECT * FROM error_bursts",
    (
        label("burst", "burst"),
        Col("from (s)", "start_ns", seconds),
        Col("to (s)", "end_ns", seconds),
        Col("failed", "failed", count),
        Col("scheduled", "scheduled", count),
        Col("error rate", "error_rate", change),
        Col("peak", "peak_error_rate", change),
    ),
)
RESOURCES = TableSpec(
    "resource_growth",
    "generator resources per worker",
    "SELECT * FROM resource_growth",
    (
        label("worker", "worker"),
        Col("samples", "samples", count),
        Col("RSS mean (MiB)", "rss_mean_bytes", mib),
        Col("RSS max (MiB)", "rss_max_bytes", mib),
        Col("RSS growth / h", "rss_growth_per_h", change),
        Col("± 95 %", "rss_growth_ci95_per_h", change),
        Col("CPU mean (cores)", "cpu_mean", fixed(2)),
        Col("fds max", "fds_max", count),
    ),
)
DISTRIBUTION = TableSpec(
    "distribution",
    "latency by percentile, whole run (ms)",
    "SELECT * FROM latency_distribution",
    (Col("percentile", "quantile", lambda q: f"{100 * float(q):g} %", left=True),
     Col("from intended (ms)", "intended_ns", ms), Col("from sent (ms)", "sent_ns", ms)),
    always=True,
)  # fmt: skip

# the terminal report's tables after its summary lines, in order (the page adds charts,
# topics, the distribution, bursts and resources)
TERMINAL = (STATUS_COUNTS, LATENCY, SCHEDULE_LAG, REQUESTS, END_TO_END, DELIVERY, COMMANDS)
TERMINAL += (REPLAY,)
TERMINAL += (JOURNEYS, ERRORS)
