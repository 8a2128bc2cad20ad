"""A deadline for a request's head, below the ASGI app (which only sees a request once its head
is whole). uvicorn times out idle keep-alive connections but not a head that trickles in; this
protocol answers 408 and closes the connection when a head is not whole within `timeout_s` of
the connection opening or of the head's first byte. The body's deadline is BodyLimit's
(handler/http/guards.py), in front of every route.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol


def head_timeout_response(timeout_s: float) -> bytes:
    """The raw 408 answer, in the seed's failure shape (no route is known yet)."""
    message = f"the request head did not arrive within {timeout_s:g} seconds"
    body = json.dumps(
        {
            "success": False,
            "error_code": "invalid_input",
            "error": f"invalid_input: {message} (field: head)",
            "field": "head",
        }
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def with_head_deadline(timeout_s: float, base: type[asyncio.Protocol] = AutoHTTPProtocol) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools or h11, as uvicorn picks) with the head deadline."""
    answer = head_timeout_response(timeout_s)

    class HeadDeadline(base):  # type: ignore[valid-type,misc]
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._waiting_for_head():
                self._arm()  # the next request's first bytes: its head has timeout_s from here
            super().data_received(data)
            if not self._waiting_for_head():
                self._disarm()  # the head is whole: the body is BodyLimit's, the reply the route's

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _waiting_for_head(self) -> bool:
            cycle = self.cycle
            return cycle is None or bool(cycle.response_complete)

        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(timeout_s, self._timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or not self._waiting_for_head():
                return
            self.transport.write(answer)
            self.transport.close()

    return HeadDeadline
