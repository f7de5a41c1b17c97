"""The installed version of simd (recorded in every run's manifest)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("simd")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
