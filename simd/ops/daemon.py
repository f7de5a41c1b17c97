"""`simd daemon`: a long-lived supervisor of runs with an HTTP control API.

Each run it starts is an ordinary `simd run` child process (its own supervisor, workers,
/status), so a run outlives nothing it should not and the daemon stays small. The API is JSON
over HTTP on loopback, every request but /health carrying `Authorization: Bearer <token>`;
the token is written to a 0600 file under SIMD_HOME (default ~/.simd) beside daemon.json,
which tells `simd status`, `simd stop` and `simd submit` where the daemon listens. Binding a
non-loopback address needs --allow-remote and a TLS certificate and key.

    GET  /health                  {"ok": true}
    GET  /runs                    the runs in the runs folder, newest first
    POST /runs                    {"scenario": path | "toml": text, "run_id"?, "args"?: [...]}
    GET  /runs/{id}               run.json's summary, and the live /status while it runs
    POST /runs/{id}/stop          SIGTERM: the run drains, flushes and ends "stopped"
    POST /login-url               {"url": a new one-time login URL for the web page}

The web page (/ui/, simd.ops.daemon_page) is reached through the one-time login URL printed
at start; it uses a session cookie and CSRF tokens, not the API token.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from simd.errors import ScenarioError, UserError
from simd.model.manifest import RunManifest, read_manifest
from simd.ops import daemon_page as page
from simd.runtime.local_http import LocalHandler, refusal

_RUN_ID = re.compile(r"^[\w.-]+$")


def simd_home() -> Path:
    return Path(os.environ.get("SIMD_HOME") or Path.home() / ".simd")


def _write_private(path: Path, text: str) -> None:
    """Create or replace `path` readable by its owner only (0600), in a 0700 folder."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class _Run:
    run_id: str
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class Daemon:
    runs_dir: Path
    runs: dict[str, _Run] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start_run(self, body: dict[str, Any]) -> dict[str, Any]:
        from simd.plan.inputs import load_scenario

        run_id = body.get("run_id") or _new_id()
        if not _is_run_id(str(run_id)):
            raise UserError(f"run_id {run_id!r}: letters, digits, '.', '-', '_' only")
        run_dir = self.runs_dir / run_id
        if run_dir.exists():
            raise UserError(f"{run_dir}: a run with this id exists already")
        args = [str(a) for a in body.get("args") or []]
        if "toml" in body:
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            scenario = self.runs_dir / f".{run_id}.toml"
            scenario.write_text(str(body["toml"]))
        elif "scenario" in body:
            scenario = Path(str(body["scenario"]))
        else:
            raise UserError('give "scenario" (a path) or "toml" (the scenario text)')
        load_scenario(scenario)  # a bad scenario is refused here, with its one-line error
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        log = self.runs_dir / f".{run_id}.log"
        cmd = [
            sys.executable, "-m", "simd", "run", str(scenario), "--runs-dir", str(self.runs_dir),
            "--run-id", run_id, "--no-progress", "--status-port", "0", *args,
        ]  # fmt: skip
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        with self.lock:
            self.runs[run_id] = _Run(run_id, proc, log)
        return {"run_id": run_id, "run_dir": str(run_dir), "pid": proc.pid}

    def describe(self, run_id: str, live: bool = True) -> dict[str, Any]:
        with self.lock:
            r = self.runs.get(run_id)
        out = folder_status(self.runs_dir / run_id, live=live and r is not None)
        if out is None and r is None:
            raise KeyError(run_id)
        out = out or {"run_id": run_id, "run_dir": str(self.runs_dir / run_id), "state": "starting"}
        out["pid"] = r.proc.pid if r and r.proc.poll() is None else None
        out["exit_code"] = r.proc.poll() if r else None
        return out

    def list_runs(self) -> list[dict[str, Any]]:
        ids = {p.parent.name for p in self.runs_dir.glob("*/run.json")}
        with self.lock:
            ids |= set(self.runs)
        rows = [self.describe(i, live=False) for i in ids]
        return sorted(rows, key=lambda r: r["run_id"], reverse=True)

    def stop(self, run_id: str) -> dict[str, Any]:
        with self.lock:
            r = self.runs.get(run_id)
        if r is None:
            raise KeyError(run_id)
        if r.proc.poll() is None:
            r.proc.send_signal(signal.SIGTERM)
        return {"run_id": run_id, "stopping": r.proc.poll() is None}

    def shutdown(self) -> None:
        with self.lock:
            live = [r for r in self.runs.values() if r.proc.poll() is None]
        for r in live:
            r.proc.send_signal(signal.SIGTERM)
        for r in live:
            try:
                r.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                r.proc.kill()


