"""`simd daemon`: runs started, listed, watched and stopped over its token-protected API."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import raw_get, run_state, simd, wait_until, write_scenario

SCENARIO = """
name = "daemonized"
seed = 2
duration = "{duration}"
target = "sim:"

[[fleet]]
name = "g"
count = 50
rate = 10.0
"""


@pytest.fixture
def daemon(daemon_login: tuple[str, Path, str]) -> tuple[str, Path]:
    return daemon_login[0], daemon_login[1]


@pytest.fixture
def daemon_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path, str]]:
    """A daemon on a free port: (its URL, its SIMD_HOME, the login URL it printed)."""
    home = tmp_path / "home"
    monkeypatch.setenv("SIMD_HOME", str(home))
    proc = subprocess.Popen(
        [sys.executable, "-m", "simd", "daemon", "--port", "0", "--runs-dir",
         str(tmp_path / "runs")],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SIMD_HOME": str(home)},
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (home / "daemon.json").exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    url = json.loads((home / "daemon.json").read_text())["url"]
    lines = [proc.stderr.readline() for _ in range(2)]  # type: ignore[union-attr]
    login = lines[1].split("its page: ", 1)[1].split()[0]
    try:
        yield url, home, login
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert not (home / "daemon.json").exists()


def _call(url: str, path: str, token: str | None, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
    )
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_token_file_and_auth(daemon: tuple[str, Path]) -> None:
    """The token file is 0600; requests without it or with a wrong one get 401; /health is open."""
    url, home = daemon
    token_file = home / "daemon.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    token = token_file.read_text().strip()
    assert _call(url, "/health", None) == (200, {"ok": True})
    assert _call(url, "/runs", None)[0] == 401
    assert _call(url, "/runs", "x" * len(token))[0] == 401
    assert _call(url, "/runs", token) == (200, {"runs": []})
    code, body = _call(url, "/runs", token, {"toml": "name = 'x'\nfleet = 3\n"})
    assert code == 400 and "fleet" in body["error"]


def test_submit_status_stop_through_the_cli(tmp_path: Path, daemon: tuple[str, Path]) -> None:
    """`simd submit` starts a run on the daemon, `simd status` shows it live, `simd stop` ends
    it (drained, stopped); the run folder is a normal run folder."""
    path = write_scenario(tmp_path, SCENARIO.replace("{duration}", "60s"))
    run_id = simd("submit", str(path), "--run-id", "d1", check=0).stdout.strip()
    assert run_id == "d1"
    run_dir = tmp_path / "runs" / "d1"

    def live() -> dict:
        return json.loads(simd("status", "d1", "--format", "json", check=0).stdout)

    deadline = time.monotonic() + 30
    while not ((s := live()).get("status") or {}).get("sent"):
        assert time.monotonic() < deadline, s
        time.sleep(0.3)
    assert s["state"] == "running" and s["status"]["run_id"] == "d1"
    listed = json.loads(simd("status", "--format", "json", check=0).stdout)["runs"]
    assert [r["run_id"] for r in listed] == ["d1"]
    table = simd("status", check=0).stdout
    assert "d1" in table and "running" in table
    # the same live status straight from the run folder, no daemon needed
    folder = json.loads(simd("status", str(run_dir), "--format", "json", check=0).stdout)
    assert folder["status"]["run_id"] == "d1"

    assert "d1: stopping" in simd("stop", "d1", check=0).stdout
    deadline = time.monotonic() + 60
    while (s := live())["pid"] is not None:  # the run's process ends after its report
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert s["state"] == "stopped" and s["exit_code"] == 3  # stopped before its end
    simd("query", str(run_dir), "SELECT count(*) FROM events", check=0)  # ingested by the run
    assert (run_dir / "report.html").exists()
    bad = simd("stop", "nope", check=2)
    assert "no run 'nope'" in bad.stderr


def test_refuses_a_non_loopback_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--host 0.0.0.0 is refused without --allow-remote, and without TLS with it."""
    monkeypatch.setenv("SIMD_HOME", str(tmp_path / "home"))
    r = simd("daemon", "--host", "0.0.0.0", "--port", "0", check=2)
    assert "not a loopback address" in r.stderr
    r = simd("daemon", "--host", "0.0.0.0", "--port", "0", "--allow-remote", check=2)
    assert "needs --tls-cert and --tls-key" in r.stderr
    r = simd("status", check=2)
    assert "no simd daemon found" in r.stderr


def test_daemon_refuses_foreign_host_and_origin(daemon: tuple[str, Path]) -> None:
    """DNS rebinding and cross-site requests: a Host that is not an address of the daemon, or
    an Origin not its own, get 403 even with the token; its own address passes."""
    url, home = daemon
    token = (home / "daemon.token").read_text().strip()
    host = url.split("://", 1)[1]
    auth = {"Authorization": f"Bearer {token}"}
    assert raw_get(url, "/runs", {"Host": host, **auth}) == 200
    assert raw_get(url, "/runs", {"Host": f"localhost:{host.split(':')[1]}", **auth}) == 200
    assert raw_get(url, "/runs", {"Host": "evil.example", **auth}) == 403
    assert raw_get(url, "/health", {"Host": "evil.example:80"}) == 403
    assert raw_get(url, "/runs", {"Host": host, "Origin": "http://evil.example", **auth}) == 403
    assert raw_get(url, "/runs", {"Host": host, "Origin": f"http://{host}", **auth}) == 200


