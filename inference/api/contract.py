"""What the OpenAPI document promises beyond the wire types: the validator's rules as JSON Schema.

The request models give the shapes; the ranges, the refused values and the limits of this
server (`max_stop_sequences`, `max_top_n_tokens`, ...) are added here, so a body the document
allows is a body the server accepts, except for the token budget (`max_input_tokens`,
`max_total_tokens`), which depends on the tokenizer and is stated in words. The contract test
(`tests/inference/api/test_contract.py`) fuzzes the server against this document.
Must not import the engine or torch.
"""

from __future__ import annotations

import copy
from typing import Any

from inference.api.state import MAX_CLIENT_BATCH_SIZE
from inference.config import EngineConfig

Schema = dict[str, Any]
SEED_RANGE: Schema = {"minimum": 0, "maximum": 2**64 - 1}
PENALTY_RANGE: Schema = {"minimum": -2.0, "maximum": 2.0}
PROBABILITY: Schema = {"exclusiveMinimum": 0.0, "maximum": 1.0}
TEMPERATURE: Schema = {"minimum": 0.0}
NOT_SUPPORTED: Schema = {"type": "null", "default": None}
LENIENT_TOP_P = " 1.0 is accepted and disables it (TGI requires < 1.0)."
LENIENT_TEMPERATURE = " 0 is accepted and means greedy decoding (TGI requires > 0)."
# Rules of grammars and tools that JSON Schema cannot state (the contract hooks keep valid
# bodies inside them).
GRAMMAR_RULE = (
    "Constrain the output: `json` (a JSON Schema object, or its JSON text), `regex` (Rust "
    "`regex` syntax, matched by the whole output) or `json_schema` (`{name, schema}`). A schema "
    "or regex the grammar engine cannot follow is refused with 422 and the reason; a JSON Schema "
    "keyword it does not implement (e.g. `uniqueItems`, `not`, `if`) is named."
)
TOOLS_RULE = (
    " Refused with 422: `tools` together with `response_format`, a `tool_choice` function not "
    "among `tools` (or without `tools`), a function named `no_tool`, parameters the grammar "
    "engine cannot follow."
)


# How the OpenAI routes report a failure inside a stream (then `[DONE]`).
OPENAI_STREAM_ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "http_status_code"],
            "properties": {
                "message": {"type": "string"},
                "http_status_code": {"type": "integer"},
            },
        }
    },
}
DONE: Schema = {"type": "string", "const": "[DONE]"}


def event_stream(*payloads: str | Schema, done: bool = False) -> Schema:
    """One server-sent event as an event-stream reader parses it: its `data` is a JSON document
    of one of `payloads` (component names or schemas), or `[DONE]` when `done`."""
    refs = [{"$ref": f"#/components/schemas/{p}"} if isinstance(p, str) else p for p in payloads]
    data: Schema = {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": refs[0] if len(refs) == 1 else {"anyOf": refs},
    }
    if done:
        data = {"anyOf": [DONE, data]}
    return {
        "schema": {
            "type": "object",
            "required": ["data"],
            "properties": {"data": data, "event": {"type": "string"}},
        }
    }


def nullable(schema: Schema, keywords: Schema) -> None:
    """Add `keywords` to the non-null branch of a pydantic `X | None` property (or to it)."""
    branches = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]
    for branch in branches:
        branch.update(copy.deepcopy(keywords))
    examples = schema.get("examples")
    if examples is not None and not all(_fits(e, keywords) for e in examples):
        del schema["examples"]


def _fits(value: Any, keywords: Schema) -> bool:
    """Whether an example keeps to the numeric and length bounds just added."""
    if isinstance(value, list):
        return len(value) <= keywords.get("maxItems", len(value))
    if not isinstance(value, int | float) or isinstance(value, bool):
        return True
    low, high = keywords.get("minimum"), keywords.get("maximum")
    return (low is None or value >= low) and (high is None or value <= high)


def replace(schema: Schema, new: Schema) -> None:
    """Keep only the description of a property and say exactly `new` instead."""
    description = schema.get("description")
    schema.clear()
    schema.update(copy.deepcopy(new))
    if description:
        schema["description"] = description


def stop_schema(limits: EngineConfig, *, single_string: bool) -> Schema:
    array = {"type": "array", "items": {"type": "string"}, "maxItems": limits.max_stop_sequences}
    branches = [{"type": "string"}, array] if single_string else [array]
    return {"anyOf": [*branches, {"type": "null"}], "default": None}


def max_tokens_range(limits: EngineConfig) -> Schema:
    # NOTE: every prompt is at least one token, so more than this is always refused
    return {"minimum": 1, "maximum": limits.max_total_tokens - 1}


