"""The defence of simd's own HTTP servers (a run's /status and /metrics, the daemon's API)
against DNS rebinding and cross-site requests, as Jupyter's and k6's REST APIs do it.

A page on another site can make a browser send requests to 127.0.0.1, and after a DNS rebinding
its own host name resolves there too. Two checks stop both:

- the Host header must name the server by an IP address (a rebinding always uses a name),
  `localhost`, or a name given in SIMD_ALLOW_HOSTS (comma-separated);
- an Origin header, when present (browsers send it on cross-origin and on POST requests), must be
  this server's own origin: same host and port.

Tools (curl, Prometheus, `simd status`) send a Host of the address they were given and no
Origin, so they pass.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

ALLOW_HOSTS_ENV = "SIMD_ALLOW_HOSTS"


def _split_host(value: str) -> tuple[str, str]:
    """(host, port) of a Host header value (`[::1]:80` -> ('::1', '80'))."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    return host, port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def allowed_names() -> set[str]:
    """Host names (besides IP addresses and localhost) this machine's user allows."""
    raw = os.environ.get(ALLOW_HOSTS_ENV, "")
    return {n.strip().lower() for n in raw.split(",") if n.strip()} | {"localhost"}


def refusal(headers: Message) -> str | None:
    """Why a request with these headers is refused (403), or None when it may be answered."""
    host_value = headers.get("Host")
    if not host_value:
        return "no Host header"
    host, port = _split_host(host_value)
    if not (_is_ip(host) or host in allowed_names()):
        return (
            f"Host {host_value!r} is not this server's address (DNS rebinding?); "
            f"allow a name with {ALLOW_HOSTS_ENV}"
        )
    origin = headers.get("Origin")
    if origin is not None:
        parts = urlsplit(origin.strip().lower())
        same = parts.hostname == host and str(parts.port or _default_port(parts.scheme)) == (
            port or _default_port(parts.scheme)
        )
        if not same:
            return f"cross-origin request from {origin!r} refused"
    return None


def _default_port(scheme: str) -> str:
    return "443" if scheme == "https" else "80"


class LocalHandler(BaseHTTPRequestHandler):
    """A request handler of simd's own pages and APIs: `refused()` answers 403 what `refusal`
    refuses; `reply` sends a body with the headers every answer carries (`csp`, no sniffing,
    no referrer to other sites, no caching). Quiet: a run's stderr is for people."""

    csp = "default-src 'none'; frame-ancestors 'none'"

    def reply(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", self.csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        # same-origin, not no-referrer: under no-referrer a browser's form POST says
        # `Origin: null`, which `refusal` cannot tell from a foreign page
        self.send_header("Referrer-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def refused(self) -> bool:
        why = refusal(self.headers)
        if why is not None:
            self.reply(403, "application/json", json.dumps({"error": why}).encode())
        return why is not None

    def log_message(self, *args: Any) -> None:
        return


class LocalServer:
    """A ThreadingHTTPServer for `handler` on host:port (port 0: a free one) in a daemon
    thread, until closed."""

    def __init__(self, handler: type[LocalHandler], port: int, host: str) -> None:
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
