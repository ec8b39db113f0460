"""Hostile clients on real sockets, against the web process as production runs it (daphne on
uvloop via `config.serve`): websocket handshakes from foreign origins, frames over 1 MiB,
invalid UTF-8, binary frames, and HTTP bodies over the upload limit. A websocket client written
here byte by byte, because no library would send the broken frames."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from chatui.consumers import BINARY_FRAME
from chatui.validation import BODY_TOO_LARGE, NUL_CHARACTER
from tests.e2e.server import LiveServer

OP_TEXT, OP_BINARY, OP_CLOSE = 0x1, 0x2, 0x8
MIB = 1024 * 1024
TIMEOUT_S = 15


@dataclass
class Visitor:
    """A visitor who owns one conversation: their session cookie and its id."""

    cookie: str
    conversation_id: str


@pytest.fixture
def visitor(app_server: LiveServer) -> Iterator[Visitor]:
    with httpx.Client(base_url=app_server.url) as client:
        client.get("/")
        token = client.cookies["csrftoken"]
        created = client.post("/api/conversations", json={}, headers={"X-CSRFToken": token})
        assert created.status_code == 201, created.text
        yield Visitor(client.cookies["sessionid"], created.json()["id"])


def frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame, masked as RFC 6455 requires."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    key = (mask * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
    return header + mask + masked


class RawSocket:
    """A websocket spoken byte by byte over a TCP socket."""

    def __init__(self, server: LiveServer, visitor: Visitor, origin: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws/conversations/{visitor.conversation_id}/ HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {origin}\r\nCookie: sessionid={visitor.cookie}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1]) if head else 0

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed without a close frame")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def receive(self) -> tuple[int, bytes]:
        """The next frame from the server: (opcode, payload)."""
        first, second = self._read(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read(8))
        return first & 0x0F, self._read(length)

    def receive_event(self) -> dict:
        opcode, payload = self.receive()
        assert opcode == OP_TEXT, (opcode, payload)
        return json.loads(payload)

    def close_code(self) -> int:
        """Reads frames up to the server's close frame; its status code."""
        while True:
            opcode, payload = self.receive()
            if opcode == OP_CLOSE:
                return struct.unpack("!H", payload[:2])[0]

    def send(self, opcode: int, payload: bytes) -> None:
        self.sock.sendall(frame(opcode, payload))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_socket(app_server: LiveServer, visitor: Visitor) -> Iterator[RawSocket]:
    sock = RawSocket(app_server, visitor, app_server.url)
    assert sock.status == 101
    assert sock.receive_event()["type"] == "snapshot"
    yield sock
    sock.close()


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:9999",  # the same host, another port
        "https://127.0.0.1:{port}",  # the same host and port, another scheme
        "http://localhost:{port}",  # an allowed host, but not this page's origin
        "http://evil.example",
        "null",
    ],
)
def test_a_foreign_origin_is_refused_at_the_handshake(app_server, visitor, origin):
    sock = RawSocket(app_server, visitor, origin.format(port=app_server.port))
    assert sock.status == 403
    sock.close()


def test_a_message_over_one_mebibyte_closes_with_1009(raw_socket):
    raw_socket.send(OP_TEXT, b'{"type": "send", "content": "' + b"x" * MIB + b'"}')
    assert raw_socket.close_code() == 1009


def test_invalid_utf8_closes_with_1007(raw_socket):
    raw_socket.send(OP_TEXT, b'{"type": "send", "content": "\xff\xfe"}')
    assert raw_socket.close_code() == 1007


def test_binary_frames_and_nul_get_error_events_and_the_socket_stays_open(raw_socket):
    raw_socket.send(OP_BINARY, b'{"type": "stop"}')
    assert raw_socket.receive_event() == {
        "type": "error",
        "message": BINARY_FRAME,
        "message_id": None,
    }
    raw_socket.send(OP_TEXT, b'{"type": "send", "content": "a\\u0000b", "parent_id": null}')
    assert raw_socket.receive_event()["message"] == NUL_CHARACTER
    raw_socket.send(OP_TEXT, b'{"type": {"nested": [1]}}')
    assert raw_socket.receive_event()["type"] == "error"


def test_a_body_over_the_upload_limit_gets_the_json_error(app_server, visitor):
    with httpx.Client(base_url=app_server.url, cookies={"sessionid": visitor.cookie}) as client:
        client.get("/")
        token = client.cookies["csrftoken"]
        body = json.dumps({"system_prompt": "x" * (3 * MIB)})
        response = client.patch(
            f"/api/conversations/{visitor.conversation_id}",
            content=body,
            headers={"X-CSRFToken": token, "Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert response.json() == {"error": BODY_TOO_LARGE}
        # Form-encoded: read by the CSRF middleware before any view.
        response = client.post("/api/conversations", data={"csrfmiddlewaretoken": "x" * 3 * MIB})
        assert (response.status_code, response.json()) == (413, {"error": BODY_TOO_LARGE})
