"""What a user writes and what a run records: the scenario models (pydantic) with their precise
errors, durations, MQTT topic rules, secrets and their redaction, and run.json.

May import: the ground floor (simd.errors, simd.clock) and pydantic, nothing above: replay groups
are resolved against their recordings by simd.plan.inputs, which fills in what the model
then answers from (ReplaySource.messages, mean_rate).
"""
