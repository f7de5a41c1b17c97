"""Pure functions from (scenario, seed, device) to a schedule and its exact counts: rate shapes,
arrival processes, hashing, payload generators, shard slices, and replay plans (a recording
expanded once into plan input).

May import: simd.model, simd.log (replay reads its recording, once), the ground floor.
"""
