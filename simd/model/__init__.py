"""What a user writes and what a run records: the scenario models (pydantic) with their precise
errors, durations, MQTT topic rules, secrets and their redaction, and run.json.

May import: the ground floor (simd.errors, simd.clock) and pydantic; plan.replay lazily, to
expand a scenario's replay groups when a file is loaded (to become a resolved plan input).
"""
