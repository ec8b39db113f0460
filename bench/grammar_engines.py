"""Grammar engines compared: per-token mask cost at batch 32 and JSON-Schema coverage.

The numbers behind the choice of llguidance (README, "Structured output"). Each engine that is
importable is driven the same way: 32 sequences, each teacher-forced through a valid JSON
document of one of four schemas (tokenized by the bundled model's tokenizer), one bitmask row
per sequence per step. Then every schema of ``COVERAGE`` is compiled and the ones an engine
refuses (or silently ignores, for outlines-core's regex translation) are listed.

Usage: ``.venv/bin/python -m bench.grammar_engines`` (xgrammar and outlines-core are not
project dependencies: ``pip install --no-deps --target DIR xgrammar apache-tvm-ffi
outlines-core`` and put DIR on ``PYTHONPATH`` to include them).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

MODEL_DIR = Path("var/models/smollm2-135m-instruct")
BATCH = 32

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "email": {"type": "string", "pattern": "^[a-z]+@[a-z]+\\.[a-z]{2,3}$"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
    },
    "required": ["name", "age", "email", "tags"],
    "additionalProperties": False,
}
ORDER = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "status": {"enum": ["new", "paid", "shipped"]},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
                "required": ["sku", "qty"],
                "additionalProperties": False,
            },
        },
        "total": {"type": "number"},
    },
    "required": ["id", "status", "lines", "total"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "celsius": {"type": "number", "minimum": -90, "maximum": 60},
        "sunny": {"type": "boolean"},
    },
    "required": ["city", "celsius", "sunny"],
    "additionalProperties": False,
}
FREE = {"type": "object"}
DOCUMENTS: list[tuple[dict, Any]] = [
    (PERSON, {"name": "Ada Lovelace", "age": 36, "email": "ada@math.org", "tags": ["a", "b"]}),
    (
        ORDER,
        {
            "id": 1234,
            "status": "paid",
            "lines": [{"sku": "AB-1", "qty": 2}, {"sku": "ZZ-9", "qty": 1}],
            "total": 42.5,
        },
    ),
    (WEATHER, {"city": "Paris", "celsius": 21.5, "sunny": True}),
    (FREE, {"answer": "forty-two", "confidence": 0.9, "sources": ["a", "b", "c"]}),
]

# Features a client's schema may use: a complete schema each, and a document that breaks it
# (an engine that compiles the schema but accepts the document ignored the feature).
COVERAGE: dict[str, dict] = {
    "nested objects": {"type": "object", "properties": {"a": PERSON}, "required": ["a"]},
    "enum / const": {"type": "object", "properties": {"a": {"enum": [1, "x"]}, "b": {"const": 3}}},
    "number ranges": {"type": "number", "minimum": 1.5, "exclusiveMaximum": 9},
    "integer ranges": {"type": "integer", "minimum": -3, "maximum": 700},
    "string pattern": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
    "string length": {"type": "string", "minLength": 2, "maxLength": 5},
    "array min/maxItems": {
        "type": "array",
        "items": {"type": "integer"},
        "minItems": 1,
        "maxItems": 3,
    },
    "prefixItems": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
    "anyOf": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    "oneOf": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    "allOf": {
        "allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}}, {"required": ["a"]}]
    },
    "$ref / $defs": {
        "$defs": {"p": {"type": "integer"}},
        "type": "array",
        "items": {"$ref": "#/$defs/p"},
    },
    "recursive $ref": {
        "$defs": {
            "n": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/n"}}},
            }
        },
        "$ref": "#/$defs/n",
    },
    "additionalProperties schema": {"type": "object", "additionalProperties": {"type": "integer"}},
    "format date-time": {"type": "string", "format": "date-time"},
    "format email": {"type": "string", "format": "email"},
    "format uuid": {"type": "string", "format": "uuid"},
    "minProperties": {"type": "object", "minProperties": 1},
    "patternProperties": {"type": "object", "patternProperties": {"^x-": {"type": "integer"}}},
    "multipleOf": {"type": "integer", "multipleOf": 5},
    "uniqueItems": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
    "if / then / else": {"if": {"type": "integer"}, "then": {"minimum": 0}, "else": {}},
    "not": {"not": {"type": "string"}},
}


@dataclass
class EngineDriver:
    """One engine behind four calls, so every engine runs the same loop."""

    name: str
    compile: Callable[[dict], Any]  # schema -> compiled grammar (raises when refused)
    matcher: Callable[[Any], Any]  # compiled -> fresh matcher
    fill: Callable[[list[Any], torch.Tensor], None]  # matchers -> rows 0..n-1 of bitmask
    accept: Callable[[Any, int], bool]
    can_end: Callable[[Any], bool]  # the document so far is complete


def llguidance_driver(tokenizer) -> EngineDriver:
    import llguidance
    import llguidance.hf
    import llguidance.torch

    lltok = llguidance.hf.from_tokenizer(tokenizer)
    executor = llguidance.LLExecutor()

    def compile_(schema: dict) -> str:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema)
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, lltok)
        if is_error or messages:
            raise ValueError("; ".join(messages))
        return grammar

    def fill(matchers: list, bitmask: torch.Tensor) -> None:
        llguidance.torch.fill_next_token_bitmask_par(
            executor, [(m, i) for i, m in enumerate(matchers)], bitmask
        )

    return EngineDriver(
        "llguidance",
        compile_,
        lambda g: llguidance.LLMatcher(lltok, g, log_level=0),
        fill,
        lambda m, t: m.consume_token(t),
        lambda m: m.is_accepting(),
    )


def xgrammar_driver(tokenizer) -> EngineDriver:
    import xgrammar

    info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer))
    compiler = xgrammar.GrammarCompiler(info, cache_enabled=False)
    batch = xgrammar.BatchGrammarMatcher()

    def fill(matchers: list, bitmask: torch.Tensor) -> None:
        batch.batch_fill_next_token_bitmask(matchers, bitmask)

    return EngineDriver(
        "xgrammar",
        lambda s: compiler.compile_json_schema(json.dumps(s), strict_mode=True),
        xgrammar.GrammarMatcher,
        fill,
        lambda m, t: m.accept_token(t),
        lambda m: m.accept_token(tokenizer.eos_token_id),
    )


def outlines_driver(tokenizer) -> EngineDriver:
    from outlines_core import Guide, Index, Vocabulary
    from outlines_core.json_schema import build_regex_from_schema

    eos = tokenizer.eos_token_id
    tokens: dict[str, list[int]] = {}
    for token_id in range(len(tokenizer)):
        if token_id == eos:
            continue
        text = tokenizer.convert_tokens_to_string([tokenizer.convert_ids_to_tokens(token_id)])
        tokens.setdefault(text, []).append(token_id)
    vocabulary = Vocabulary(eos, tokens)

    def fill(guides: list, bitmask: torch.Tensor) -> None:
        for i, guide in enumerate(guides):
            row = bitmask[i]
            guide.write_mask_into(row.data_ptr(), row.numel(), row.element_size())

    def accept(guide, token_id: int) -> bool:
        guide.advance(token_id)
        return True

    return EngineDriver(
        "outlines-core",
        lambda s: Index(build_regex_from_schema(json.dumps(s)), vocabulary),
        Guide,
        fill,
        accept,
        lambda g: eos in g.get_tokens(),
    )


def forced_tokens(driver: EngineDriver, tokenizer, compiled: Any, document: Any) -> list[int]:
    """The document's tokens in a spelling this engine accepts to its end (compact or spaced)."""
    for separators in ((",", ":"), (", ", ": ")):
        ids = tokenizer.encode(json.dumps(document, separators=separators))
        matcher = driver.matcher(compiled)
        if all(driver.accept(matcher, t) for t in ids) and driver.can_end(matcher):
            return ids
    raise RuntimeError(f"{driver.name} refuses every spelling of {document}")


