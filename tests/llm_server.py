"""A loopback HTTP server speaking the OpenAI chat-completions protocol: a test double for a remote LLM.

It answers through a `responder(messages) -> str` and can inject faults per request: 429 with
Retry-After, 500, slow answers, dropped connections, malformed JSON, truncated content.
Run it in a thread (`LoopbackLLM().start()`) or as a process (`python -m tests.llm_server`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

Responder = Callable[[list[dict[str, str]]], str]


def echo_responder(messages: list[dict[str, str]]) -> str:
    return "ok"


class LoopbackLLM:
    """An asyncio HTTP/1.1 server with keep-alive on 127.0.0.1 and an ephemeral port."""

    def __init__(self, responder: Responder = echo_responder, *, delay_s: float = 0.0, port: int = 0,
                 canned: bool = False) -> None:
        self.responder = responder
        self.canned = canned  # benchmarks: answer "ok" without parsing or recording, to stay cheap
        self.delay_s = delay_s
        self.port = port
        self.faults: deque[str] = deque()  # consumed one per chat request
        self.requests: list[dict[str, Any]] = []  # every chat request body received
        self.answered = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def add_faults(self, *faults: str) -> None:
        with self._lock:
            self.faults.extend(faults)

    def _next_fault(self) -> str:
        with self._lock:
            return self.faults.popleft() if self.faults else ""

    async def _serve(self, ready: threading.Event | None = None) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]
        if ready is not None:
            ready.set()
        async with self._server:
            await self._server.serve_forever()

    def start(self) -> LoopbackLLM:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._serve(ready))
            except asyncio.CancelledError:
                pass
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            loop, server = self._loop, self._server

            def close() -> None:
                server.close()
                for task in asyncio.all_tasks(loop):
                    task.cancel()

            loop.call_soon_threadsafe(close)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> LoopbackLLM:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _version = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if not await self._respond(method, path, body, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def _respond(self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        if method == "GET" and path.endswith("/models"):
            self._write(writer, 200, json.dumps({"object": "list", "data": [{"id": "loopback"}]}).encode())
            await writer.drain()
            return True
        if method != "POST" or not path.endswith("/chat/completions"):
            self._write(writer, 404, b'{"error": {"message": "not found"}}')
            await writer.drain()
            return True
        if self.canned:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            writer.write(_CANNED)
            return True
        payload = json.loads(body)
        with self._lock:
            self.requests.append(payload)
        fault = self._next_fault()
        if fault == "drop":
            return False
        if fault.startswith("429"):
            retry_after = fault.partition(":")[2] or "0.05"
            self._write(writer, 429, b'{"error": {"message": "rate limited"}}', {"Retry-After": retry_after})
            await writer.drain()
            return True
        if fault == "500":
            self._write(writer, 500, b'{"error": {"message": "internal"}}')
            await writer.drain()
            return True
        if fault == "401":
            self._write(writer, 401, b'{"error": {"message": "invalid api key"}}')
            await writer.drain()
            return True
        if fault.startswith("slow"):
            await asyncio.sleep(float(fault.partition(":")[2] or "5"))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if fault == "badjson":
            self._write(writer, 200, b'{"choices": [{"message": {"content": "unterminated')
            await writer.drain()
            return True
        text = self.responder(payload["messages"])
        if fault == "chunked":
            data = json.dumps(self._completion(payload, text, "stop")).encode()
            pieces = [data[i:i + 50] for i in range(0, len(data), 50)]
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in pieces:
                writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        if fault == "close":
            data = json.dumps(self._completion(payload, text, "stop")).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + data)
            await writer.drain()
            return False
        finish = "stop"
        if fault == "truncate":
            text, finish = text[: max(1, len(text) // 2)], "length"
        self._write(writer, 200, json.dumps(self._completion(payload, text, finish)).encode())
        await writer.drain()
        with self._lock:
            self.answered += 1
        return True

    @staticmethod
    def _completion(payload: dict[str, Any], text: str, finish: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-loopback", "object": "chat.completion", "model": payload.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": sum(len(m["content"]) for m in payload["messages"]) // 4,
                "completion_tokens": max(1, len(text) // 4),
                "total_tokens": 0,
            },
        }

    @staticmethod
    def _write(writer: asyncio.StreamWriter, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
                  401: "Unauthorized"}.get(status, "X")
        head = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


_CANNED_BODY = json.dumps({
    "id": "chatcmpl-loopback", "object": "chat.completion", "model": "bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
}).encode()
_CANNED = (
    f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(_CANNED_BODY)}\r\n\r\n"
).encode() + _CANNED_BODY


def main() -> None:
    parser = argparse.ArgumentParser(description="Loopback OpenAI-compatible server for tests and benchmarks.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--script", default="echo", help="echo, canned (fastest, for benchmarks) or synth (realistic synthesis answers)")
    args = parser.parse_args()
    responder: Responder = echo_responder
    if args.script == "synth":
        from tests.synth_answers import synth_responder

        responder = synth_responder
    server = LoopbackLLM(responder, delay_s=args.delay, port=args.port, canned=args.script == "canned")

    async def run() -> None:
        ready = threading.Event()
        task = asyncio.ensure_future(server._serve(ready))
        while not ready.is_set():
            await asyncio.sleep(0.01)
        print(f"PORT {server.port}", flush=True)
        await task

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
