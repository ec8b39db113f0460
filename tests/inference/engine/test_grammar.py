"""Constrained decoding in the engine, on the tiny random-weight model.

A random model writes noise; under a grammar the noise must still parse. Schemas here bound
every string, array and number, so that the grammar (not `max_new_tokens`) ends each answer.
"""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from inference.engine import grammar
from inference.engine.engine import Engine
from inference.engine.grammar import GrammarCompiler
from inference.types import (
    FinishReason,
    GenerationEvent,
    GrammarError,
    json_grammar,
    regex_grammar,
)
from tests.inference.factories import make_request, run_to_completion

RECORD = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "color": {"enum": ["red", "green", "blue"]},
        "flags": {"type": "array", "items": {"type": "boolean"}, "maxItems": 3},
        "home": {
            "type": "object",
            "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
            "required": ["zip"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "age", "color", "flags", "home"],
    "additionalProperties": False,
}


def text_of(events: list) -> str:
    assert all(isinstance(e, GenerationEvent) for e in events), events
    return "".join(e.text for e in events)


def finish_of(events: list) -> FinishReason | None:
    return events[-1].finish_reason


@pytest.mark.parametrize("sampling", [{}, {"do_sample": True, "temperature": 1.5, "seed": 3}])
def test_json_schema_output_parses_and_validates(engine_factory, sampling) -> None:
    engine: Engine = engine_factory()
    request = make_request(12, max_new_tokens=300, grammar=json_grammar(RECORD), **sampling)
    engine.add_request(request)
    events = run_to_completion(engine)[request.request_id]
    document = json.loads(text_of(events))
    jsonschema.validate(document, RECORD)
    assert finish_of(events) == FinishReason.EOS_TOKEN  # the grammar ended it, not the length


def test_regex_output_matches(engine_factory) -> None:
    engine = engine_factory()
    pattern = r"[0-9]{3}-[a-z]{2}(!|\?)"
    request = make_request(6, max_new_tokens=50, grammar=regex_grammar(pattern))
    engine.add_request(request)
    events = run_to_completion(engine)[request.request_id]
    assert re.fullmatch(pattern, text_of(events))
    assert finish_of(events) == FinishReason.EOS_TOKEN


def test_mixed_batch_free_rows_unchanged_and_constrained_valid(engine_factory) -> None:
    """Free requests give the same tokens beside constrained ones as alone; seeded constrained
    requests give the same tokens in a batch as alone."""
    alone = engine_factory()
    free = [make_request(10 + i, max_new_tokens=24, ignore_eos=True) for i in range(4)]
    seeded = dict(do_sample=True, temperature=1.0, seed=11)
    for r in free:
        alone.add_request(r)
    finished = run_to_completion(alone)
    expected = {r.request_id: text_of(finished[r.request_id]) for r in free}
    assert alone.masks._pool is None  # a batch of free rows started no mask work at all

    single = engine_factory()
    lone = make_request(9, max_new_tokens=300, grammar=json_grammar(RECORD), **seeded)
    single.add_request(lone)
    lone_text = text_of(run_to_completion(single)[lone.request_id])

    mixed = engine_factory()
    constrained = [
        make_request(9, max_new_tokens=300, grammar=json_grammar(RECORD), **seeded),
        make_request(7, max_new_tokens=300, grammar=json_grammar(RECORD)),
        make_request(5, max_new_tokens=50, grammar=regex_grammar("(yes|no)")),
    ]
    for a, b in zip(free, constrained, strict=False):
        mixed.add_request(make_request(a.prompt_token_ids, a.request_id + "-m", **vars(a.params)))
        mixed.add_request(b)
    mixed.add_request(
        make_request(free[3].prompt_token_ids, free[3].request_id + "-m", **vars(free[3].params))
    )
    results = run_to_completion(mixed)
    for r in free:
        assert text_of(results[r.request_id + "-m"]) == expected[r.request_id]
    assert text_of(results[constrained[0].request_id]) == lone_text
    for r in constrained[:2]:
        jsonschema.validate(json.loads(text_of(results[r.request_id])), RECORD)
    assert text_of(results[constrained[2].request_id]) in ("yes", "no")


