"""A fake TGI that also answers the tool round on `/v1/chat/completions` (chatui.tool_round):
with the calls in ``tool_calls`` (none: a plain text answer), as the real server shapes them.
The streamed answer that follows comes from the usual scripted `/generate_stream`."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.chatui.fake_endpoints import FakeTGI


def tool_call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


class FakeToolTGI(FakeTGI):
    """FakeTGI plus a non-streamed chat route that calls ``tool_calls``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tool_calls: list[dict[str, Any]] = []

    @property
    def chat_requests(self) -> list[Any]:
        return [r.body for r in self.requests if r.path == "/v1/chat/completions"]

    def _routes(self) -> list[Route]:
        return [*super()._routes(), Route("/v1/chat/completions", self._chat, methods=["POST"])]

    async def _chat(self, request: Request) -> Response:
        await self._record(request)
        if self.tool_calls:
            message: dict[str, Any] = {"role": "assistant", "tool_calls": self.tool_calls}
            finish = "tool_calls"
        else:
            message, finish = {"role": "assistant", "content": "No tool needed."}, "stop"
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": self.model_id,
                "system_fingerprint": "fake",
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )
