"""The `simd` command line (typer): parse, call the library, render, map errors to exits.

`app` holds the shared pieces (the typer app, the console, error handling, exit codes); each
other module holds one group of commands: `run` (run, plan, replay, capacity), `quick` (the
one-liners pub, sub, conn, http), `logs` (inspect, record, import, ingest), `results` (report,
check, compare, query), `daemon` (daemon, submit, status, stop), `tools` (broker, schema,
k8s). Importing this package
registers them all. `simd.cli.main` is the console script's entry.

May import: any package; nothing imports it.
"""

from simd.cli import daemon, logs, quick, results, run, tools
from simd.cli.app import app, main

__all__ = ["app", "daemon", "logs", "main", "quick", "results", "run", "tools"]

# `simd --help` lists commands in this order (typer keeps the order they were registered in)
HELP_ORDER = ["run", "pub", "sub", "conn", "http", "plan", "replay", "capacity", "inspect",
              "record", "import", "ingest", "report", "serve", "check", "compare", "query",
              "broker",
              "schema", "daemon", "login", "submit", "status", "stop"]  # fmt: skip
app.registered_commands.sort(key=lambda c: HELP_ORDER.index(c.name or c.callback.__name__))
