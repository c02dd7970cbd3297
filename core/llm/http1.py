"""A lean HTTP/1.1 keep-alive connection pool on asyncio streams, parsed with h11.

httpx spends about a millisecond of CPU per request and its pool slows down sharply with hundreds of
connections; a synthesis run at concurrency 256 against a local vLLM needs far less. This pool
serves plain `http://` servers (and `https://` through the standard ssl module); the OpenAI client
uses httpx for anything else (proxies).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11


class ConnectionDropped(Exception):
    """The connection broke before a full response arrived."""


@dataclass(frozen=True, slots=True)
class Http1Response:
    """Status, lower-cased headers and the whole body."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.state = h11.Connection(our_role=h11.CLIENT)
        self.idle_since = 0.0

    def close(self) -> None:
        self.writer.close()


# Servers close idle keep-alive connections (uvicorn after 5 s); reusing one that old risks a drop.
MAX_IDLE_S = 4.0


class Http1Pool:
    """Up to `max_connections` keep-alive connections to one origin."""

    def __init__(self, base_url: str, *, max_connections: int, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.path_prefix = parts.path.rstrip("/")
        host_header = self.host if parts.port is None else f"{self.host}:{self.port}"
        self._headers = [("host", host_header), *((k.lower(), v) for k, v in headers.items())]
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(max_connections)
        self._ssl = ssl.create_default_context() if self.tls else None

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self._ssl, limit=2**20)
        return _Connection(reader, writer)

    async def post(self, path: str, body: bytes) -> Http1Response:
        """POST `body` to `path` (relative to the base URL); raise ConnectionDropped or OSError."""
        async with self._slots:
            connection = self._reusable() or await self._connect()
            try:
                response = await self._exchange(connection, path, body)
            except BaseException:
                connection.close()
                raise
            if connection.state.our_state is h11.DONE and connection.state.their_state is h11.DONE:
                connection.state.start_next_cycle()
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()
            return response

    def _reusable(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.idle_since < MAX_IDLE_S and not connection.reader.at_eof():
                return connection
            connection.close()
        return None

    async def _exchange(self, connection: _Connection, path: str, body: bytes) -> Http1Response:
        state = connection.state
        headers = [*self._headers, ("content-length", str(len(body)))]
        data = state.send(h11.Request(method="POST", target=self.path_prefix + path, headers=headers))
        data += state.send(h11.Data(data=body)) + state.send(h11.EndOfMessage())
        connection.writer.write(data)
        status, response_headers, chunks = 0, {}, []
        while True:
            try:
                event = state.next_event()
            except h11.RemoteProtocolError as exc:
                raise ConnectionDropped(f"bad HTTP from the server: {exc}") from None
            if event is h11.NEED_DATA:
                received = await connection.reader.read(65536)
                if not received and state.their_state is h11.SEND_RESPONSE and not status:
                    raise ConnectionDropped("the server closed the connection without answering")
                try:
                    state.receive_data(received)
                except h11.RemoteProtocolError as exc:
                    raise ConnectionDropped(f"bad HTTP from the server: {exc}") from None
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                response_headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return Http1Response(status, response_headers, b"".join(chunks))
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionDropped("the server closed the connection mid-answer")

    async def aclose(self) -> None:
        """Close idle connections."""
        while self._idle:
            self._idle.pop().close()
