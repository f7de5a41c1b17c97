"""Sans-IO HTTP/1.1 client codec: request heads out as bytes, responses in from bytes.

No socket, no clock: the trio shell (simd.transports.http.transport) moves the bytes. Requests
are built from a head fixed per (device, request) plus the per-row path and body; responses are
read incrementally: status line, headers, then a body framed by Content-Length, chunked
transfer coding, or the connection's end (RFC 9112 section 6.3). A response to HEAD, a 1xx,
204 or 304 has no body. Anything else is a RemoteProtocolError: the connection is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEAD = 64 * 1024  # a response head longer than this is not one we accept


class RemoteProtocolError(Exception):
    """The server sent something that is not HTTP/1.1 (or that we do not accept)."""


@dataclass
class Response:
    status: int
    body: bytes  # kept only when asked (a body check); else b""
    length: int  # body bytes received
    keep_alive: bool


def request_head(method: str, path: str, host: str, headers: dict[str, str]) -> bytes:
    """`METHOD path HTTP/1.1` and its headers, up to (not including) Content-Length."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    skip = ("host", "content-length")
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in skip]
    for text in lines:
        if "\r" in text or "\n" in text:
            raise ValueError(f"a header or path holds a line break: {text!r}")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def encode_request(head: bytes, body: bytes) -> bytes:
    """A whole request: its head, Content-Length, and the body."""
    return b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)


class ResponseReader:
    """Feed bytes in; take whole responses out, in order. One per connection."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.expect_head: list[bool] = []  # per request written: was it HEAD?
        # the current response's status, keep-alive, Content-Length, chunked
        self._head: tuple[int, bool, int | None, bool] | None = None
        self._keep_body = False
        self._chunks = bytearray()
        self._got = 0
        self.eof = False

    def sent(self, is_head: bool, keep_body: bool) -> None:
        """A request was written (responses come back in request order)."""
        self.expect_head.append(is_head)
        self._keep_body = keep_body

    def feed(self, data: bytes) -> list[Response]:
        if not self.buf and self._head is None and data:
            one = self._whole(data)
            if one is not None:
                return [one]
        if not data:
            self.eof = True
        self.buf += data
        out = []
        while True:
            r = self._next()
            if r is None:
                return out
            out.append(r)

    def _whole(self, data: bytes) -> Response | None:
        """The common case, without copying: `data` is exactly one response framed by
        Content-Length (None: take the general path)."""
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return None
        status, keep, length, chunked = self._parse_head(data[:end])
        if chunked or length is None or status < 200 or status in (204, 304):
            return None
        if (self.expect_head and self.expect_head[0]) or len(data) != end + 4 + length:
            return None
        if self.expect_head:
            self.expect_head.pop(0)
        body = data[end + 4 :] if self._keep_body else b""
        return Response(status, body, length, keep)

    def _next(self) -> Response | None:
        if self._head is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    raise RemoteProtocolError(f"response head over {MAX_HEAD} bytes")
                if self.eof and self.buf:
                    raise RemoteProtocolError("connection closed inside a response head")
                return None
            self._head = self._parse_head(bytes(self.buf[:end]))
            del self.buf[: end + 4]
            self._chunks.clear()
            self._got = 0
            status, keep, length, chunked = self._head
            no_body = (self.expect_head[0] if self.expect_head else False) or status in (204, 304)
            if 100 <= status < 200:  # an interim response: the final one follows
                self._head = None
                return self._next()
            if no_body:
                self._head = (status, keep, 0, False)
        status, keep, length, chunked = self._head
        if chunked:
            body = self._dechunk()
            if body is None:
                return None
        elif length is not None:
            if len(self.buf) < length:
                return None
            body = bytes(self.buf[:length])
            del self.buf[:length]
        else:  # until the connection closes
            if not self.eof:
                return None
            body = bytes(self.buf)
            self.buf.clear()
            keep = False
        self._head = None
        if self.expect_head:
            self.expect_head.pop(0)
        return Response(status, body if self._keep_body else b"", len(body), keep)

    def _dechunk(self) -> bytes | None:
        while True:
            end = self.buf.find(b"\r\n")
            if end < 0:
                return None
            size_text = bytes(self.buf[:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise RemoteProtocolError(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                trailer_end = self.buf.find(b"\r\n\r\n", end)
                if trailer_end < 0:  # "0\r\n", trailers, then an empty line
                    return None
                del self.buf[: trailer_end + 4]
                return bytes(self._chunks)
            if len(self.buf) < end + 2 + size + 2:
                return None
            self._chunks += self.buf[end + 2 : end + 2 + size]
            del self.buf[: end + 2 + size + 2]

    @staticmethod
    def _parse_head(head: bytes) -> tuple[int, bool, int | None, bool]:
        eol = head.find(b"\r\n")
        first = head if eol < 0 else head[:eol]
        if not first.startswith(b"HTTP/1.") or len(first) < 12 or first[8:9] != b" ":
            raise RemoteProtocolError(f"not an HTTP/1.x status line: {first[:40]!r}")
        try:
            status = int(first[9:12])
        except ValueError:
            raise RemoteProtocolError(f"bad status code {first[9:12]!r}") from None
        keep = first.startswith(b"HTTP/1.1")
        length: int | None = None
        chunked = False
        # the three headers that frame a response, found without splitting every line
        for m in _FRAMING.finditer(head):
            name, value = m.group(1).lower(), m.group(2).strip()
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise RemoteProtocolError(f"bad Content-Length {value[:20]!r}") from None
            elif name == b"transfer-encoding":
                chunked = value.lower().endswith(b"chunked")
            else:
                v = value.lower()
                if b"close" in v:
                    keep = False
                elif b"keep-alive" in v:
                    keep = True
        return status, keep, length, chunked


_FRAMING = re.compile(
    rb"\r\n(content-length|transfer-encoding|connection)[ \t]*:([^\r\n]*)", re.IGNORECASE
)
