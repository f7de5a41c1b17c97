"""Live progress: what a terminal shows (in a pseudo-terminal) and the periodic plain lines a
CI log gets; the last line's counts are the report's."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import SCENARIOS, run_dir_from, simd, sql
from tests.http_server import HttpServer


def test_plain_lines_every_interval_and_a_last_line_that_agrees(runs: Path) -> None:
    """Without a terminal: a line per --progress-interval while the run goes, and a last line
    whose counts are the ones the log (results.duckdb) holds."""
    r = simd("pub", "null:", "-c", "10", "-r", "10", "-d", "4s", "--progress-interval", "1s",
             "--runs-dir", str(runs), "--no-report", check=0)  # fmt: skip
    lines = [ln for ln in r.stderr.splitlines() if re.match(r"simd: +[\d.]+s of 4s", ln)]
    assert len(lines) >= 2, r.stderr  # 4 s at one a second: a slow start may cost one
    assert "sent/s" in lines[-1] and "latency p50" in lines[-1]
    (last,) = [ln for ln in r.stderr.splitlines() if ln.startswith("simd: done:")]
    sent, completed = sql(run_dir_from(r), "SELECT logged, completed FROM run_summary")[0]
    assert last == (
        f"simd: done: {sent:,} of 400 planned publishes sent, {completed:,} completed, no errors"
    )
    quiet = simd("pub", "null:", "-c", "2", "-d", "1s", "--runs-dir", str(runs), "--no-report",
                 "--no-progress", check=0)  # fmt: skip
    assert "simd: done" not in quiet.stderr


def _on_terminal(args: list[str], env: dict[str, str] | None = None) -> str:
    """Run `simd ARGS` with stderr on a pseudo-terminal; what it drew, escapes removed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "simd", *args],
        stderr=follower,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
    )
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other side closed: the run ended
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(60) == 0, out.decode(errors="replace")[-2000:]
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode(errors="replace"))


def test_a_terminal_gets_a_panel(runs: Path) -> None:
    """On a terminal: a bar per phase with time left, rates, latency and lag of the last
    seconds, the counts by status, a row per group, then the last line."""
    text = _on_terminal(["pub", "null:", "-c", "10", "-r", "10", "-d", "2s", "--ramp", "1s",
                         "--runs-dir", str(runs), "--no-report"])  # fmt: skip
    for expected in ("ramp ", "steady ", "█", "s left", "publishes: planned", "completed",
                     "schedule lag p99", "by status: sent", "group", "pub "):  # fmt: skip
        assert expected in text, expected
    assert "simd: done: 250 of 250 planned publishes sent, 250 completed, no errors" in text


def test_an_http_run_shows_a_row_per_request_name(runs: Path) -> None:
    """An HTTP run's panel: requests, not publishes, and a row per request name whose last
    counts add up to the run's (scenarios/rest.toml: list-users and create-user)."""
    token = "t0ken-" + os.urandom(4).hex()
    with HttpServer(token=token) as server:
        text = _on_terminal(["run", str(SCENARIOS / "rest.toml"), "--target", server.url,
                             "--duration", "3s", "--runs-dir", str(runs), "--no-report"],
                            env={"API_TOKEN": token})  # fmt: skip
    assert "requests: planned" in text and "publishes" not in text
    rows = re.findall(r"clients +(list-users|create-user) +([\d,]+) +([\d,]+) +([\d,]+)", text)
    last = {name: (int(s.replace(",", "")), int(c.replace(",", ""))) for name, s, c, _ in rows}
    assert set(last) == {"list-users", "create-user"}, text[-3000:]
    done = re.search(r"simd: done: ([\d,]+) of [\d,]+ planned requests sent", text)
    assert done, text[-2000:]
    assert sum(s for s, _ in last.values()) == int(done.group(1).replace(",", ""))
    assert token not in text
