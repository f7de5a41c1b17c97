"""MQTT over WebSocket (ws://, wss://): a trio Stream over trio-websocket binary messages.

MQTT-6.0.0: packets ride in binary WebSocket frames, subprotocol "mqtt"; a frame may carry part
of a packet or several, so the session's decoder sees a plain byte stream either way.
"""

from __future__ import annotations

import ssl

import trio
import trio_websocket


class WebSocketStream(trio.abc.Stream):
    """Adapts a trio-websocket connection to trio's byte Stream interface."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self.ws.send_message(bytes(data))
        except trio_websocket.ConnectionClosed as exc:
            raise trio.BrokenResourceError(f"websocket closed: {exc.reason}") from exc

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        try:
            msg = await self.ws.get_message()
        except trio_websocket.ConnectionClosed:
            return b""
        return msg if isinstance(msg, bytes) else msg.encode()

    async def aclose(self) -> None:
        await self.ws.aclose()


async def open_websocket(
    nursery: trio.Nursery, url: str, ssl_context: ssl.SSLContext | None
) -> WebSocketStream:
    try:
        ws = await trio_websocket.connect_websocket_url(
            nursery,
            url,
            ssl_context=ssl_context,
            subprotocols=["mqtt"],
            max_message_size=1 << 24,
        )
    except trio_websocket.HandshakeError as exc:
        raise OSError(f"websocket handshake failed: {exc}") from exc
    return WebSocketStream(ws)
