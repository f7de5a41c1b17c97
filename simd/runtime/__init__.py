"""Processes and time (the layout's `run/`, named `runtime` so that `simd.run`, the public
function, keeps its name): the supervisor and its workers, the messages between them, live stats
with /status, /metrics and the dashboard page, resuming from a log, the embedded broker,
resource samples.

May import: simd.model, simd.plan, simd.log, simd.transports, the ground floor.
"""
