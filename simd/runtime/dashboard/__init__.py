"""The live dashboard page: static files served by every run's status server (GET /) and by
`simd serve`, fed by GET api/dashboard. uPlot 1.6.32 (MIT, vendor/uPlot.LICENSE) draws the
charts; nothing is fetched from elsewhere (docs/decisions/0015-live-dashboard.md)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}  # fmt: skip
_FILES = ("index.html", "dashboard.js", "dashboard.css", "vendor/uPlot.iife.min.js",
          "vendor/uPlot.min.css")  # fmt: skip
# what the page may load: its own files and its own API, nothing inline, nothing elsewhere
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@cache
def assets() -> dict[str, tuple[str, bytes]]:
    """URL path -> (content type, body): the page at / and its files under /dashboard/."""
    root = files(__package__)
    out = {}
    for name in _FILES:
        body = root.joinpath(name).read_bytes()
        ctype = TYPES["." + name.rsplit(".", 1)[1]]
        out["/" if name == "index.html" else f"/dashboard/{name}"] = (ctype, body)
    return out