def folder_status(run_dir: Path, live: bool = True) -> dict[str, Any] | None:
    """What a run folder says of itself (None without a readable run.json), and, while it
    runs and `live`, its supervisor's /status."""
    try:
        m = read_manifest(run_dir)
    except UserError:  # not there yet, being replaced, or not a run.json
        return None
    out: dict[str, Any] = {
        "run_id": m.run_id,
        "run_dir": str(run_dir),
        "state": m.state,
        "scenario": m.scenario.get("name"),
        "status_url": m.status_url,
    }
    if out["state"] != "running":
        out["status_url"] = None  # it served only while the run was on
        out["status"] = final_numbers(run_dir, m)
    elif live and out["status_url"]:
        try:
            with urllib.request.urlopen(out["status_url"] + "/status", timeout=2) as resp:
                out["status"] = json.loads(resp.read())
        except OSError:
            out["status"] = None
    return out


def final_numbers(run_dir: Path, m: RunManifest) -> dict[str, Any] | None:
    """A finished run's sent, completed and errors, from the log: its results when ingested,
    else what its workers reported at their end (run.json); elapsed to its end or stop."""
    elapsed = (m.stopped_at_ns if m.stopped_at_ns is not None else m.duration_ns) / 1e9
    if (run_dir / "results.duckdb").is_file():
        import duckdb

        from simd.results.ingest import query

        try:
            _, rows = query(
                run_dir,
                "SELECT sum(count) FILTER (WHERE was_sent(status)), "
                "sum(count) FILTER (WHERE is_completed(status)), "
                "sum(count) FILTER (WHERE is_failed(status)) "
                "FROM status_totals WHERE kind = kind_code('publish')",
            )
            sent, completed, errors = (int(v or 0) for v in rows[0])
            return {"sent": sent, "completed": completed, "errors": errors,
                    "elapsed_s": elapsed, "final": True, "from": "results"}  # fmt: skip
        except (UserError, duckdb.Error, OSError):
            pass  # results of another layout, or being written: run.json has the numbers too
    if not m.worker_results:
        return None
    done = m.worker_results.values()
    return {
        "sent": sum(int(w.get("sent", 0)) for w in done),
        "completed": sum(int(w.get("completed", 0)) for w in done),
        "errors": sum(int(w.get("errors", 0)) for w in done),
        "elapsed_s": elapsed,
        "final": True,
        "from": "run.json",
    }


def _is_run_id(text: str) -> bool:
    return bool(_RUN_ID.match(text)) and text not in (".", "..")


