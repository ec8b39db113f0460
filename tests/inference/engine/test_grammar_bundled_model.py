"""200 answers of the bundled model under 10 JSON schemas, all batched through one engine; every
answer must parse and validate with `jsonschema`.

Schemas bound their strings, arrays and numbers (patterns, `maxItems`, ranges), so the
grammar (not the token limit) ends every answer; the limit is there only to keep a broken
grammar from running forever.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from inference.config import EngineConfig, ModelConfig
from inference.engine.engine import Engine
from inference.model.loader import load_model
from inference.types import FinishReason, GenerationEvent, json_grammar
from tests.inference.factories import make_request, run_to_completion

# Letters and spaces: 24 characters of another script can take 3 tokens each, and then a
# token limit, not the grammar, could end an answer.
NAME = {"type": "string", "pattern": "^[A-Za-z][A-Za-z ]{0,23}$"}


def closed_object(properties: dict, required: list[str] | None = None) -> dict:
    """An object schema with no other properties; all of them required unless `required`."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


SCHEMAS: dict[str, dict] = {
    "person": closed_object(
        {
            "name": NAME,
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "email": {"type": "string", "pattern": "^[a-z]{1,10}@[a-z]{1,10}\\.(com|org)$"},
        }
    ),
    "address (nested)": closed_object(
        {
            "owner": NAME,
            "address": closed_object(
                {
                    "street": NAME,
                    "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
                    "country": {"enum": ["FR", "DE", "US", "JP"]},
                }
            ),
        }
    ),
    "order (array of objects)": closed_object(
        {
            "order_id": {"type": "string", "pattern": "^ORD-[0-9]{4}$"},
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": 3,
                "items": closed_object(
                    {
                        "sku": {"type": "string", "pattern": "^[A-Z]{3}[0-9]{2}$"},
                        "qty": {"type": "integer", "minimum": 1, "maximum": 9},
                    }
                ),
            },
        }
    ),
    "review (number range, enum)": closed_object(
        {
            "product": NAME,
            "stars": {"type": "integer", "minimum": 1, "maximum": 5},
            "sentiment": {"enum": ["positive", "neutral", "negative"]},
        }
    ),
    "weather (numbers)": closed_object(
        {
            "city": NAME,
            "celsius": {"type": "integer", "minimum": -50, "maximum": 50},
            "humidity": {"type": "number", "minimum": 0, "maximum": 1},
            "sunny": {"type": "boolean"},
        },
        required=["city", "celsius", "sunny"],
    ),
    "tags (array of enums)": closed_object(
        {
            "title": NAME,
            "tags": {
                "type": "array",
                "items": {"enum": ["news", "sport", "tech", "art", "food"]},
                "minItems": 1,
                "maxItems": 3,
            },
        }
    ),
    "event (date pattern)": closed_object(
        {
            "event": NAME,
            "date": {"type": "string", "pattern": "^20[0-9]{2}-(0[1-9]|1[0-2])-[0-2][0-9]$"},
            "time": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
        }
    ),
    "choice (anyOf)": closed_object(
        {
            "answer": {
                "anyOf": [
                    {"type": "integer", "minimum": 0, "maximum": 1000},
                    {"type": "string", "pattern": "^[A-Za-z ]{0,16}$"},
                ]
            },
            "confident": {"type": "boolean"},
        }
    ),
    "recipe ($ref, $defs)": {
        "$defs": {
            "ingredient": closed_object(
                {"name": NAME, "grams": {"type": "integer", "minimum": 1, "maximum": 999}}
            )
        },
        **closed_object(
            {
                "dish": NAME,
                "ingredients": {
                    "type": "array",
                    "items": {"$ref": "#/$defs/ingredient"},
                    "minItems": 1,
                    "maxItems": 3,
                },
            }
        ),
    },
    "matrix (nested arrays)": closed_object(
        {
            "label": {"enum": ["identity", "zeros", "random"]},
            "rows": {
                "type": "array",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {"type": "integer", "minimum": -9, "maximum": 9},
                },
            },
        }
    ),
}
SUBJECTS = [
    "a teacher", "a city in Japan", "a small bakery", "a football match", "a new phone",
    "a rainy day", "a birthday party", "a math quiz", "a pasta dish", "a chess board",
    "a painter", "a train trip", "a garden", "a concert", "a library",
    "a spaceship", "a winter morning", "a bicycle shop", "a museum", "a farmer",
]  # fmt: skip
ANSWERS_PER_SCHEMA = 20
MAX_NEW_TOKENS = 160


@pytest.mark.slow
@pytest.mark.timeout(1200)  # 12 minutes measured on a 2-core machine shared with other work
def test_200_answers_under_10_schemas_all_validate():
    loaded = load_model(ModelConfig())
    engine = Engine(loaded, EngineConfig(max_batch_total_tokens=65536, max_batch_size=64))
    requests = {}
    for kind, schema in SCHEMAS.items():
        for i in range(ANSWERS_PER_SCHEMA):
            # NOTE: a short prompt (the schema itself is not in it): the grammar alone must keep
            # the answer valid, and 200 prompts of a few tokens prefill in seconds.
            messages = [{"role": "user", "content": f"JSON about {SUBJECTS[i]}: the {kind}."}]
            prompt = loaded.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
            ids = loaded.tokenizer.encode(prompt, add_special_tokens=False)
            request = make_request(
                ids,
                max_new_tokens=MAX_NEW_TOKENS,
                do_sample=True,
                temperature=0.7,
                seed=i,
                grammar=json_grammar(schema),
            )
            engine.add_request(request)
            requests[request.request_id] = schema
    assert len(requests) == 200
    results = run_to_completion(engine)
    failures = []
    for request_id, schema in requests.items():
        events = results[request_id]
        assert all(isinstance(e, GenerationEvent) for e in events), events[-1]
        text = "".join(e.text for e in events)
        try:
            jsonschema.validate(json.loads(text), schema)
        except (ValueError, jsonschema.ValidationError) as exc:
            failures.append((text, events[-1].finish_reason, str(exc)[:200]))
        else:
            assert events[-1].finish_reason == FinishReason.EOS_TOKEN
    assert not failures, failures[:5]
