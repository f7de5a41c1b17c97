"""Resource samples of the running process: resident memory, CPU time, open file descriptors.

Workers log one sample every `[run] resource_samples` of run time (simd.runtime.worker), so
endurance analysis can tell the generator's own growth from the target's (analysis/views.sql
`resource_growth`). Linux /proc first; elsewhere what the stdlib offers.
"""

from __future__ import annotations

import os
import resource

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Current resident set size (not the peak)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # not Linux: the peak is the best the stdlib knows
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_ns() -> int:
    """User plus system CPU time of this process so far."""
    t = os.times()
    return int((t.user + t.system) * 1e9)


def open_fds() -> int:
    """Open file descriptors (sockets included); -1 where it cannot be told."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # minus the one listdir itself holds
    except OSError:
        return -1


def sample() -> tuple[int, int, int]:
    """(rss_bytes, cpu_ns, open_fds) now."""
    return rss_bytes(), cpu_ns(), open_fds()
