"""The `simd` command line (typer): parse, call the library, render, map errors to exits.

May import: any package; nothing imports it. `simd.cli.main` is the console script's entry.
"""

from simd.cli.app import app, main

__all__ = ["app", "main"]
