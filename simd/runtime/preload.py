"""Worker processes forked from a server that has their code imported already.

A spawned worker imports numpy, trio, pydantic and the scenario model before it can say Ready:
0.6-0.9 s of CPU. `preload_workers()`, called first thing by the commands that run a fleet,
starts multiprocessing's fork server, which does those imports while the command does its own
(reads the scenario, starts the embedded broker); each worker is then a fork of it, ready in
milliseconds. The server is started before anything else runs, so it holds no threads and
no secrets the command reads later; it takes the environment and working directory of that
moment, which a command does not change. Without it (a library caller, a platform with no
fork server) workers are spawned.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.context import BaseContext

WORKER_MODULE = "simd.runtime.worker"

_forkserver: BaseContext | None = None


def preload_workers() -> None:
    """Start the fork server now, importing the worker's code in the background."""
    global _forkserver
    if _forkserver is not None or "forkserver" not in mp.get_all_start_methods():
        return
    from multiprocessing import forkserver

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([WORKER_MODULE])
    forkserver.ensure_running()
    _forkserver = ctx


def worker_context() -> BaseContext:
    """Where worker processes come from: the fork server if started, else spawn."""
    return _forkserver if _forkserver is not None else mp.get_context("spawn")
