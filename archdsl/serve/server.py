"""The HTTP server under `archdsl serve`: uvicorn on its h11 protocol, with a bound on
how long a request's line and headers may take (uvicorn has none: its keep-alive timeout
starts only after a response and stops at the next byte, so a client sending one byte a
second would hold its connection forever)."""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT = 10.0  # seconds from connecting (or from the last response) to the headers
_WHY = b"the request's headers came too slowly\n"
_TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\nconnection: "
              b"close\r\ncontent-length: %d\r\n\r\n%s" % (len(_WHY), _WHY))


class HeaderTimeout(H11Protocol):
    """uvicorn's h11 protocol, answering 408 and closing a connection whose next request
    line and headers have not all arrived ``header_timeout`` seconds after it opened or
    after its previous response. A body, once the headers are in, is the app's to bound
    (``_body``'s 1 MiB cap)."""

    header_timeout = HEADER_TIMEOUT
    _deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(_TIMED_OUT)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the headers are in (or it's closing)
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request's cycle
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def make_server(app: Any, host: str, port: int,
                header_timeout: float = HEADER_TIMEOUT) -> uvicorn.Server:
    """The uvicorn server `archdsl serve` runs ``app`` on; set ``app.state.stopping`` (see
    ``create_app``) to its ``should_exit``."""
    protocol = type("HeaderTimeout", (HeaderTimeout,), {"header_timeout": header_timeout})
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, http=protocol,
                                           log_level="warning", timeout_graceful_shutdown=3))
    app.state.stopping = lambda: server.should_exit
    return server
