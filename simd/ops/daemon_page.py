"""The daemon's web page: its runs (state, progress, SLOs), a form to start one (a scenario
file, or the fields of `simd pub`), stop buttons, and each run's live dashboard.

Access as Jupyter does it: the daemon prints a login URL holding a one-time token; opening it
sets an HttpOnly, SameSite=Strict session cookie and forgets the token (`simd login` asks the
daemon for a new URL). Every form carries the session's CSRF token, checked on each POST;
Host and Origin are checked as for every simd server (simd.runtime.local_http). The pages have
no script of their own (the run list refreshes itself); a run's dashboard is the page every run
serves, its feed read from the run's own status server through the daemon.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

COOKIE = "simd_session"
SESSION_S = 12 * 3600  # a session cookie's life
LOGIN_S = 3600  # a login URL's life, if it is not used before
MAX_FORM = 65536  # bytes of a form body

HTML = "text/html; charset=utf-8"


@dataclass
class Sessions:
    """One-time login tokens and the sessions they opened (session id -> CSRF token, expiry)."""

    logins: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    sessions: dict[str, tuple[str, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_login(self) -> str:
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.logins[token] = time.monotonic() + LOGIN_S
        return token

    def log_in(self, token: str) -> str | None:
        """A new session id for a login token not used before (it is used up), else None."""
        now = time.monotonic()
        with self.lock:
            match = next((t for t in self.logins if hmac.compare_digest(t, token)), None)
            if match is None or self.logins.pop(match) < now:
                return None
            sid = secrets.token_urlsafe(32)
            self.sessions[sid] = (secrets.token_urlsafe(24), now + SESSION_S)
            return sid

    def csrf_of(self, cookie_header: str | None) -> str | None:
        """The CSRF token of the session the request's cookie names (None: not logged in)."""
        sid = _cookie(cookie_header, COOKIE)
        if sid is None:
            return None
        now = time.monotonic()
        with self.lock:
            for known, (csrf, expiry) in list(self.sessions.items()):
                if expiry < now:
                    del self.sessions[known]
                elif hmac.compare_digest(known, sid):
                    return csrf
        return None


def _cookie(header: str | None, name: str) -> str | None:
    for part in (header or "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name and v:
            return v
    return None


def session_cookie(sid: str, secure: bool) -> str:
    return f"{COOKIE}={sid}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_S}" + (
        "; Secure" if secure else ""
    )


def read_form(rfile: Any, length: str | None) -> dict[str, str] | None:
    """A urlencoded form body (first value of each field), or None when too big or unreadable."""
    try:
        n = int(length or 0)
    except ValueError:
        return None
    if n < 0 or n > MAX_FORM:
        return None
    try:
        raw = rfile.read(n).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def start_body(form: dict[str, str]) -> dict[str, Any]:
    """The daemon's POST /runs body for the start form: a scenario path, or `simd pub`'s
    fields turned into a scenario (simd.model.oneliners)."""
    from simd.errors import UserError
    from simd.model.oneliners import Pub, pub_scenario
    from simd.model.toml_text import dumps

    body: dict[str, Any] = {}
    if form.get("run_id"):
        body["run_id"] = form["run_id"]
    if form.get("scenario"):
        body["scenario"] = str(Path(form["scenario"]).expanduser())
        return body
    target = form.get("target", "").strip()
    if not target:
        raise UserError("give a scenario file, or a target URL for a `simd pub` run")
    pub = Pub(
        url=target,
        count=int(_number(form, "count", "-c") or 10),
        interval_ms=_number(form, "interval", "-I"),
        rate=_number(form, "rate", "-r"),
        topic=form.get("topic") or "devices/%i/telemetry",
        qos=int(_number(form, "qos", "-q") or 0),
        duration=form.get("duration") or "30s",
    )
    body["toml"] = dumps(pub_scenario(pub))
    return body


def _number(form: dict[str, str], key: str, flag: str) -> float | None:
    """A number field of the start form (None when empty), or a one-line error naming it."""
    from simd.errors import UserError

    text = form.get(key, "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise UserError(f"the start form: {flag} {text!r} is not a number") from None


# ---------------------------------------------------------------- pages

_HEAD = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
    '<link rel="icon" href="data:,"><link rel="stylesheet" href="/ui/dashboard/dashboard.css">'
    "{extra}</head><body>"
)


def login_page(message: str) -> bytes:
    return (
        _HEAD.format(title="simd daemon: log in", extra="")
        + f"<h1>simd daemon</h1><p class='banner'>{escape(message)}</p></body></html>"
    ).encode()


def runs_page(runs: list[dict[str, Any]], csrf: str, error: str | None = None) -> bytes:
    """Every run with its state and numbers, a stop button for those running, the start form."""
    rows = []
    for r in runs:
        st = r.get("status") or {}
        planned = st.get("planned_total")
        sent = st.get("sent")
        progress = (
            f"{sent:,} of {planned:,}" if isinstance(sent, int) and isinstance(planned, int)
            else (f"{sent:,} sent" if isinstance(sent, int) else "-")
        )  # fmt: skip
        alerts = [a["slo"] for a in st.get("alerts", []) if a.get("active")]
        rid = escape(r["run_id"])
        stop = (
            f'<form method="post" action="/ui/runs/{rid}/stop" class="inline">'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            f'<button type="submit" id="stop-{rid}">stop</button></form>'
            if r.get("pid") else ""
        )  # fmt: skip
        rows.append(
            f'<tr id="run-{rid}"><td class="l"><a href="/ui/runs/{rid}/">{rid}</a></td>'
            f'<td class="l">{escape(str(r.get("scenario") or "-"))}</td>'
            f'<td class="l state-cell">{escape(str(r.get("state")))}</td><td>{progress}</td>'
            f"<td>{_count(st.get('completed'))}</td><td>{_count(st.get('errors'))}</td>"
            f'<td class="l">{escape(", ".join(alerts) or ("-" if not st else "holding"))}</td>'
            f"<td>{stop}</td></tr>"
        )
    table = (
        "<table id='runs'><thead><tr><th class='l'>run</th><th class='l'>scenario</th>"
        "<th class='l'>state</th><th>sent</th><th>completed</th><th>errors</th>"
        "<th class='l'>SLOs breached</th><th></th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        if rows
        else "<p class='empty'>no runs yet</p>"
    )
    err = f"<p class='banner' id='error'>{escape(error)}</p>" if error else ""
    c = escape(csrf)
    form = (
        '<form method="post" action="/ui/runs" id="start"><h2>Start a run</h2>'
        f'<input type="hidden" name="csrf" value="{c}">'
        '<p><label>scenario file <input name="scenario" id="scenario" size="50" '
        'placeholder="/path/to/scenario.toml"></label></p>'
        "<p>or as <code>simd pub</code>: "
        '<label>target <input name="target" id="target" size="28" '
        'placeholder="mqtt://127.0.0.1:1883"></label> '
        '<label>-c <input name="count" size="5" value="10"></label> '
        '<label>-I ms <input name="interval" size="5"></label> '
        '<label>-r /s <input name="rate" size="5" placeholder="1"></label> '
        '<label>-t <input name="topic" size="22" value="devices/%i/telemetry"></label> '
        '<label>-q <input name="qos" size="2" value="0"></label> '
        '<label>-d <input name="duration" size="5" value="30s"></label></p>'
        '<p><label>run id <input name="run_id" id="run_id" size="24"></label> '
        '<button type="submit" id="start-button">start</button></p></form>'
    )
    return (
        _HEAD.format(title="simd daemon", extra='<meta http-equiv="refresh" content="2">')
        + "<h1>simd daemon: runs</h1>"
        + err
        + table
        + form
        + "</body></html>"
    ).encode()


def _count(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else "-"


def run_feed(run_dir: Path, status_url: str | None) -> bytes | None:
    """A run's dashboard feed: its live /api/dashboard while it runs, else its results."""
    if status_url:
        try:
            with urllib.request.urlopen(status_url + "/api/dashboard", timeout=3) as resp:
                return bytes(resp.read())
        except OSError:
            pass  # it just ended: its results, below, once ingested
    if (run_dir / "results.duckdb").is_file():
        from simd.ops.dashboard_feed import finished_dashboard

        try:
            return json.dumps(finished_dashboard(run_dir)).encode()
        except Exception:
            return None
    return None
