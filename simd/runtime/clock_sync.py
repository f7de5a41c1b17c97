"""How far this host's wall clock may be from true time, as the kernel's NTP discipline knows it.

Shards share t=0 by their own wall clocks, so the skew between two shards is bounded by the sum
of their clocks' errors. `adjtimex(2)` with modes 0 only reads (no privilege needed): it gives the
synchronisation state and the kernel's estimated and maximum error. Linux only; elsewhere None.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import time
from typing import Any

TIME_ERROR = 5  # adjtimex's return when the clock is not synchronised
STA_UNSYNC = 0x0040


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h> (natural alignment; the tail is reserved space)
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("reserved", ctypes.c_int * 16),
    ]


def clock_sync() -> dict[str, Any] | None:
    """{synced, est_error_us, max_error_us} from adjtimex, or None where it is not available."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return {
        "synced": state != TIME_ERROR and not tx.status & STA_UNSYNC,
        "est_error_us": int(tx.esterror),
        "max_error_us": int(tx.maxerror),
    }


def clock_at(epoch_ns: int) -> dict[str, int]:
    """Wait until this host's wall clock reaches `epoch_ns`; then read the wall clock and the
    monotonic clock together. The pair ties the run's t=0 to this host's monotonic time (for
    lining shards up afterwards against an outside reference); `late_ns` is how far past the
    epoch the reading fell (the wake-up latency)."""
    while (left := epoch_ns - time.time_ns()) > 0:
        time.sleep(left / 1e9)
    wall, mono = time.time_ns(), time.monotonic_ns()
    return {"wall_ns": wall, "monotonic_ns": mono, "late_ns": wall - epoch_ns}