def _new_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def serve(
    runs_dir: Path,
    host: str = "127.0.0.1",
    port: int = 7878,
    allow_remote: bool = False,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    ready: Any = None,
) -> None:
    """Run the daemon until SIGINT/SIGTERM (then its runs are stopped, and it exits)."""
    if not is_loopback(host):
        if not allow_remote:
            raise UserError(
                f"--host {host}: not a loopback address; the control API starts runs, so it "
                "listens on loopback unless --allow-remote is given (with --tls-cert/--tls-key)"
            )
        if tls_cert is None or tls_key is None:
            raise UserError(f"--host {host} --allow-remote: needs --tls-cert and --tls-key")
    daemon = Daemon(runs_dir.resolve())
    token = secrets.token_urlsafe(32)
    home = simd_home()
    sessions = page.Sessions()
    secure = tls_cert is not None and tls_key is not None
    handler = _handler(daemon, token, sessions, secure)
    httpd = ThreadingHTTPServer((host, port), handler)
    httpd.daemon_threads = True
    scheme = "http"
    if tls_cert is not None and tls_key is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(str(tls_cert), str(tls_key))
        except (OSError, ssl.SSLError) as exc:
            raise UserError(f"--tls-cert/--tls-key: {exc}") from None
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    bound = httpd.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{shown}:{bound}"
    _write_private(home / "daemon.token", token + "\n")
    _write_private(
        home / "daemon.json",
        json.dumps({"url": url, "pid": os.getpid(), "runs_dir": str(daemon.runs_dir)}) + "\n",
    )
    stopping = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stopping.set()
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    if ready is not None:
        ready(url, home / "daemon.token", f"{url}/login?token={sessions.new_login()}")
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
        daemon.shutdown()
        (home / "daemon.json").unlink(missing_ok=True)


