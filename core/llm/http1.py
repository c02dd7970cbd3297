"""A lean HTTP/1.1 keep-alive connection pool on asyncio streams, for OpenAI-compatible servers.

httpx spends about a millisecond of CPU per request and its pool slows down sharply with hundreds of
connections; a synthesis run at concurrency 256 against a local vLLM needs far less. This pool
speaks just what chat completions need: POST with a body, responses with Content-Length, chunked
transfer encoding, or a body that ends with the connection. The OpenAI client uses httpx instead
when the environment routes the URL through a proxy.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

# Servers close idle keep-alive connections (uvicorn after 5 s); reusing one that old risks a drop.
MAX_IDLE_S = 4.0
MAX_HEADER_BYTES = 64 * 1024


class ConnectionDropped(Exception):
    """The connection broke, or the server answered with something that is not HTTP/1.x."""


@dataclass(frozen=True, slots=True)
class Http1Response:
    """Status, lower-cased headers and the whole body."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Connection:
    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def close(self) -> None:
        self.writer.close()


def _header_value(name: str, value: str) -> str:
    if any(ch in value for ch in "\r\n\x00") or any(ch in name for ch in "\r\n\x00:"):
        raise ValueError(f"header {name!r} holds a line break or NUL")
    return f"{name}: {value}\r\n"


class Http1Pool:
    """Up to `max_connections` keep-alive connections to one origin."""

    def __init__(self, base_url: str, *, max_connections: int, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.path_prefix = parts.path.rstrip("/")
        host_header = self.host if parts.port is None else f"{self.host}:{self.port}"
        self._fixed_headers = _header_value("Host", host_header) + "".join(
            _header_value(name, value) for name, value in headers.items()
        )
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(max_connections)
        self._ssl = ssl.create_default_context() if self.tls else None

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self._ssl, limit=MAX_HEADER_BYTES)
        return _Connection(reader, writer)

    def _reusable(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.idle_since < MAX_IDLE_S and not connection.reader.at_eof():
                return connection
            connection.close()
        return None

    async def post(self, path: str, body: bytes) -> Http1Response:
        """POST `body` to `path` (relative to the base URL); raise ConnectionDropped or OSError."""
        async with self._slots:
            connection = self._reusable() or await self._connect()
            try:
                head = (
                    f"POST {self.path_prefix}{path} HTTP/1.1\r\n{self._fixed_headers}"
                    f"Content-Length: {len(body)}\r\n\r\n"
                )
                connection.writer.write(head.encode("latin-1") + body)
                response, keep_alive = await _read_response(connection.reader)
            except BaseException:
                connection.close()
                raise
            if keep_alive:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()
            return response

    async def aclose(self) -> None:
        """Close idle connections."""
        while self._idle:
            self._idle.pop().close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[Http1Response, bool]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        what = "without answering" if not exc.partial else "in the middle of the headers"
        raise ConnectionDropped(f"the server closed the connection {what}") from None
    except asyncio.LimitOverrunError:
        raise ConnectionDropped("response headers are too long") from None
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1.") or not status_line[1].isdigit():
        raise ConnectionDropped(f"not an HTTP/1.x answer: {lines[0][:60]!r}")
    status = int(status_line[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    keep_alive = status_line[0] == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body, keep_alive = await reader.read(), False
    except asyncio.IncompleteReadError:
        raise ConnectionDropped("the server closed the connection mid-answer") from None
    except ValueError:
        raise ConnectionDropped("bad Content-Length or chunk size from the server") from None
    return Http1Response(status, headers, body), keep_alive


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
