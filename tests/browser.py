"""Open a page in headless Chromium over the DevTools protocol and report what it did.

Records every network request, uncaught exception, console error and log error while the page
loads and while it is watched, then evaluates a few expressions in it (a file, or a URL served
on loopback; optionally after a condition holds, then again at later moments, and a
screenshot). Chromium is started with its background
networking off (its own update and sync traffic would otherwise show up as requests) and a
fresh profile; the page's own requests are the only ones left to see.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
from trio_websocket import open_websocket_url

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--remote-debugging-port=0",
)


def chromium() -> str:
    """The Chromium binary; skip where missing, fail where CI requires it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("SIMD_REQUIRE_CHROMIUM"):
        pytest.fail("SIMD_REQUIRE_CHROMIUM is set but chromium is not on PATH")
    pytest.skip("chromium is not installed (CI installs it and requires this test)")


@dataclass
class PageRun:
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    values: dict[str, object] = field(default_factory=dict)


Evaluate = Callable[[str], Awaitable[object]]


async def open_page(
    path: Path | str,
    expressions: dict[str, str],
    timeout: float = 60,
    until: str | None = None,
    then: Callable[[Evaluate], Awaitable[None]] | None = None,
    screenshot: Path | None = None,
) -> PageRun:
    """Load file `path` (or a URL), wait for its load event (and for the JS `until` to be
    true), evaluate `expressions` (name -> JS), then run `then(evaluate)` for more readings
    while the page goes on; `screenshot`: a PNG of it at the end."""
    exe = chromium()
    profile = tempfile.mkdtemp(prefix="simd-chromium-")
    proc = subprocess.Popen(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out = PageRun()
    try:
        with trio.fail_after(timeout):
            port_file = Path(profile) / "DevToolsActivePort"
            while not port_file.exists() or not port_file.read_text().strip():
                await trio.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            targets = await trio.to_thread.run_sync(_get_json, f"http://127.0.0.1:{port}/json/list")
            page = next(t for t in targets if t.get("type") == "page")
            async with open_websocket_url(page["webSocketDebuggerUrl"]) as ws:
                await _session(ws, path, expressions, out, until, then, screenshot)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return out


def _get_json(url: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:  # loopback, DevTools only
                return json.loads(r.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def _session(
    ws: object,
    path: Path | str,
    expressions: dict[str, str],
    out: PageRun,
    until: str | None,
    then: Callable[[Evaluate], Awaitable[None]] | None,
    screenshot: Path | None,
) -> None:
    ids = iter(range(1, 1_000_000))
    replies: dict[int, dict[str, object]] = {}
    loaded = False

    async def call(method: str, **params: object) -> dict[str, object]:
        i = next(ids)
        await ws.send_message(json.dumps({"id": i, "method": method, "params": params}))  # type: ignore[attr-defined]
        while i not in replies:
            await pump()
        return replies.pop(i)

    async def pump() -> None:
        nonlocal loaded
        msg = json.loads(await ws.get_message())  # type: ignore[attr-defined]
        if "id" in msg:
            replies[msg["id"]] = msg
            return
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Network.requestWillBeSent":
            out.requests.append(p["request"]["url"])
        elif m == "Runtime.exceptionThrown":
            out.errors.append(f"exception: {p['exceptionDetails'].get('text')}")
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.errors.append(f"console.{p['type']}: {p.get('args')}")
        elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
            out.errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif m == "Page.loadEventFired":
            loaded = True

    for domain in ("Network", "Runtime", "Log", "Page"):
        await call(f"{domain}.enable")

    async def evaluate(expr: str) -> object:
        """The value of `expr` (a promise: awaited); None while the page is between two
        documents (a form's submit, a reload)."""
        r = await call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        result = r.get("result") or {}
        if not isinstance(result, dict) or "exceptionDetails" in result:
            return None
        return (result.get("result") or {}).get("value")

    url = path if isinstance(path, str) else path.resolve().as_uri()
    await call("Emulation.setDeviceMetricsOverride", width=1400, height=1800,
               deviceScaleFactor=1, mobile=False)  # fmt: skip
    await call("Page.navigate", url=url)
    while not loaded:
        await pump()
    while until is not None and not await evaluate(until):
        with trio.move_on_after(0.2):
            while True:
                await pump()
    with trio.move_on_after(0.5):  # late errors, if any
        while True:
            await pump()
    for name, expr in expressions.items():
        out.values[name] = await evaluate(expr)
    if then is not None:
        await then(evaluate)
    if screenshot is not None:
        shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        screenshot.write_bytes(base64.b64decode(shot["result"]["data"]))  # type: ignore[index]
