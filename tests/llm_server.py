"""A loopback HTTP server speaking the OpenAI chat-completions protocol: a test double for a remote LLM.

It answers through a `responder(messages)` returning the content, or a dict with `content`,
`reasoning_content`, `reasoning` and `finish_reason`, and can inject faults per request: 429 with
Retry-After, 500, slow answers, dropped connections, malformed JSON, truncated content, and the
framings real servers send (`103` interim answers, gzip, server-sent events, error objects in a 200,
an HTML page, huge chunk extensions, bad chunk sizes, HTTP/2 frames).
Run it in a thread (`LoopbackLLM().start()`) or as a process (`python -m tests.llm_server`).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

Responder = Callable[[list[dict[str, str]]], "str | dict[str, str]"]


def echo_responder(messages: list[dict[str, str]]) -> str:
    return "ok"


class LoopbackLLM:
    """An asyncio HTTP/1.1 server with keep-alive on 127.0.0.1 and an ephemeral port."""

    def __init__(self, responder: Responder = echo_responder, *, delay_s: float = 0.0, port: int = 0,
                 canned: bool = False, host: str = "127.0.0.1") -> None:
        self.host = host
        self.responder = responder
        self.canned = canned  # benchmarks: answer "ok" without parsing or recording, to stay cheap
        self.delay_s = delay_s
        self.port = port
        self.faults: deque[str] = deque()  # consumed one per chat request
        self.requests: list[dict[str, Any]] = []  # every chat request body received
        self.heads: list[dict[str, str]] = []  # request line ("target") and headers of every chat request
        self.answered = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def add_faults(self, *faults: str) -> None:
        with self._lock:
            self.faults.extend(faults)

    def _next_fault(self) -> str:
        with self._lock:
            return self.faults.popleft() if self.faults else ""

    async def _serve(self, ready: threading.Event | None = None) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, backlog=2048)
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
                if method == "POST" and not self.canned:
                    with self._lock:
                        self.heads.append({**headers, "target": path})
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
        if method != "POST" or not path.split("?")[0].endswith("/chat/completions"):
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
        if fault.isdigit() and int(fault) >= 200:  # any status, with an OpenAI-style error object
            messages = {401: "invalid api key", 404: "not found", 500: "internal", 400: "bad request"}
            error = {"error": {"message": messages.get(int(fault), f"status {fault}"), "type": "error", "code": None}}
            self._write(writer, int(fault), json.dumps(error).encode())
            await writer.drain()
            return True
        if fault == "redirect":
            self._write(writer, 307, b"", {"Location": "http://127.0.0.1:9/elsewhere"})
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
        if fault.startswith("error200"):  # vLLM's answer for an unknown model, with status 200
            code = int(fault.partition(":")[2] or "404")
            message = f"The model `{payload.get('model')}` does not exist." if code == 404 else f"error {code}"
            self._write(writer, 200, json.dumps({"object": "error", "message": message, "type": "NotFoundError",
                                                 "param": None, "code": code}).encode())
            await writer.drain()
            return True
        if fault == "html":
            self._write(writer, 200, b"<!doctype html><html><title>Sign in</title></html>", {"Content-Type": "text/html"})
            await writer.drain()
            return True
        if fault == "h2":  # an HTTP/2-only server: a SETTINGS frame, then silence
            writer.write(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            await writer.drain()
            await asyncio.sleep(30)
            return False
        if fault == "reset":  # the answer starts, then the connection is reset
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"choi")
            await writer.drain()
            writer.transport.abort()
            return False
        if fault == "badchunk":  # a chunk-size line of 70,000 hex digits
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 70_000 + b"\r\n")
            await writer.drain()
            return False
        answer = self.responder(payload["messages"])
        message = {"content": answer} if isinstance(answer, str) else dict(answer)
        text = message.get("content") or ""
        if fault in ("103", "gzip", "sse", "chunkext"):
            data = json.dumps(self._completion(payload, message, message.get("finish_reason", "stop"))).encode()
            writer.write(self._framed(fault, data, payload, message))
            await writer.drain()
            with self._lock:
                self.answered += 1
            return True
        if fault == "chunked":
            data = json.dumps(self._completion(payload, message, "stop")).encode()
            pieces = [data[i:i + 50] for i in range(0, len(data), 50)]
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in pieces:
                writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        if fault == "close":
            data = json.dumps(self._completion(payload, message, "stop")).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + data)
            await writer.drain()
            return False
        finish = message.get("finish_reason", "stop")
        if fault == "truncate":
            message["content"], finish = text[: max(1, len(text) // 2)], "length"
        self._write(writer, 200, json.dumps(self._completion(payload, message, finish)).encode())
        await writer.drain()
        with self._lock:
            self.answered += 1
        return True

    @staticmethod
    def _completion(payload: dict[str, Any], message: dict[str, str], finish: str) -> dict[str, Any]:
        text = message.get("content") or ""
        said = {key: value for key, value in message.items() if key != "finish_reason"}
        return {
            "id": "chatcmpl-loopback", "object": "chat.completion", "model": payload.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", **said}, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": sum(len(m["content"]) for m in payload["messages"]) // 4,
                "completion_tokens": max(1, (len(text) + len(message.get("reasoning_content") or "")) // 4),
                "total_tokens": 0,
            },
        }

    def _framed(self, fault: str, data: bytes, payload: dict[str, Any], message: dict[str, str]) -> bytes:
        if fault == "103":
            return b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" + self._raw(200, data)
        if fault == "gzip":
            return self._raw(200, gzip.compress(data), {"Content-Encoding": "gzip"})
        if fault == "chunkext":  # legal HTTP: a chunk extension of 100,000 bytes
            chunk = f"{len(data):x};note=".encode() + b"x" * 100_000 + b"\r\n" + data + b"\r\n0\r\n\r\n"
            return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + chunk)
        # Server-sent events although the request said stream=false: role, content in pieces, usage, [DONE].
        completion = json.loads(data)
        text = message.get("content") or ""
        chunks: list[dict[str, Any]] = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
        if message.get("reasoning_content"):
            chunks.append({"choices": [{"index": 0, "delta": {"reasoning_content": message["reasoning_content"]}}]})
        chunks += [{"choices": [{"index": 0, "delta": {"content": text[i:i + 7]}}]} for i in range(0, len(text), 7)]
        finish = completion["choices"][0]["finish_reason"]
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        chunks.append({"choices": [], "usage": completion["usage"]})
        events = ": keep-alive\r\n\r\n" + "".join(f"data: {json.dumps(c)}\r\n\r\n" for c in chunks) + "data: [DONE]\r\n\r\n"
        return self._raw(200, events.encode(), {"Content-Type": "text/event-stream"})

    @staticmethod
    def _raw(status: int, body: bytes, extra: dict[str, str] | None = None) -> bytes:
        head = [f"HTTP/1.1 {status} OK", f"Content-Length: {len(body)}"]
        if "Content-Type" not in (extra or {}):
            head.append("Content-Type: application/json")
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body

    @staticmethod
    def _write(writer: asyncio.StreamWriter, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
                  401: "Unauthorized", 307: "Temporary Redirect"}.get(status, "X")
        head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
        if "Content-Type" not in (extra or {}):
            head.append("Content-Type: application/json")
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
