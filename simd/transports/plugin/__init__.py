"""Transports anyone can write: a per-device client class that simd adapts onto its batch
contract (docs/plugins.md).

A user's class is named in the target, `plugin:package.module:Class?key=value`, or registered
under a scheme of its own as an entry point in group `simd.transports`. simd constructs one
instance per device with the `Target` and the `Device`, then awaits `connect()`, one
`publish(Message)` per scheduled publish (its return is the publish's completion, its
exception the failure) and `close()`. Everything else — the schedule, windows, timeouts, rows,
restarts, resume, reports — is simd's.

May import: what simd.transports may (this is one of them).
"""

from __future__ import annotations

from simd.transports.plugin.api import Client, ConnectionLost, Device, Message, Target

__all__ = ["Client", "ConnectionLost", "Device", "Message", "Target"]
