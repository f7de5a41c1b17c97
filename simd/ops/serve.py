"""`simd serve RUN...`: the dashboard of finished runs, read from their results.duckdb, on
loopback. `/` lists the runs, `/runs/N/` is run N's page (the live page, fed from the log by
simd.ops.dashboard_feed), `/compare?a=N&b=M` two of them side by side."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from simd.ops.dashboard_feed import finished_dashboard
from simd.runtime.dashboard import CSP, assets
from simd.runtime.local_http import LocalHandler, LocalServer

# the compare page frames two run pages of this same server
FRAMED_CSP = CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'") + "; frame-src 'self'"


class DashboardServer(LocalServer):
    """Serves the pages of `runs` (run folders, ingested) on host:port until closed."""

    def __init__(self, runs: list[Path], port: int = 0, host: str = "127.0.0.1") -> None:
        feeds = [finished_dashboard(r) for r in runs]  # read once: a finished run does not move
        pages = assets()
        index = _index(feeds).encode()
        html = "text/html; charset=utf-8"

        class Handler(LocalHandler):
            csp = FRAMED_CSP

            def do_GET(self) -> None:
                if self.refused():
                    return
                path, _, query = self.path.partition("?")
                parts = path.split("/", 3)  # "", "runs", N, rest
                n = _index_of(parts[2], len(feeds)) if len(parts) == 4 else None
                pair = _pair(query, len(feeds)) if path == "/compare" else None
                if path == "/":
                    self.reply(200, html, index)
                elif pair is not None:
                    self.reply(200, html, _compare(feeds, *pair).encode())
                elif n is None or parts[1] != "runs":
                    self.send_error(404)
                elif parts[3] == "api/dashboard":
                    self.reply(200, "application/json", json.dumps(feeds[n]).encode())
                elif "/" + parts[3] in pages:
                    self.reply(200, *pages["/" + parts[3]])
                else:
                    self.send_error(404)

        super().__init__(Handler, port, host)


def _index_of(text: str, n: int) -> int | None:
    """A run's number in a URL (ASCII digits below n), else None."""
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or int(text) >= n:
        return None
    return int(text)


def _pair(query: str, n: int) -> tuple[int, int] | None:
    q = parse_qs(query)
    a, b = (_index_of(q.get(k, [""])[0], n) for k in ("a", "b"))
    return (a, b) if a is not None and b is not None else None


_HEAD = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
    '<link rel="icon" href="data:,"><link rel="stylesheet" href="/runs/0/dashboard/'
    'dashboard.css"></head><body>'
)


def _index(feeds: list[dict[str, Any]]) -> str:
    """The runs served, each with its numbers, and a form to put two side by side."""
    rows = []
    for i, f in enumerate(feeds):
        s = f["status"]
        rows.append(
            f'<tr><td class="l"><a href="/runs/{i}/">{escape(s["run_id"])}</a></td>'
            f'<td class="l">{escape(s["scenario"])}</td><td class="l">{escape(s["state"])}</td>'
            f"<td>{s['planned_total']:,}</td><td>{s['sent']:,}</td><td>{s['completed']:,}</td>"
            f"<td>{s['errors']:,}</td></tr>"
        )
    options = "".join(
        f'<option value="{i}">{escape(f["status"]["run_id"])}</option>' for i, f in enumerate(feeds)
    )
    compare = (
        '<form action="/compare" method="get"><h2>Side by side</h2>'
        f'<select name="a">{options}</select> <select name="b">{options}</select> '
        '<button type="submit">compare</button></form>'
        if len(feeds) > 1
        else ""
    )
    return (
        _HEAD.format(title="simd: finished runs")
        + "<h1>Finished runs</h1><table id='runs'><thead><tr><th class='l'>run</th>"
        "<th class='l'>scenario</th><th class='l'>state</th><th>planned</th><th>sent</th>"
        "<th>completed</th><th>failed</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + compare
        + "</body></html>"
    )


def _compare(feeds: list[dict[str, Any]], a: int, b: int) -> str:
    names = [escape(feeds[i]["status"]["run_id"]) for i in (a, b)]
    frames = "".join(
        f'<iframe class="side" src="/runs/{i}/" title="{n}"></iframe>'
        for i, n in zip((a, b), names, strict=True)
    )
    return (
        _HEAD.format(title=f"simd: {names[0]} vs {names[1]}")
        + f'<p><a href="/">all runs</a> · {names[0]} (left) vs {names[1]} (right)</p>'
        + f'<div class="sides">{frames}</div></body></html>'
    )
