"""A fast fake TGI server for `bench.chat`: `python -m bench.chat_endpoint --port P`.

Every streamed answer is `--tokens` tokens, one every `--delay-ms`; each token's text is its
send time, `[<time.monotonic_ns()>]`, taken just before it is written to the socket, so a client
on the same machine (the same monotonic clock) can tell how long the app held it. One timer
ticks for all streams (a timer per stream would cost more CPU than the app under test), and the
HTTP/1.1 is written by hand (keep-alive, chunked SSE) for the same reason.

Speaks only what the chat app asks for: `GET /info` and a streaming `POST /` or
`/generate_stream`. Must not import Django or `chatui`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

INFO = json.dumps({"model_id": "bench/fake-tgi", "max_input_tokens": 4095}).encode()
STAMP = "[{ns}]"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(index: int, text: str, *, special: bool = False, final: str | None = None) -> bytes:
    event = {
        "index": index,
        "token": {"id": 2 if special else 100 + index, "text": text, "logprob": 0.0},
        "generated_text": final,
        "details": None,
    }
    event["token"]["special"] = special
    if final is not None:
        event["details"] = {"finish_reason": "eos_token", "generated_tokens": index + 1}
    return _chunk(b"data:" + json.dumps(event, separators=(",", ":")).encode() + b"\n\n")


@dataclass
class _Stream:
    writer: asyncio.StreamWriter
    done: asyncio.Future[None]
    texts: list[str] = field(default_factory=list)


class FakeTGI:
    """Streams of `num_tokens` stamped tokens, advanced together every `delay_s`."""

    def __init__(self, num_tokens: int, delay_s: float) -> None:
        self.num_tokens = num_tokens
        self.delay_s = delay_s
        self.streams: list[_Stream] = []
        self.ticker: asyncio.Task[None] | None = None

    async def serve(self, port: int) -> None:
        server = await asyncio.start_server(self.connection, "127.0.0.1", port, backlog=4096)
        self.ticker = asyncio.create_task(self.tick())
        async with server:
            await server.serve_forever()

    async def tick(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at = max(next_at + self.delay_s, loop.time())  # late: no burst to catch up
            await asyncio.sleep(next_at - loop.time())
            if not self.streams:
                continue
            for stream in list(self.streams):
                self.advance(stream)

    def advance(self, stream: _Stream) -> None:
        index = len(stream.texts)
        try:
            if index < self.num_tokens:
                text = STAMP.format(ns=time.monotonic_ns())
                stream.texts.append(text)
                stream.writer.write(_event(index, text))
                return
            final = "".join(stream.texts)
            stream.writer.write(
                _event(index, "<|im_end|>", special=True, final=final) + b"0\r\n\r\n"
            )
        except (ConnectionError, RuntimeError):
            pass
        self.streams.remove(stream)
        if not stream.done.done():
            stream.done.set_result(None)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = dict(line.split(":", 1) for line in lines if ":" in line)
                length = int(
                    next((v for k, v in headers.items() if k.lower() == "content-length"), 0)
                )
                if length:
                    await reader.readexactly(length)
                if method == "GET":
                    status = b"200 OK" if path == "/info" else b"404 Not Found"
                    body = INFO if path == "/info" else b"{}"
                    writer.write(
                        b"HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (status, len(body), body)
                    )
                    continue
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                )
                stream = _Stream(writer, asyncio.get_running_loop().create_future())
                self.streams.append(stream)
                await stream.done
        writer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chat_endpoint", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--delay-ms", type=float, default=5.0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(FakeTGI(args.tokens, args.delay_ms / 1000).serve(args.port))


if __name__ == "__main__":
    main()
