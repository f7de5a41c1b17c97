"""A real HTTP/1.1 server for the HTTP transport's tests (the standard library's, threaded,
keep-alive): the REST plan of scenarios/rest.toml and a few endpoints that misbehave on purpose.

    GET  /v1/users            200 {"users": [...]}  (401 without `Authorization: Bearer TOKEN`)
    POST /v1/users            201 {"id": N}             (400 unless the body is JSON)
    GET  /v1/users/<id>       200 {"id": <id>} or 404
    GET  /slow?ms=N           200 after N ms
    GET  /status/<code>       that status
    GET  /chunked             200, chunked transfer coding
    GET  /close               200 with Connection: close
Run alone: `python tests/http_server.py PORT [TOKEN]`.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes
    token: str | None = None
    users: ClassVar[dict[int, dict]] = {}  # each HttpServer makes its own subclass
    lock = threading.Lock()
    counts: ClassVar[dict[str, int]] = {}
    authorizations: ClassVar[list[str | None]] = []  # each request's Authorization header
    delay_s: ClassVar[float] = 0.0  # every answer waits this long (tests: a stalled server)

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Transfer-Encoding" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _count(self) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        key = f"{self.command} {urlsplit(self.path).path}"
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            self.authorizations.append(self.headers.get("Authorization"))

    def _authorized(self) -> bool:
        return self.token is None or self.headers.get("Authorization") == f"Bearer {self.token}"

    def do_GET(self) -> None:
        self._count()
        url = urlsplit(self.path)
        if url.path == "/v1/users":
            if not self._authorized():
                self._send(401, b'{"error": "unauthorized"}')
                return
            with self.lock:
                ids = sorted(self.users)[:10]
            self._send(200, json.dumps({"users": ids}).encode())
        elif url.path.startswith("/v1/users/"):
            uid = url.path.rsplit("/", 1)[1]
            with self.lock:
                found = uid.isdigit() and int(uid) in self.users
            self._send(200 if found else 404, json.dumps({"id": uid}).encode())
        elif url.path == "/slow":
            time.sleep(int(parse_qs(url.query).get("ms", ["100"])[0]) / 1000)
            self._send(200, b"slow")
        elif url.path.startswith("/status/"):
            self._send(int(url.path.rsplit("/", 1)[1]), b"as asked")
        elif url.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif url.path == "/close":
            self.close_connection = True
            self._send(200, b"bye", {"Connection": "close"})
        else:
            self._send(404, b"no such path")

    def do_POST(self) -> None:
        self._count()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if urlsplit(self.path).path.startswith("/v1/users"):
            if not self._authorized():
                self._send(401, b'{"error": "unauthorized"}')
                return
            try:
                doc = json.loads(body)
            except ValueError:
                self._send(400, b'{"error": "not JSON"}')
                return
            with self.lock:
                uid = len(self.users) + 1
                self.users[uid] = doc
            self._send(201, json.dumps({"id": uid}).encode(), {"Content-Type": "application/json"})
        else:
            self._send(404, b"no such path")


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default, 5, drops the SYNs of a fleet connecting at once
    daemon_threads = True


class HttpServer:
    """`with HttpServer(token="t") as s:` serves on 127.0.0.1:s.port in a thread."""

    def __init__(
        self, token: str | None = None, port: int = 0, tls: tuple[str, str] | None = None
    ) -> None:
        handler = type(
            "Handler",
            (_Handler,),
            {"token": token, "users": {}, "counts": {}, "authorizations": []},
        )
        self.handler = handler
        self.server = _Server(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        if tls is not None:  # (certificate, key): https
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            plain_accept = self.server.get_request

            def accept() -> tuple[socket.socket, object]:
                # the handshake happens in the connection's own thread (on its first read),
                # not in the accept loop, where one stalled client would hold up the rest
                sock, addr = plain_accept()
                return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

            self.server.get_request = accept  # type: ignore[method-assign]
            self.url = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.handler.counts)

    def __enter__(self) -> HttpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    with HttpServer(sys.argv[2] if len(sys.argv) > 2 else None, int(sys.argv[1])) as s:
        print(s.url, flush=True)
        threading.Event().wait()
