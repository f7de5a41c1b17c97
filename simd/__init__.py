"""simd: simulate fleets of IoT devices against real message systems and keep every event."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("simd")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
