"""What the two OpenAI generation APIs (chat completions, completions) share.

Parameters map onto TGI's (temperature 0 means greedy, otherwise sampling is on), finish
reasons onto OpenAI's, streams end with `data: [DONE]`, and in-stream errors arrive as
`{"error": {"message", "http_status_code"}}`. No routes here.
Must not import torch or a route module.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel

from inference.api.contract import OPENAI_STREAM_ERROR, event_stream
from inference.api.errors import ApiError
from inference.api.generation import Generated
from inference.api.schemas import GenerateParameters, Usage
from inference.api.sse import frame
from inference.api.state import ServerState
from inference.api.validation import ValidRequest
from inference.types import FinishReason

# OpenAI has no `eos_token`/`stop_sequence`: both are a natural stop.
OPENAI_FINISH_REASONS = {
    FinishReason.LENGTH: "length",
    FinishReason.EOS_TOKEN: "stop",
    FinishReason.STOP_SEQUENCE: "stop",
}


def openai_finish_reason(reason: FinishReason) -> str:
    """The engine's finish reason as OpenAI spells it."""
    return OPENAI_FINISH_REASONS[FinishReason(reason)]


def stream_doc(schema: str) -> dict[int | str, dict]:
    """The documented 200 answer of a route that streams events of `schema` when asked."""
    return {
        200: {
            "description": "Generated Completion: a JSON document, or with `stream` true events "
            f"of `{schema}` ended by `[DONE]` (a failure mid-stream sends "
            '`{"error": {"message", "http_status_code"}}` before it)',
            "content": {
                "application/json": {},
                "text/event-stream": event_stream(schema, OPENAI_STREAM_ERROR, done=True),
            },
        }
    }


def sampling_parameters(
    *,
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    seed: int | None,
    stop: str | list[str] | None,
    frequency_penalty: float | None,
    repetition_penalty: float | None = None,
    top_n_tokens: int | None = None,
    grammar: Any = None,
    ignore_eos: bool = False,
) -> GenerateParameters:
    """OpenAI knobs as TGI parameters: sampling unless temperature is 0, always details."""
    greedy = temperature == 0.0
    return GenerateParameters(
        max_new_tokens=max_tokens,
        do_sample=not greedy,
        temperature=None if greedy else temperature,
        top_p=top_p,
        seed=seed,
        stop=[stop] if isinstance(stop, str) else stop,
        frequency_penalty=frequency_penalty,
        repetition_penalty=repetition_penalty,
        top_n_tokens=top_n_tokens,
        details=True,
        grammar=grammar,
        ignore_eos=ignore_eos,
    )


def error_event(error: ApiError) -> bytes:
    return frame(
        json.dumps({"error": {"message": error.message, "http_status_code": error.status_code}})
    )


def usage_of(sequence: Generated, valid: ValidRequest) -> Usage:
    prompt_tokens = sequence.input_length or valid.input_length
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=sequence.generated_tokens,
        total_tokens=prompt_tokens + sequence.generated_tokens,
    )


@dataclass(frozen=True)
class CompletionMeta:
    """What an OpenAI answer and each of its chunks carry besides choices and usage."""

    id: str
    created: int
    model: str
    system_fingerprint: str

    def fields(self) -> dict[str, Any]:
        return asdict(self)

    def chunk(
        self, chunk_type: type[BaseModel], choices: list[Any], usage: Usage | None = None
    ) -> bytes:
        """One SSE frame of `chunk_type` (`ChatCompletionChunk` or `Chunk`)."""
        return frame(chunk_type(**self.fields(), choices=choices, usage=usage).model_dump_json())


def response_model_name(state: ServerState, requested: str | None) -> str:
    """`model` is not used to route; it is echoed when given (OpenAI clients expect that)."""
    return requested or state.model_id