def test_invalid_grammars_are_refused_with_the_reason(tiny) -> None:
    compiler = GrammarCompiler(tiny.tokenizer)
    with pytest.raises(GrammarError, match=r"Unsupported JSON Schema feature.*uniqueItems"):
        compiler.compile(json_grammar({"type": "array", "uniqueItems": True}))
    with pytest.raises(GrammarError, match=r"Invalid JSON Schema.*strin"):
        compiler.compile(json_grammar({"type": "strin"}))
    with pytest.raises(GrammarError, match=r"Invalid regex.*unclosed"):
        compiler.compile(regex_grammar("a[b"))
    with pytest.raises(GrammarError, match="must be an object"):
        json_grammar([1, 2])


def test_engine_refuses_an_invalid_grammar_at_admission(engine_factory) -> None:
    engine = engine_factory()
    with pytest.raises(ValueError, match="uniqueItems"):
        engine.add_request(
            make_request(4, grammar=json_grammar({"type": "array", "uniqueItems": True}))
        )
    assert not engine.has_work


def test_compiled_grammars_cached_by_schema_and_bounded(tiny) -> None:
    compiler = GrammarCompiler(tiny.tokenizer, cache_size=2)
    a = {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "string"}}}
    compiler.compile(json_grammar(a))
    compiler.compile(json_grammar(json.dumps(a, indent=2)))
    assert compiler.num_cached == 1  # the same schema, as an object or as JSON text
    compiler.compile(regex_grammar("a+"))
    compiler.compile(regex_grammar("b+"))
    assert compiler.num_cached == 2


def test_top_tokens_list_only_what_the_grammar_allows(engine_factory) -> None:
    engine = engine_factory()
    request = make_request(5, max_new_tokens=5, top_n_tokens=3, grammar=regex_grammar("a"))
    engine.add_request(request)
    (event,) = run_to_completion(engine)[request.request_id]
    assert event.text == "a" and event.finish_reason == FinishReason.EOS_TOKEN
    assert [t.id for t in event.top_tokens] == [event.token.id]  # not two -inf alternatives
    assert event.top_tokens[0].logprob == pytest.approx(0.0)


def test_properties_come_in_the_schema_order(tiny) -> None:
    """The client's order of `properties` is the order of the answer (a tool call's `_name`
    comes first, so it can stream before the arguments)."""
    compiler = GrammarCompiler(tiny.tokenizer)
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "story": {"type": "string"}},
        "required": ["title", "story"],
    }
    for document, expected in (('{"title": "a", "story": "b"}', True),
                               ('{"story": "b", "title": "a"}', False)):  # fmt: skip
        matcher = compiler.matcher(json_grammar(schema))
        ids = tiny.tokenizer.encode(document)
        accepted = all(matcher.consume_token(t) for t in ids) and matcher.is_accepting()
        assert accepted is expected, document


def test_grammar_cache_drops_the_least_recently_used(tiny) -> None:
    compiler = GrammarCompiler(tiny.tokenizer, cache_size=3)
    specs = [regex_grammar(f"{letter}+") for letter in "abcdef"]
    for spec in specs[:3]:
        compiler.compile(spec)
    compiler.compile(specs[0])  # used again: now the most recent
    for spec in specs[3:]:
        compiler.compile(spec)
        assert compiler.num_cached <= compiler.cache_size == 3
    assert [compiler.is_cached(s) for s in specs] == [False, False, False, True, True, True]
    compiler.compile(specs[4])
    compiler.compile(specs[0])  # evicts specs[3], the least recently used
    assert [compiler.is_cached(s) for s in specs] == [True, False, False, False, True, True]


def test_llguidance_vocabularies_are_bounded(tiny, monkeypatch) -> None:
    monkeypatch.setattr(grammar, "LLTOKENIZER_CACHE_SIZE", 2)
    monkeypatch.setattr(grammar, "_LLTOKENIZERS", type(grammar._LLTOKENIZERS)())
    sizes = [len(tiny.tokenizer) + extra for extra in range(3)]
    built = [grammar.llg_tokenizer(tiny.tokenizer, size) for size in sizes[:2]]
    assert grammar.llg_tokenizer(tiny.tokenizer, sizes[0]) is built[0]  # kept, now most recent
    grammar.llg_tokenizer(tiny.tokenizer, sizes[2])
    assert len(grammar._LLTOKENIZERS) == 2
    assert (id(tiny.tokenizer), sizes[1]) not in grammar._LLTOKENIZERS  # the oldest went
    assert grammar.llg_tokenizer(tiny.tokenizer, sizes[0]) is built[0]
