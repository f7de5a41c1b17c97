"""Reading results back to people: the terminal report and check, the HTML page and its
charts, and comparing two runs.

May import: simd.results, simd.model, the ground floor.
"""
