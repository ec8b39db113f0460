"""A fake TGI whose `/v1/chat/completions` streams a scripted tool loop, as OpenAI-compatible
servers do: each request takes the next `Step` (calls to make, or text to write); a call's
`arguments` arrive in two pieces over two deltas, as real servers split them. With no step
left it answers `DEFAULT_TEXT`. The plain `/generate_stream` is FakeTGI's."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.chatui.fake_endpoints import FakeTGI
from tests.chatui.fake_endpoints.server import sse

DEFAULT_TEXT = ["Done", "."]


def tool_call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "name": name, "arguments": json.dumps(arguments)}


@dataclass
class Step:
    """One answer of the fake: `calls` to ask for (then `text` is written before them)."""

    text: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)


class FakeToolTGI(FakeTGI):
    """FakeTGI plus a streamed chat route that plays `steps`, one per request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.steps: deque[Step] = deque()

    def play(self, *steps: Step) -> None:
        self.steps.clear()
        self.steps.extend(steps)

    @property
    def chat_requests(self) -> list[Any]:
        return [r.body for r in self.requests if r.path == "/v1/chat/completions"]

    def _routes(self) -> list[Route]:
        return [*super()._routes(), Route("/v1/chat/completions", self._chat, methods=["POST"])]

    async def _chat(self, request: Request) -> Response:
        await self._record(request)
        step = self.steps.popleft() if self.steps else Step(text=list(DEFAULT_TEXT))
        script = self._next_script()
        return StreamingResponse(
            self._paced(request, script, self._chat_frames(step)), media_type="text/event-stream"
        )

    def _chat_frames(self, step: Step) -> Iterator[str]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return sse(
                {"object": "chat.completion.chunk", "model": self.model_id, "choices": [choice]}
            )

        yield chunk({"role": "assistant", "content": ""})
        for text in step.text:
            yield chunk({"content": text})
        for index, call in enumerate(step.calls):
            head = {"index": index, "id": call["id"], "type": "function"}
            yield chunk(
                {"tool_calls": [{**head, "function": {"name": call["name"], "arguments": ""}}]}
            )
            middle = len(call["arguments"]) // 2
            for piece in (call["arguments"][:middle], call["arguments"][middle:]):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls" if step.calls else "stop")
        yield sse("[DONE]")
