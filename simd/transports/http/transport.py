"""The HTTP/1.1 transport: one keep-alive connection per simulated device (or user), on trio.

A publish is a request. Open model: the worker hands over batches on the schedule; each device
works through its own requests in order, one at a time on its connection (HTTP/1.1 without
pipelining), so a slow response delays that device's next request and the delay shows as
schedule lag. Closed model: each device of the group is a user that sends its next request
when the previous one completes, plus think time. Journey groups get `steps` rows per arrival
(simd.plan.schedule) that run in order; a failed step skips the rest of its journey.

Each request ends in one row: `acked` (a response that passed the checks), `error` (a failed
check, a refused or lost connection, a response that is not HTTP; the reason is the error
text), `timeout` (no response within http.timeout), `dropped` (a journey step skipped after an
earlier step failed), `unsent` (still queued when the run ended). `bytes` is the request body's
size. Header values may use `${ENV_VAR}`: expanded here, never logged.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import trio

from simd.errors import UserError
from simd.log.events import (
    ACKED,
    CONNECT,
    DISCONNECT,
    DROPPED,
    FAILED,
    NULL_NS,
    OK,
    PUBLISH,
    TIMEOUT,
    UNSENT,
)
from simd.model.scenario import ENV_REF, FleetGroup, HttpRequest, template_names
from simd.model.secrets import is_redacted, redact_text, url_credentials
from simd.transports._base import (
    DeviceSet,
    PublishBatch,
    Row,
    RowStage,
    TransportContext,
    flush_every,
    set_event,
    task_nursery,
)
from simd.transports._net import NETWORK_ERRORS, Target, open_stream, reason_of, ssl_context_for
from simd.transports.http.codec import (
    RemoteProtocolError,
    Response,
    ResponseReader,
    encode_request,
    request_head,
)

_NULL = int(NULL_NS)  # no time (simd.log.events)
FLUSH_S = 0.02  # finished rows reach the event buffer at least this often
SWEEP_S = 0.01  # how often requests are checked against their timeout
EAGER_CONNECTS = 64  # connections opened at once before t=0
EAGER_CONNECT_S = 2.0  # how long connect() waits for them
_NETWORK_ERRORS = (*NETWORK_ERRORS, RemoteProtocolError)


@dataclass
class _Target:
    scheme: str
    host: str
    port: int
    base: str  # path prefix, no trailing slash

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def parse_http_target(url: str) -> _Target:
    parts = urlsplit(url)
    shown = redact_text(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"target {shown!r}: expected http:// or https:// with a host")
    if is_redacted(url):
        raise UserError(
            f"target {url!r}: its credentials were not kept in run.json; give them as an "
            "Authorization header from the environment (${NAME}) to resume such a run"
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UserError(f"target {shown!r}: the port is not a number from 0 to 65535") from None
    return _Target(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


@dataclass(frozen=True)
class _Request:
    """One request of a group, with everything per device precomputed where possible."""

    spec: HttpRequest
    method: str
    headers: dict[str, str]
    expect: frozenset[int] | None  # None: any 2xx
    per_row_path: bool  # the path has {seq}: rendered per request


@dataclass
class _Client:
    index: int
    device: int
    group: int
    local: int
    device_id: str
    heads: list[bytes | None]  # per request: the head, when the path is fixed per device
    queue: collections.deque[tuple[int, ...]] = field(default_factory=collections.deque)
    current: tuple[int, ...] | None = None
    busy: bool = False
    stream: trio.abc.Stream | None = None
    reader: ResponseReader | None = None
    failed_journey: int = -1  # a journey whose step failed: its later steps are skipped
    wake: trio.Event | None = None  # set when the queue gets work (open model)
    sock: int | None = None  # the file descriptor of a plain TCP stream
    deadline: float | None = None  # trio time the request in flight times out
    timed_out: bool = False


def _basic_auth(url: str) -> str | None:
    """The Authorization header for a URL's user name and password, or None."""
    user, password = url_credentials(url)
    if user is None:
        return None
    token = base64.b64encode(f"{user}:{password or ''}".encode()).decode("ascii")
    return f"Basic {token}"


def _expand_env(value: str, where: str) -> str:
    def sub(m: Any) -> str:
        v = os.environ.get(m.group(1))
        if v is None:
            raise UserError(f"{where}: environment variable {m.group(1)} is not set")
        return v

    return ENV_REF.sub(sub, value)