def mask_cost(driver: EngineDriver, tokenizer, repeats: int = 3) -> dict[str, float]:
    """Median per-step time (ms) to fill 32 masks and to advance 32 matchers."""
    start = time.perf_counter()
    compiled = [driver.compile(schema) for schema, _ in DOCUMENTS]
    compile_ms = (time.perf_counter() - start) * 1e3 / len(DOCUMENTS)
    forced = [
        forced_tokens(driver, tokenizer, compiled[i], doc) for i, (_, doc) in enumerate(DOCUMENTS)
    ]
    bitmask = torch.full((BATCH, (len(tokenizer) + 31) // 32), -1, dtype=torch.int32)
    fill_ms, accept_ms = [], []
    for _ in range(repeats):
        kinds = [i % len(DOCUMENTS) for i in range(BATCH)]
        matchers = [driver.matcher(compiled[k]) for k in kinds]
        steps = min(len(f) for f in forced)
        for step in range(steps):
            t0 = time.perf_counter()
            driver.fill(matchers, bitmask)
            t1 = time.perf_counter()
            for m, k in zip(matchers, kinds, strict=True):
                driver.accept(m, forced[k][step])
            t2 = time.perf_counter()
            fill_ms.append((t1 - t0) * 1e3)
            accept_ms.append((t2 - t1) * 1e3)
    return {
        "compile_ms": compile_ms,
        "fill_ms": statistics.median(fill_ms),
        "fill_p95_ms": sorted(fill_ms)[int(len(fill_ms) * 0.95)],
        "accept_ms": statistics.median(accept_ms),
    }


VIOLATIONS: dict[str, Any] = {
    "nested objects": {"a": {"name": "x"}},
    "enum / const": {"a": 2, "b": 3},
    "number ranges": 9,
    "integer ranges": 701,
    "string pattern": "ab-123",
    "string length": "abcdef",
    "array min/maxItems": [1, 2, 3, 4],
    "prefixItems": [1, "a"],
    "anyOf": True,
    "oneOf": None,
    "allOf": {"b": 1},
    "$ref / $defs": ["x"],
    "recursive $ref": {"kids": [{"kids": 3}]},
    "additionalProperties schema": {"a": "x"},
    "format date-time": "yesterday",
    "format email": "nobody",
    "format uuid": "1234",
    "minProperties": {},
    "patternProperties": {"x-a": "s"},
    "multipleOf": 7,
    "uniqueItems": [1, 1],
    "if / then / else": -1,
    "not": "s",
}


def accepts(driver: EngineDriver, tokenizer, compiled: Any, document: Any) -> bool:
    """Whether the engine lets the model write ``document`` to its end (either spelling)."""
    try:
        forced_tokens(driver, tokenizer, compiled, document)
    except Exception:  # refused, whatever the engine raises
        return False
    return True


def coverage(driver: EngineDriver, tokenizer) -> tuple[list[str], list[str]]:
    """The COVERAGE features this engine refuses, and those it compiles but does not enforce."""
    refused, ignored = [], []
    for feature, schema in COVERAGE.items():
        try:
            compiled = driver.compile(schema)
        except Exception:  # any refusal counts
            refused.append(feature)
            continue
        if accepts(driver, tokenizer, compiled, VIOLATIONS[feature]):
            ignored.append(feature)
    return refused, ignored


def main() -> None:
    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    factories = {
        "llguidance": llguidance_driver,
        "xgrammar": xgrammar_driver,
        "outlines-core": outlines_driver,
    }
    print(f"batch {BATCH}, vocabulary {len(tokenizer)}, {len(DOCUMENTS)} schemas teacher-forced")
    print(
        f"{'engine':14s} {'setup s':>8s} {'compile ms':>10s} {'masks/step ms':>13s} "
        f"{'p95 ms':>7s} {'us/token':>8s} {'advance ms':>10s}  JSON-Schema coverage"
    )
    for name, factory in factories.items():
        try:
            t0 = time.perf_counter()
            driver = factory(tokenizer)
            setup = time.perf_counter() - t0
        except ImportError as exc:
            print(f"{name:14s} not installed ({exc})")
            continue
        cost = mask_cost(driver, tokenizer)
        refused, ignored = coverage(driver, tokenizer)
        print(
            f"{name:14s} {setup:8.2f} {cost['compile_ms']:10.1f} {cost['fill_ms']:13.3f} "
            f"{cost['fill_p95_ms']:7.3f} {cost['fill_ms'] * 1e3 / BATCH:8.1f} "
            f"{cost['accept_ms']:10.3f}  refused {len(refused)}/{len(COVERAGE)}: "
            f"{', '.join(refused) or '-'}; compiled but not enforced: {', '.join(ignored) or '-'}"
        )


if __name__ == "__main__":
    main()
