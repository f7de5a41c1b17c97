"""From logs to DuckDB: ingest (incremental, idempotent), merging shards, histograms, per-window
series tallies, replay fidelity tallies; and opening results.duckdb for queries.

May import: simd.model, simd.plan, simd.log, the ground floor; never simd.runtime or a transport.
"""
