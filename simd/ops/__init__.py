"""Operating runs: the capacity search, Kubernetes rendering for shards, the daemon's API and
its web page, `simd serve` (the dashboard of finished runs) and its feed.

May import: everything below the CLI (simd.runtime, simd.results, simd.report, simd.plan,
simd.model, simd.transports).
"""
