"""MQTT 3.1.1 and 5.0: a sans-IO codec and client session under a thin trio shell.

codec (packets and bytes) and session (one client's protocol state) do no I/O and read no
clock; encoder builds a batch's PUBLISH bytes; connection is the trio loop that moves a
session's bytes; transport, publishing, clients, probes and commands are the transport on top;
recorder is `simd record`. May import: simd.model, simd.plan, simd.log, simd.transports._base
and _net.
"""
