"""Operating runs: the capacity search, Kubernetes rendering for shards, the daemon's API.

May import: everything below the CLI (simd.runtime, simd.results, simd.report, simd.plan,
simd.model, simd.transports).
"""
