"""Network pieces every transport (and the recorder) shares: where a target is, opening a byte
stream to it (TCP, TLS, WebSocket), the TLS context, the errors that mean "the network said
no", and one line saying why."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import socket
import ssl
from dataclasses import dataclass

import trio

from simd.errors import first_leaf
from simd.model.scenario import TlsOptions
from simd.transports._websocket import open_websocket

NETWORK_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError)
"""What a lost, refused or broken connection raises (protocol errors are each codec's own)."""


@dataclass
class Target:
    host: str
    port: int
    tls: bool
    websocket_url: str | None = None  # ws:// or wss://: MQTT over WebSocket
    username: str | None = None  # from the URL's user information (mqtt://user:pass@host)
    password: bytes | None = None  # UTF-8, as a CONNECT carries it


async def open_stream(
    target: Target,
    ssl_context: ssl.SSLContext | None,
    tls: TlsOptions,
    nursery: trio.Nursery,
    local_address: str | None = None,
) -> trio.abc.Stream:
    """A byte stream to the broker: TCP, TLS over TCP, or MQTT over WebSocket (ws://, wss://).
    Errors are those of trio and ssl (OSError, BrokenResourceError, SSLError)."""
    if target.websocket_url is not None:
        return await open_websocket(nursery, target.websocket_url, ssl_context)
    stream: trio.abc.Stream = await open_tcp(target.host, target.port, local_address)
    if ssl_context is not None:
        tls_stream = trio.SSLStream(
            stream, ssl_context, server_hostname=tls.server_name or target.host
        )
        await tls_stream.do_handshake()
        return tls_stream
    return stream


_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux


@functools.cache
def _ip_family(host: str) -> socket.AddressFamily | None:
    """AF_INET or AF_INET6 for an IP address, None for a name."""
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


async def open_tcp(host: str, port: int, local_address: str | None = None) -> trio.SocketStream:
    """A TCP stream to host:port. An IP address is connected to directly: trio's
    open_tcp_stream (a name's addresses tried in turn, happy eyeballs) costs 0.2 ms of CPU a
    connection more, and a connection storm opens thousands (decision 0019)."""
    family = _ip_family(host)
    if family is None:  # a name: resolve it, try its addresses
        return await trio.open_tcp_stream(host, port, local_address=local_address)
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        if local_address is not None:
            with contextlib.suppress(OSError):  # the port is chosen at connect, not at bind
                sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
            await sock.bind((local_address, 0))
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


def reason_of(exc: BaseException) -> str:
    """One line saying why, from the most specific exception in the chain (trio wraps TLS
    failures such as CERTIFICATE_VERIFY_FAILED in BrokenResourceError)."""
    while isinstance(exc, trio.BrokenResourceError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: {_verify_failure(exc)}"[:160]
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"[:120]
    if isinstance(exc, trio.ClosedResourceError | trio.BusyResourceError):
        return "connection closed"  # trio's own words ("another task closed this fd") say less
    text = str(exc) or type(exc).__name__
    if isinstance(exc, trio.TooSlowError):
        text = "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    elif isinstance(exc, OSError) and isinstance(exc.__cause__, BaseExceptionGroup):
        # trio's open_tcp_stream: "all attempts to connect ... failed", the why in a group
        leaf = first_leaf(exc.__cause__)
        if isinstance(leaf, OSError) and leaf.strerror:
            text = leaf.strerror
    return text.splitlines()[0][:120]


# OpenSSL's X509_V_ERR codes (x509_vfy.h) grouped by what the user has to fix
_UNKNOWN_CA = {2, 18, 19, 20, 21, 27}
_VERIFY = {9: "certificate not yet valid", 10: "certificate expired", 62: "host name mismatch"}


def _verify_failure(exc: ssl.SSLCertVerificationError) -> str:
    """Which certificate check failed, in words, with OpenSSL's own message."""
    code = exc.verify_code
    what = _VERIFY.get(code) or (
        "unknown CA (not signed by a trusted CA; give tls.ca_file)"
        if code in _UNKNOWN_CA
        else "certificate verify failed"
    )
    detail = exc.verify_message or exc.reason or ""
    return f"{what}: {detail}" if detail else what


def ssl_context_for(tls: TlsOptions) -> ssl.SSLContext:
    """Certificates verified (against ca_file, or the system's) unless tls.verify is false."""
    ctx = ssl.create_default_context(cafile=tls.ca_file)
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.cert_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    return ctx
