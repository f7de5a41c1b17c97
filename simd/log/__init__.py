"""The result on disk: event rows (columns, codes), framing with damage detection, event log
segments and their writer, recordings and captures, ragged byte columns.

May import: the ground floor (msgpack, numpy) and simd.model (its secrets: a recording keeps
where it came from without credentials); never a plan, transport or runtime module.
"""
