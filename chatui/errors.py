"""The one exception services raise for a request the user can fix; views and consumers turn
it into `{"error": message}` with `status` (HTTP) or an `error` websocket event."""

from __future__ import annotations


class ChatError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
