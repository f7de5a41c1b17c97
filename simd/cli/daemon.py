"""The daemon and its clients: `daemon`, `submit`, `status`, `stop`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from simd.cli.app import app, guarded, out
from simd.cli.options import RUNS_DIR, format_option
from simd.errors import UserError


@app.command("daemon")
@guarded
def daemon_cmd(
    runs_dir: Annotated[Path, RUNS_DIR] = Path("runs"),
    host: Annotated[str, typer.Option(help="address to listen on (loopback by default)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="port (0: a free one)")] = 7878,
    allow_remote: Annotated[
        bool, typer.Option(help="allow a non-loopback --host (needs --tls-cert/--tls-key)")
    ] = False,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM)")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM)")] = None,
) -> None:
    """A long-lived supervisor with an HTTP control API: start runs, list, stop, status.
    Its token is written to SIMD_HOME/daemon.token (0600; SIMD_HOME defaults to ~/.simd)."""
    from simd.ops.daemon import serve

    def ready(url: str, token_file: Path, login_url: str) -> None:
        sys.stderr.write(
            f"simd: daemon on {url} (token in {token_file}); Ctrl-C stops it\n"
            f"simd: its page: {login_url} (a one-time login; `simd login` prints a new one)\n"
        )
        sys.stderr.flush()

    serve(runs_dir, host, port, allow_remote, tls_cert, tls_key, ready=ready)


@app.command("login")
@guarded
def login_cmd() -> None:
    """A new one-time login URL for the daemon's web page (its runs, a start form, stop
    buttons, each run's live dashboard)."""
    from simd.ops.daemon import Client

    print(Client().call("POST", "/login-url", {})["url"])


@app.command("submit")
@guarded
def submit_cmd(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
    run_id: Annotated[str | None, typer.Option(help="the run folder's name")] = None,
) -> None:
    """Start a run on the daemon; prints its id."""
    from simd.ops.daemon import Client

    body: dict[str, Any] = {"scenario": str(scenario.resolve())}
    if run_id:
        body["run_id"] = run_id
    r = Client().call("POST", "/runs", body)
    print(r["run_id"])


@app.command("status")
@guarded
def status_cmd(
    run: Annotated[
        str | None, typer.Argument(help="a run id (on the daemon) or a run folder")
    ] = None,
    format: Annotated[str, format_option("table | json")] = "table",
) -> None:
    """Runs on the daemon, or one run's status: live while it runs (also a run folder's,
    without a daemon), its final numbers from the log once it ended."""
    from simd.ops.daemon import Client, folder_status

    if run is not None and (Path(run) / "run.json").is_file():
        data = folder_status(Path(run))
        if data is None:
            raise UserError(f"{run}/run.json: not readable")
    elif run is None:
        data = Client().call("GET", "/runs")
    else:
        data = Client().call("GET", f"/runs/{run}")
    if format == "json":
        print(json.dumps(data))
        return
    rows = data.get("runs", [data])
    t = Table()
    for n in ("run", "state", "scenario", "sent", "completed", "errors", "elapsed", "status"):
        t.add_column(n)
    for r in rows:
        st = r.get("status") or {}
        t.add_row(
            r["run_id"],
            str(r["state"]),
            str(r.get("scenario") or "-"),
            f"{st['sent']:,}" if st else "-",
            f"{st['completed']:,}" if st and "completed" in st else "-",
            f"{st['errors']:,}" if st else "-",
            f"{st['elapsed_s']:.1f}s" if st else "-",
            str(r.get("status_url") or "-"),
        )
    out.print(t)


@app.command("stop")
@guarded
def stop_cmd(run: Annotated[str, typer.Argument(help="a run id on the daemon")]) -> None:
    """Stop a daemon's run: it drains, flushes and ends as stopped."""
    from simd.ops.daemon import Client

    r = Client().call("POST", f"/runs/{run}/stop")
    print(f"{r['run_id']}: {'stopping' if r['stopping'] else 'already ended'}")