def generate_parameters(schema: Schema, limits: EngineConfig) -> None:
    props = schema["properties"]
    nullable(props["best_of"], {"minimum": 1, "maximum": limits.max_best_of})
    nullable(props["frequency_penalty"], PENALTY_RANGE)
    nullable(props["max_new_tokens"], max_tokens_range(limits))
    nullable(props["repetition_penalty"], {"exclusiveMinimum": 0.0})
    nullable(props["seed"], SEED_RANGE)
    replace(props["stop"], stop_schema(limits, single_string=False))
    nullable(props["temperature"], TEMPERATURE)
    nullable(props["top_k"], {"minimum": 1})
    nullable(props["top_n_tokens"], {"minimum": 0, "maximum": limits.max_top_n_tokens})
    nullable(props["top_p"], PROBABILITY)
    props["top_p"]["description"] += LENIENT_TOP_P
    nullable(props["truncate"], {"minimum": 1, "maximum": limits.max_input_tokens})
    nullable(props["typical_p"], PROBABILITY)
    props["typical_p"]["description"] += LENIENT_TOP_P
    replace(props["watermark"], {"type": "boolean", "const": False, "default": False})
    props["grammar"]["description"] = GRAMMAR_RULE
    replace(props["adapter_id"], NOT_SUPPORTED)
    if limits.max_best_of > 1:
        schema["allOf"] = [best_of_rules()]


def best_of_rules() -> Schema:
    """`best_of` > 1 samples several sequences: it needs sampling and no fixed seed."""
    asks_sampling = [{"required": ["do_sample"], "properties": {"do_sample": {"const": True}}}]
    for name in ("temperature", "top_k", "top_p", "typical_p"):
        asks_sampling.append({"required": [name], "properties": {name: {"type": "number"}}})
    return {
        "if": {
            "required": ["best_of"],
            "properties": {"best_of": {"type": "integer", "minimum": 2}},
        },
        "then": {"properties": {"seed": {"type": "null"}}, "anyOf": asks_sampling},
    }


# What a stream refuses on top of GenerateParameters: several sequences, prompt details.
STREAM_PARAMETERS: Schema = {
    "properties": {
        "best_of": {"anyOf": [{"type": "integer", "maximum": 1}, {"type": "null"}]},
        "decoder_input_details": {"const": False},
    }
}


def streamed_body(request: str) -> Schema:
    """`request` (a component name) as a streaming route accepts it."""
    return {
        "allOf": [
            {"$ref": f"#/components/schemas/{request}"},
            {"properties": {"parameters": STREAM_PARAMETERS}},
        ]
    }


def compat_generate_request(schema: Schema) -> None:
    """`POST /` streams when `stream` is true, and then refuses what streams refuse."""
    schema["allOf"] = [
        {
            "if": {"required": ["stream"], "properties": {"stream": {"const": True}}},
            "then": {"properties": {"parameters": STREAM_PARAMETERS}},
        }
    ]


def chat_request(schema: Schema, limits: EngineConfig) -> None:
    props = schema["properties"]
    props["messages"]["minItems"] = 1
    nullable(props["frequency_penalty"], PENALTY_RANGE)
    nullable(props["presence_penalty"], PENALTY_RANGE)
    nullable(props["top_logprobs"], {"minimum": 0, "maximum": limits.max_top_n_tokens})
    nullable(props["max_tokens"], max_tokens_range(limits))
    nullable(props["max_completion_tokens"], max_tokens_range(limits))
    nullable(props["n"], {"minimum": 1, "maximum": 1})
    nullable(props["seed"], SEED_RANGE)
    replace(props["stop"], stop_schema(limits, single_string=True))
    nullable(props["temperature"], TEMPERATURE)
    props["temperature"]["description"] = "Sampling temperature." + LENIENT_TEMPERATURE
    nullable(props["top_p"], PROBABILITY)
    props["top_p"]["description"] = "Nucleus sampling." + LENIENT_TOP_P
    props["tools"]["description"] += TOOLS_RULE
    props["response_format"]["description"] = (
        "TGI's grammar forms, or OpenAI's `json_schema` / `json_object` / `text`. " + GRAMMAR_RULE
    )


def completion_request(schema: Schema, limits: EngineConfig) -> None:
    props = schema["properties"]
    text = {"type": "string", "minLength": 1}
    prompts = {"type": "array", "items": text, "minItems": 1, "maxItems": MAX_CLIENT_BATCH_SIZE}
    replace(props["prompt"], {"anyOf": [text, prompts]})
    nullable(props["frequency_penalty"], PENALTY_RANGE)
    nullable(props["presence_penalty"], PENALTY_RANGE)
    nullable(props["repetition_penalty"], {"exclusiveMinimum": 0.0})
    nullable(props["max_tokens"], max_tokens_range(limits))
    nullable(props["n"], {"minimum": 1, "maximum": 1})
    nullable(props["seed"], SEED_RANGE)
    replace(props["stop"], stop_schema(limits, single_string=True))
    nullable(props["temperature"], TEMPERATURE)
    nullable(props["top_p"], PROBABILITY)
    replace(props["suffix"], NOT_SUPPORTED)


def apply_limits(components: dict[str, Schema], limits: EngineConfig) -> None:
    """Write this server's rules and limits into the request schemas, in place."""
    generate_parameters(components["GenerateParameters"], limits)
    components["GenerateRequest"]["properties"]["inputs"]["minLength"] = 1
    compat = components["CompatGenerateRequest"]
    compat["properties"]["inputs"]["minLength"] = 1
    compat_generate_request(compat)
    chat_request(components["ChatRequest"], limits)
    completion_request(components["CompletionRequest"], limits)
    # Images are refused (this model reads text only): a part is text.
    chunk = components["MessageChunk"]["properties"]
    replace(chunk["type"], {"type": "string", "const": "text"})
    chunk["type"]["description"] = "`text`: image parts are refused (the model reads text only)"