def _no_redirect(url: str, data: bytes | None = None, cookie: str | None = None) -> tuple:
    """(status, headers) of one request, redirects not followed."""

    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kw: object) -> None:
            return None

    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if cookie:
        req.add_header("Cookie", cookie)
    try:
        with urllib.request.build_opener(Stay).open(req, timeout=10) as r:
            return r.status, r.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


@pytest.mark.trio
async def test_the_daemon_page_logs_in_once_starts_and_stops_a_run(
    tmp_path: Path, daemon_login: tuple[str, Path, str]
) -> None:
    """Without the login: refused. With the one-time login URL (used up on first use): a
    session cookie (HttpOnly, SameSite=Strict); the start form starts a run, the run's live
    dashboard answers, its stop button stops it (state stopped, the log reads back); a form
    posted without the session's CSRF token is refused."""
    import trio

    from tests.browser import open_page
    from tests.conftest import sql

    url, home, login = daemon_login
    assert (await trio.to_thread.run_sync(_no_redirect, url + "/ui/"))[0] == 401
    scenario = write_scenario(tmp_path, SCENARIO.replace("{duration}", "120s"))
    seen: dict[str, object] = {}

    async def use(evaluate: object) -> None:
        ev = evaluate  # type: ignore[assignment]

        async def until(expr: str, timeout: float = 60) -> None:
            with trio.fail_after(timeout):
                while not await ev(expr):  # type: ignore[operator]
                    await trio.sleep(0.2)

        await ev(  # type: ignore[operator]
            f"document.getElementById('scenario').value = {json.dumps(str(scenario))};"
            "document.getElementById('run_id').value = 'web1';"
            "document.getElementById('start').submit(); true"
        )
        await until("!!document.getElementById('stop-web1')")
        feed = "fetch('/ui/runs/web1/api/dashboard').then(r => r.ok ? r.json() : null)"
        await until(f"{feed}.then(d => d && d.status.sent > 0)")
        seen["feed_run"] = await ev(f"{feed}.then(d => d.status.run_id)")  # type: ignore[operator]
        await ev("document.getElementById('stop-web1').click(); true")  # type: ignore[operator]
        cell = "document.querySelector('#run-web1 .state-cell')"
        await until(f"{cell} && {cell}.textContent === 'stopped'", timeout=90)
        # its process has ended (ingest and report done) once it has no stop button
        await until("!document.getElementById('stop-web1') && !!document.getElementById('runs')")

    run = await open_page(login, {}, timeout=150, until="!!document.getElementById('start')",
                          then=use)  # fmt: skip
    assert run.errors == [], run.errors
    assert [u for u in run.requests if not u.startswith(url)] == []
    assert seen["feed_run"] == "web1"
    run_dir = tmp_path / "runs" / "web1"
    assert sql(run_dir, "SELECT state FROM runs")[0][0] == "stopped"
    assert sql(run_dir, "SELECT count(*) FROM events WHERE kind = 'publish'")[0][0] > 0
    # the login URL was used up; `simd login` gives a new one, whose cookie is strict
    assert (await trio.to_thread.run_sync(_no_redirect, login))[0] == 403
    env = {**os.environ, "SIMD_HOME": str(home)}
    fresh = simd("login", env=env).stdout.strip()
    code, headers = await trio.to_thread.run_sync(_no_redirect, fresh)
    cookie = headers["Set-Cookie"]
    assert code == 303 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session = cookie.split(";", 1)[0]
    assert (await trio.to_thread.run_sync(_no_redirect, url + "/ui/", None, session))[0] == 200
    no_csrf = b"scenario=" + str(scenario).encode() + b"&run_id=web2"
    code, _ = await trio.to_thread.run_sync(_no_redirect, url + "/ui/runs", no_csrf, session)
    assert code == 403 and not (tmp_path / "runs" / "web2").exists()
    # the form's `simd pub` fields: a bad number is one line on the page, a good set a run
    req = urllib.request.Request(url + "/ui/", headers={"Cookie": session})
    with urllib.request.urlopen(req, timeout=10) as r:
        csrf = re.search(r'name="csrf" value="([^"]+)"', r.read().decode()).group(1)  # type: ignore[union-attr]
    bad = urllib.parse.urlencode({"csrf": csrf, "target": "sim:", "count": "abc"}).encode()
    req = urllib.request.Request(url + "/ui/runs", data=bad, headers={"Cookie": session})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    assert (
        exc.value.code == 400 and "-c &#x27;abc&#x27; is not a number" in exc.value.read().decode()
    )
    good = urllib.parse.urlencode({"csrf": csrf, "target": "sim:", "count": "5", "rate": "2",
                                   "duration": "2s", "run_id": "web3"}).encode()  # fmt: skip
    code, _ = await trio.to_thread.run_sync(_no_redirect, url + "/ui/runs", good, session)
    assert code == 303
    run3 = tmp_path / "runs" / "web3"
    token = (home / "daemon.token").read_text().strip()

    def ended() -> bool:  # its process exited: ingest and report done
        return _call(url, "/runs/web3", token)[1].get("exit_code") is not None

    await trio.to_thread.run_sync(lambda: wait_until(ended, 60))
    assert run_state(run3) == "completed"
    logged, planned = sql(run3, "SELECT logged, planned FROM run_summary")[0]
    assert logged == planned > 0