def _handler(
    daemon: Daemon, token: str, sessions: page.Sessions, secure: bool
) -> type[LocalHandler]:
    from simd.runtime.dashboard import CSP, assets

    expected = f"Bearer {token}".encode()
    files = assets()

    class Handler(LocalHandler):
        csp = CSP

        def _send(self, code: int, obj: Any) -> None:
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorized(self) -> bool:
            why = refusal(self.headers)
            if why is not None:
                self._send(403, {"error": why})
                return False
            got = (self.headers.get("Authorization") or "").encode()
            if hmac.compare_digest(got, expected):
                return True
            self._send(401, {"error": "missing or wrong token (see daemon.token)"})
            return False

        def _redirect(self, location: str, cookie: str | None = None) -> None:
            self.send_response(303)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.send_header("Cache-Control", "no-store")
            if cookie:
                self.send_header("Set-Cookie", cookie)
            self.end_headers()

        def _csrf(self) -> str | None:
            """The session's CSRF token; None (and a login page) when not logged in."""
            csrf = sessions.csrf_of(self.headers.get("Cookie"))
            if csrf is None:
                self.reply(401, page.HTML, page.login_page(
                    "Not logged in: open the login URL the daemon printed at start "
                    "(`simd login` prints a new one)."))  # fmt: skip
            return csrf

        def _page_get(self, parts: list[str], query: str) -> None:
            if parts == ["login"]:
                sid = sessions.log_in(parse_qs(query).get("token", [""])[0])
                if sid is None:
                    self.reply(403, page.HTML, page.login_page(
                        "This login URL is wrong or was used already; `simd login` prints "
                        "a new one."))  # fmt: skip
                else:
                    self._redirect("/ui/", page.session_cookie(sid, secure))
                return
            if len(parts) >= 2 and parts[1] == "dashboard" and "/" + "/".join(parts[1:]) in files:
                self.reply(200, *files["/" + "/".join(parts[1:])])  # the page's own files
                return
            csrf = self._csrf()
            if csrf is None:
                return
            if parts == ["ui"]:
                self.reply(200, page.HTML, page.runs_page(self._runs(), csrf))
            elif len(parts) >= 3 and parts[1] == "runs" and _is_run_id(parts[2]):
                self._run_page(parts[2], "/" + "/".join(parts[3:]))
            else:
                self.send_error(404)

        def _runs(self) -> list[dict[str, Any]]:
            return [daemon.describe(r["run_id"]) if r["pid"] else r for r in daemon.list_runs()]

        def _run_page(self, run_id: str, rest: str) -> None:
            if rest == "/api/dashboard":
                st = folder_status(daemon.runs_dir / run_id, live=False)
                feed = page.run_feed(daemon.runs_dir / run_id, st and st.get("status_url"))
                # before its status server is up: "pending", and the page asks again
                self.reply(200, "application/json", feed or b'{"pending": true}')
            elif rest in files:
                self.reply(200, *files[rest])
            else:
                self.send_error(404)

        def _page_post(self, parts: list[str]) -> None:
            csrf = self._csrf()
            if csrf is None:
                return
            form = page.read_form(self.rfile, self.headers.get("Content-Length"))
            if form is None or not hmac.compare_digest(form.get("csrf", ""), csrf):
                self.reply(403, page.HTML, page.login_page("Refused: the form's CSRF token "
                                                           "is missing or wrong."))  # fmt: skip
                return
            try:
                if parts == ["ui", "runs"]:
                    daemon.start_run(page.start_body(form))
                elif len(parts) == 4 and parts[1] == "runs" and parts[3] == "stop":
                    daemon.stop(parts[2])
                else:
                    self.send_error(404)
                    return
            except (UserError, ScenarioError) as exc:
                self.reply(400, page.HTML, page.runs_page(self._runs(), csrf, str(exc)))
                return
            except KeyError:
                self.send_error(404)
                return
            self._redirect("/ui/")

        def do_GET(self) -> None:  # the stdlib's name
            path, _, query = self.path.partition("?")
            parts = [p for p in path.split("/") if p]
            if parts == ["favicon.ico"]:  # a browser asks for it after a page without one
                self.reply(204, "image/x-icon", b"")
                return
            if parts and parts[0] in ("ui", "login"):
                if not self.refused():
                    self._page_get(parts, query)
                return
            if parts == ["health"]:
                why = refusal(self.headers)
                if why is None:
                    self._send(200, {"ok": True})
                else:
                    self._send(403, {"error": why})
                return
            if not self._authorized():
                return
            if parts == ["runs"]:
                self._send(200, {"runs": daemon.list_runs()})
            elif len(parts) == 2 and parts[0] == "runs":
                try:
                    self._send(200, daemon.describe(parts[1]))
                except KeyError:
                    self._send(404, {"error": f"no run {parts[1]!r}"})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if parts and parts[0] == "ui":
                if not self.refused():
                    self._page_post(parts)
                return
            if not self._authorized():
                return
            if parts == ["login-url"]:
                host = self.headers.get("Host") or "127.0.0.1"
                scheme = "https" if secure else "http"
                url = f"{scheme}://{host}/login?token={sessions.new_login()}"
                self._send(200, {"url": url})
                return
            try:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}") if n else {}
            except (ValueError, OSError):
                self._send(400, {"error": "the body is not JSON"})
                return
            try:
                if parts == ["runs"]:
                    self._send(201, daemon.start_run(body))
                elif len(parts) == 3 and parts[0] == "runs" and parts[2] == "stop":
                    self._send(200, daemon.stop(parts[1]))
                else:
                    self._send(404, {"error": "not found"})
            except (UserError, ScenarioError) as exc:
                self._send(400, {"error": str(exc)})
            except KeyError as exc:
                self._send(404, {"error": f"no run {exc.args[0]!r} started by this daemon"})

    return Handler


class Client:
    """What `simd status`, `simd stop` and `simd submit` use: daemon.json and the token file."""

    def __init__(self, home: Path | None = None) -> None:
        home = home or simd_home()
        try:
            info = json.loads((home / "daemon.json").read_text())
            self.token = (home / "daemon.token").read_text().strip()
        except (OSError, ValueError):
            raise UserError(
                f"no simd daemon found ({home / 'daemon.json'}); start `simd daemon`"
            ) from None
        self.url = info["url"]
        self.ctx = None
        if self.url.startswith("https"):
            self.ctx = ssl.create_default_context(cafile=os.environ.get("SIMD_DAEMON_CA"))

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.ctx) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            try:
                msg = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                msg = exc.reason
            raise UserError(f"daemon: {msg}") from None
        except OSError as exc:
            raise UserError(f"daemon at {self.url} unreachable ({exc})") from None
