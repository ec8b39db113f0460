"""Constrained decoding: grammars compiled by llguidance, one matcher per constrained request.

Owns the bridge to llguidance: a JSON Schema or a regex (a ``GrammarSpec`` of the vocabulary,
``inference.types``) becomes a validated llguidance grammar
(cached by its text, bounded LRU), each constrained request gets an ``LLMatcher`` that follows
its tokens, and a step's masks are written for all constrained rows at once into a bitmask
(one bit per token, 32 to an int32) that the sampler applies. Why llguidance: see the README
("Structured output"); ``bench/grammar_engines.py`` measures it against xgrammar and
outlines-core.

Must not import torch (the caller owns the bitmask tensor and passes its address), the
scheduler or the web framework.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import llguidance

from inference.types import (
    INVALID_REGEX,
    INVALID_SCHEMA,
    UNSUPPORTED_SCHEMA,
    GrammarError,
    GrammarSpec,
)

GRAMMAR_CACHE_SIZE = 256  # compiled grammars kept, least recently used dropped first
# JSON as `json.dumps` writes it, whitespace fixed: a model cannot pad an answer with endless
# blanks, and the separators are the ones models saw most in training.
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def _message(spec: GrammarSpec, errors: list[str]) -> str:
    """One readable line: llguidance's regex errors quote the pattern over several lines."""
    detail = "; ".join(e.strip() for e in errors) or "rejected"
    if spec.kind == "regex":
        reasons = [ln[6:].strip() for ln in detail.splitlines() if ln.startswith("error:")]
        reason = reasons[0] if reasons else " ".join(detail.split())
        return INVALID_REGEX.format(f"{json.dumps(spec.value)}: {reason}")
    detail = " ".join(detail.split())
    if "Unimplemented" in detail or "not supported" in detail.lower():
        return UNSUPPORTED_SCHEMA.format(detail)
    return INVALID_SCHEMA.format(detail)


LLTOKENIZER_CACHE_SIZE = 4  # vocabularies kept (a server has one; tests make several)
# NOTE: each entry holds its tokenizer, so a recycled id() never matches a dead one.
_LLTOKENIZERS: OrderedDict[tuple[int, int], tuple[Any, llguidance.LLTokenizer]] = OrderedDict()
_LLTOKENIZERS_LOCK = threading.Lock()


def llg_tokenizer(tokenizer: Any, vocab_size: int) -> llguidance.LLTokenizer:
    """llguidance's view of the vocabulary, built once per tokenizer (1-2 s) and shared; the
    least recently used is dropped beyond ``LLTOKENIZER_CACHE_SIZE``."""
    key = (id(tokenizer), vocab_size)
    with _LLTOKENIZERS_LOCK:
        entry = _LLTOKENIZERS.get(key)
        if entry is None or entry[0] is not tokenizer:
            import llguidance.hf

            entry = (tokenizer, llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size))
            _LLTOKENIZERS[key] = entry
        _LLTOKENIZERS.move_to_end(key)
        while len(_LLTOKENIZERS) > LLTOKENIZER_CACHE_SIZE:
            _LLTOKENIZERS.popitem(last=False)
        return entry[1]


class GrammarCompiler:
    """Compiles grammar specs for one tokenizer, caches them, and makes matchers.

    Thread-safe: the API validates (and so compiles) in worker threads, the engine thread makes
    matchers from the same cache.
    """

    def __init__(
        self, tokenizer: Any, vocab_size: int | None = None, cache_size: int = GRAMMAR_CACHE_SIZE
    ) -> None:
        self._hf_tokenizer = tokenizer
        self._vocab_size = max(len(tokenizer), vocab_size or 0)
        self._cache: OrderedDict[GrammarSpec, str] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._lltok: llguidance.LLTokenizer | None = None
        self._executor: llguidance.LLExecutor | None = None

    @property
    def vocab_size(self) -> int:
        """Width of a mask row in tokens (the model's logits may be wider than the tokenizer)."""
        return self._vocab_size

    @property
    def mask_words(self) -> int:
        return (self._vocab_size + 31) // 32

    def _llg(self) -> llguidance.LLTokenizer:
        if self._lltok is None:
            self._lltok = llg_tokenizer(self._hf_tokenizer, self._vocab_size)
        return self._lltok

    def compile(self, spec: GrammarSpec) -> str:
        """The validated llguidance grammar of ``spec``; raises GrammarError with the reason."""
        with self._lock:
            cached = self._cache.get(spec)
            if cached is not None:
                self._cache.move_to_end(spec)
                return cached
        lltok = self._llg()
        try:
            if spec.kind == "json":
                grammar = llguidance.LLMatcher.grammar_from_json_schema(
                    spec.value, overrides=JSON_OPTIONS
                )
            elif spec.kind == "regex":
                grammar = llguidance.LLMatcher.grammar_from_regex(spec.value)
            else:
                raise GrammarError(f"unknown grammar type {spec.kind!r}")
        except ValueError as exc:
            raise GrammarError(INVALID_SCHEMA.format(exc)) from exc
        is_error, errors = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, lltok)
        if is_error:
            raise GrammarError(_message(spec, errors))
        with self._lock:
            self._cache[spec] = grammar
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return grammar

    @property
    def num_cached(self) -> int:
        return len(self._cache)

    def is_cached(self, spec: GrammarSpec) -> bool:
        """Whether ``spec``'s grammar is kept (compiling it again would cost nothing)."""
        with self._lock:
            return spec in self._cache

    @property
    def cache_size(self) -> int:
        """The most compiled grammars kept."""
        return self._cache_size

    def matcher(self, spec: GrammarSpec) -> llguidance.LLMatcher:
        """A fresh matcher at the start of ``spec``'s grammar."""
        grammar = self.compile(spec)
        matcher = llguidance.LLMatcher(self._llg(), grammar, log_level=0)
        if matcher.is_error():
            raise GrammarError(_message(spec, [matcher.get_error()]))
        return matcher

    def fill_masks(
        self, rows: list[tuple[llguidance.LLMatcher, int]], address: int, num_rows: int
    ) -> None:
        """Write each matcher's allowed tokens into row ``i`` of an int32 bitmask at ``address``
        ([num_rows, mask_words], C-contiguous). Drops the GIL while it works."""
        if self._executor is None:
            self._executor = llguidance.LLExecutor()
        self._executor.unsafe_compute_mask_ptr(rows, address, self.mask_words * 4, num_rows)


def consume(matcher: llguidance.LLMatcher, token_id: int) -> bool:
    """Advance ``matcher`` past a sampled token; False when the grammar refused it."""
    return bool(matcher.consume_token(token_id))


def is_complete(matcher: llguidance.LLMatcher) -> bool:
    """The grammar allows nothing more (the answer is whole): the request can stop."""
    return bool(matcher.is_stopped())