class HttpTransport:
    def __init__(self, ctx: TransportContext, url: str) -> None:
        self.ctx = ctx
        self.log = ctx.log
        self.clock = ctx.clock
        self.scenario = ctx.scenario
        self.target = parse_http_target(url)
        self.basic = _basic_auth(url)
        self.net = Target(self.target.host, self.target.port, self.target.scheme == "https")
        self.ssl = ssl_context_for(self.scenario.tls) if self.target.scheme == "https" else None
        self.stage = RowStage()
        self.err: dict[str, int] = {}
        self.clients: list[_Client] = []
        self.lo = 0
        self.requests: list[list[_Request]] = []
        for gi, g in enumerate(self.scenario.fleet):
            if not (g.requests or g.journey):
                raise UserError(
                    f"fleet[{gi}] ({g.name}): an http target needs requests = [...] or "
                    "journey = [...]"
                )
            self.requests.append(_group_requests(gi, g, self.basic))
        self.steps = [g.steps for g in self.scenario.fleet]
        self.timeout_s = [g.http.timeout / 1e9 for g in self.scenario.fleet]
        self.connect_timeout_s = [g.http.connect_timeout / 1e9 for g in self.scenario.fleet]
        self.tasks: trio.Nursery | None = None
        self.paced_done = trio.Event()
        self.tasks_gone = trio.Event()  # every device task has ended (after drain)
        self.busy = 0  # devices with a request queued or in flight
        self.idle = set_event()  # set while busy == 0 (what drain waits for)
        self.closing = False

    def _code(self, text: str) -> int:
        code = self.err.get(text)
        if code is None:
            code = self.err[text] = self.log.errors.code(text[:200])
        return code

    # ------------------------------------------------------------- setup

    def _head(self, gi: int, r: _Request, cl_fields: dict[str, str]) -> bytes:
        path = r.spec.path
        for name, value in cl_fields.items():
            path = path.replace("{" + name + "}", value)
        return request_head(r.method, self.target.base + path, self.target.host_header, r.headers)

    async def connect(self, devices: DeviceSet, now_ns: int, nursery: trio.Nursery) -> None:
        """No connection opens here: each device opens its own at its first request."""
        self.lo = int(devices.device[0]) if len(devices.device) else 0
        offsets = self.scenario.group_offsets()
        for i, (dev, gi, did) in enumerate(
            zip(devices.device.tolist(), devices.group.tolist(), devices.ids, strict=True)
        ):
            g = self.scenario.fleet[gi]
            local = dev - offsets[gi]
            fields = {"device_id": did, "index": str(local), "group": g.name}
            heads: list[bytes | None] = []
            for r in self.requests[gi]:
                try:
                    heads.append(None if r.per_row_path else self._head(gi, r, fields))
                except ValueError as exc:
                    raise UserError(f"fleet[{gi}] request {r.spec.name}: {exc}") from None
            self.clients.append(_Client(i, dev, gi, local, did, heads))
        self.tasks = await nursery.start(task_nursery, self.tasks_gone)
        nursery.start_soon(flush_every, self.stage, self.log, FLUSH_S)
        nursery.start_soon(self._sweeper)
        # open-model devices connect now, before t=0, as MQTT devices do (a connection opened
        # at the first request delays it); what is not up by t=0 (or EAGER_CONNECT_S) opens
        # at its first request instead, so the schedule never waits for a slow handshake
        limiter = trio.CapacityLimiter(EAGER_CONNECTS)
        until = trio.current_time() + EAGER_CONNECT_S
        if self.clock.fixed:  # else t=0 is chosen once every worker has connected
            until = min(until, self.clock.deadline(0))
        with trio.move_on_at(until):
            async with trio.open_nursery() as opening:
                for cl in self.clients:
                    if not self.scenario.fleet[cl.group].closed:
                        opening.start_soon(self._open_early, cl, limiter)
        self.stage.flush(self.log)
        users = [c for c in self.clients if self.scenario.fleet[c.group].closed]
        if not users:
            self.paced_done.set()
        else:
            self.tasks.start_soon(self._users, users)

    # ------------------------------------------------------------- open model

    async def publish(self, batch: PublishBatch) -> None:
        """Queue each request on its device; a device works through its queue in order."""
        assert self.tasks is not None
        payloads = batch.payload.to_list()
        cols = zip(
            (batch.device - self.lo).tolist(),
            batch.seq.tolist(),
            batch.t_intended.tolist(),
            batch.phase.tolist(),
            batch.message.tolist(),
            strict=True,
        )
        for (ci, seq, t_int, phase, msg), body in zip(cols, payloads, strict=True):
            cl = self.clients[ci]
            cl.queue.append((seq, t_int, phase, msg, body))  # type: ignore[arg-type]
            if not cl.busy:
                self._set_busy(cl, True)
                if cl.wake is None:  # the device's task, started once, lives for the run
                    cl.wake = trio.Event()
                    self.tasks.start_soon(self._work, cl)
                cl.wake.set()
        self.stage.flush(self.log)

    async def _work(self, cl: _Client) -> None:
        assert cl.wake is not None
        while not self.closing:
            await cl.wake.wait()
            cl.wake = trio.Event()
            while cl.queue and not self.closing:
                row = cl.queue.popleft()
                cl.current = row
                await self._request(cl, *row)  # type: ignore[arg-type]
                cl.current = None
            self._set_busy(cl, False)

    def _set_busy(self, cl: _Client, busy: bool) -> None:
        """A device has work (queued or in flight) or has none; `idle` follows the count."""
        if cl.busy == busy:
            return
        cl.busy = busy
        self.busy += 1 if busy else -1
        if not self.busy:
            self.idle.set()
        elif self.idle.is_set():
            self.idle = trio.Event()

    # ------------------------------------------------------------- one request

    async def _request(
        self, cl: _Client, seq: int, t_int: int, phase: int, msg: int, body: bytes
    ) -> bool:
        """Send one request and log its row; True when it passed its checks."""
        gi = cl.group
        steps = self.steps[gi]
        if steps > 1 and seq // steps == cl.failed_journey:
            self._row(cl, seq, DROPPED, phase, msg, t_int, _NULL, _NULL, len(body),
                      "skipped: an earlier step of this journey failed")  # fmt: skip
            return False
        r = self.requests[gi][msg]
        head = cl.heads[msg]
        if head is None:  # the path has {seq}: in a journey, the journey's id
            fields = {
                "device_id": cl.device_id,
                "index": str(cl.local),
                "group": self.scenario.fleet[gi].name,
                "seq": str(seq // steps),
            }
            head = self._head(gi, r, fields)
        ok = False
        reason = None
        status = FAILED
        t_sent = _NULL
        try:
            if cl.stream is None:
                await self._open(cl)
            assert cl.stream is not None and cl.reader is not None
            data = encode_request(head, body)
            t_sent = self.clock.now_ns()
            cl.reader.sent(r.method == "HEAD", r.spec.expect_body is not None)
            # the sweeper closes the stream when this passes: no cancel scope per request
            cl.deadline = trio.current_time() + self.timeout_s[gi]
            await self._write(cl, data)
            resp = await self._response(cl)
            cl.deadline = None
            if cl.timed_out:
                raise trio.TooSlowError
            t_done = self.clock.now_ns()
            reason = self._check(r, resp, t_done - t_sent)
            ok = reason is None
            status = ACKED if ok else FAILED
            if not resp.keep_alive:
                await self._drop(cl)
        except trio.TooSlowError:
            t_done = self.clock.now_ns()
            status, reason = TIMEOUT, f"no response within {self.timeout_s[gi]:g}s"
            await self._drop(cl)  # a late response would answer the next request
        except _ConnectFailed as exc:
            t_done = self.clock.now_ns()
            reason = f"connect: {exc}"
        except _NETWORK_ERRORS as exc:
            t_done = self.clock.now_ns()
            if cl.timed_out:  # the sweeper closed it: the response did not come in time
                status, reason = TIMEOUT, f"no response within {self.timeout_s[gi]:g}s"
            elif isinstance(exc, RemoteProtocolError):
                reason = f"bad response: {exc}"
            else:
                reason = reason_of(exc)
            await self._drop(cl)
        self._row(cl, seq, status, phase, msg, t_int, t_sent, t_done, len(body), reason)
        if not ok and steps > 1:
            cl.failed_journey = seq // steps
        return ok

    async def _write(self, cl: _Client, data: bytes) -> None:
        """Straight to the socket when it takes it all (plain TCP); else through trio."""
        if cl.sock is not None:
            try:
                n = os.write(cl.sock, data)  # the socket is non-blocking
            except BlockingIOError:
                n = 0
            except OSError:
                n = 0  # send_all below raises it as trio does
            if n == len(data):
                return
            data = data[n:]
        assert cl.stream is not None
        await cl.stream.send_all(data)

    async def _sweeper(self) -> None:
        """Close the connection of every request past its timeout (its task then logs it)."""
        while True:
            await trio.sleep(SWEEP_S)
            now = trio.current_time()
            for cl in self.clients:
                if cl.deadline is not None and now > cl.deadline and cl.stream is not None:
                    cl.timed_out = True
                    cl.deadline = None
                    stream, cl.stream, cl.sock = cl.stream, None, None
                    with contextlib.suppress(*_NETWORK_ERRORS):
                        await stream.aclose()

    async def _read(self, cl: _Client) -> bytes:
        """The next bytes from the server. Plain TCP: wait until readable, then one read (a
        response cannot be there yet right after its request: no failed read first)."""
        fd = cl.sock
        if fd is not None:
            await trio.lowlevel.wait_readable(fd)
            if cl.sock == fd:  # not closed meanwhile (by the sweeper)
                try:
                    return os.read(fd, 65536)
                except BlockingIOError:
                    pass
        if cl.stream is None:
            raise trio.ClosedResourceError("connection closed")
        return await cl.stream.receive_some(65536)

    async def _response(self, cl: _Client) -> Response:
        while True:
            if cl.stream is None or cl.reader is None:
                raise trio.ClosedResourceError("connection closed")
            got = cl.reader.feed(b"") if cl.reader.eof else []
            if got:
                return got[0]
            data = await self._read(cl)
            got = cl.reader.feed(data)
            if got:
                return got[0]
            if not data:
                raise trio.BrokenResourceError("connection closed by the server")

    @staticmethod
    def _check(r: _Request, resp: Response, took_ns: int) -> str | None:
        ok_status = resp.status in r.expect if r.expect is not None else 200 <= resp.status < 300
        if not ok_status:
            want = ", ".join(map(str, sorted(r.expect))) if r.expect is not None else "2xx"
            return f"{r.spec.name}: status {resp.status} (expected {want})"
        if r.spec.expect_body is not None and r.spec.expect_body.encode() not in resp.body:
            return f"{r.spec.name}: body lacks {r.spec.expect_body!r}"
        if r.spec.max_time is not None and took_ns > r.spec.max_time:
            return f"{r.spec.name}: took longer than {r.spec.max_time / 1e6:g} ms"
        return None

    def _row(
        self,
        cl: _Client,
        seq: int,
        status: int,
        phase: int,
        msg: int,
        t_int: int,
        t_sent: int,
        t_done: int,
        nbytes: int,
        reason: str | None,
    ) -> None:
        code = self._code(reason) if reason else 0
        self.stage.add(Row(cl.device, seq, PUBLISH, status, phase, msg, t_int, t_sent, t_done,
                           nbytes, 0, code))  # fmt: skip

    async def _open_early(self, cl: _Client, limiter: trio.CapacityLimiter) -> None:
        async with limiter:
            if cl.stream is None:
                with contextlib.suppress(_ConnectFailed):
                    await self._open(cl)

    async def _open(self, cl: _Client) -> None:
        t0 = self.clock.now_ns()
        gi = cl.group
        try:
            with trio.fail_after(self.connect_timeout_s[gi]):
                assert self.tasks is not None
                stream = await open_stream(self.net, self.ssl, self.scenario.tls, self.tasks)
        except (trio.TooSlowError, *_NETWORK_ERRORS) as exc:
            why = "timed out" if isinstance(exc, trio.TooSlowError) else reason_of(exc)
            code = self._code(f"connect: {why}")
            now = self.clock.now_ns()
            self.stage.add(Row(cl.device, -1, CONNECT, FAILED, t_sent=t0, t_done=now, error=code))
            raise _ConnectFailed(why) from None
        cl.stream = stream
        sock = getattr(stream, "socket", None)
        cl.sock = sock.fileno() if sock is not None else None  # plain TCP: written directly
        cl.reader = ResponseReader()
        cl.timed_out = False
        self.stage.add(Row(cl.device, -1, CONNECT, OK, t_sent=t0, t_done=self.clock.now_ns()))

    async def _drop(self, cl: _Client) -> None:
        stream, cl.stream, cl.reader, cl.sock = cl.stream, None, None, None
        cl.deadline = None
        if stream is not None:
            with (
                trio.move_on_after(1),
                trio.CancelScope(shield=True),
                contextlib.suppress(*_NETWORK_ERRORS),
            ):
                await stream.aclose()

    # ------------------------------------------------------------- closed model

    async def _users(self, users: list[_Client]) -> None:
        """Every user of a closed group: send, wait for the response, think, repeat."""
        async with trio.open_nursery() as n:
            for cl in users:
                n.start_soon(self._user, cl)
        self.paced_done.set()

    async def _user(self, cl: _Client) -> None:
        g = self.scenario.fleet[cl.group]
        pacing = self.ctx.pacing
        assert pacing is not None
        render = pacing.render
        duration = self.scenario.duration_ns
        seq = int(pacing.first_seq[cl.index]) if pacing.first_seq is not None else 0
        limit = (g.http.requests_per_user or 0) * g.steps
        await self.clock.sleep_until_ns(0)
        t_ready = max(0, self.clock.now_ns())
        self._set_busy(cl, True)
        try:
            while not self.closing and (not limit or seq < limit):
                if t_ready >= duration:
                    return
                await self.clock.sleep_until_ns(t_ready)
                msg, phase, body = render(cl.group, cl.local, seq, t_ready)
                cl.current = (seq, t_ready, phase, msg, body)
                await self._request(cl, seq, t_ready, phase, msg, body)
                cl.current = None
                seq += 1
                t_ready = self.clock.now_ns() + g.http.think_time
        finally:
            self._set_busy(cl, False)

    # ------------------------------------------------------------- the end

    def oldest_pending_ns(self) -> int | None:
        """The oldest request queued or in flight (Transport); each device's queue is in
        intended order, so its current request and its queue's head are its oldest."""
        self.stage.flush(self.log)
        times = [cl.current[1] for cl in self.clients if cl.current is not None]
        times += [cl.queue[0][1] for cl in self.clients if cl.queue]
        return min(times, default=None)

    async def drain(self, deadline_ns: int) -> None:
        """Wait for requests in flight; then every one still queued or in flight gets its row."""
        try:
            with trio.move_on_at(self.clock.deadline(deadline_ns)):
                await self.idle.wait()
        finally:
            self.closing = True
            if self.tasks is not None:
                self.tasks.cancel_scope.cancel()
            for cl in self.clients:
                if cl.current is not None:
                    seq, t_int, phase, msg, body = cl.current
                    self._row(cl, seq, TIMEOUT, phase, msg, t_int, _NULL, self.clock.now_ns(),
                              len(body), "no response before the run ended")  # fmt: skip
                    cl.current = None
                why = "not sent before the run ended (the device was still busy)"
                for seq, t_int, phase, msg, body in cl.queue:
                    self._row(cl, seq, UNSENT, phase, msg, t_int, _NULL, _NULL, len(body), why)
                cl.queue.clear()
            self.stage.flush(self.log)

    async def close(self, now_ns: int) -> None:
        if self.tasks is not None:  # cancelled in drain: let them end before their streams go
            with trio.move_on_after(2):
                await self.tasks_gone.wait()
        for cl in self.clients:
            if cl.stream is not None:
                await self._drop(cl)
                self.stage.add(Row(cl.device, -1, DISCONNECT, OK, t_sent=now_ns,
                                   t_done=self.clock.now_ns()))  # fmt: skip
        self.stage.flush(self.log)


class _ConnectFailed(Exception):
    pass


def _group_requests(gi: int, g: FleetGroup, basic: str | None) -> list[_Request]:
    """A group's requests, their headers filled (the group's, the request's, the URL's Basic
    auth unless a header sets Authorization)."""
    base = {k: _expand_env(v, f"fleet[{gi}].http.headers.{k}") for k, v in g.http.headers.items()}
    if basic is not None and not any(k.lower() == "authorization" for k in base):
        base["Authorization"] = basic  # http://user:pass@host: Basic auth (RFC 7617)
    out = []
    for r in g.requests or g.journey:
        headers = dict(base)
        headers.update(
            {k: _expand_env(v, f"fleet[{gi}] request {r.name}") for k, v in r.headers.items()}
        )
        expect = frozenset(r.expect_status) if r.expect_status else None
        out.append(
            _Request(r, r.method or g.http.method, headers, expect, "seq" in template_names(r.path))
        )
    return out
