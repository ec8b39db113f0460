"""Request validation: TGI's rules and messages, turning wire parameters into engine params.

Mirrors TGI's router `validation.rs` (same order, same messages) with two deliberate fixes:
`top_p` (and `typical_p`) = 1.0 is accepted as "disabled", and `temperature` = 0 means greedy.
Must not import torch or the web framework; the tokenizer is anything with `encode`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

from inference.api.errors import ValidationFailed
from inference.api.grammars import grammar_spec
from inference.config import EngineConfig
from inference.types import GrammarError, GrammarValidator, SamplingParams, resolve_seed

# TGI's `ValidationError` strings (router/src/validation.rs), word for word.
BEST_OF = "`best_of` must be > 0 and <= {0}. Given: {1}"
BEST_OF_DISABLED = "`best_of` != 1 is not allowed for this endpoint"
BEST_OF_SAMPLING = "you must use sampling when `best_of` is > 1"
BEST_OF_SEED = "`seed` must not be set when `best_of` > 1"
BEST_OF_STREAM = "`best_of` != 1 is not supported when streaming tokens"
TOP_N_TOKENS = "`top_n_tokens` must be >= 0 and <= {0}. Given: {1}"
PREFILL_DETAILS_STREAM = "`decoder_input_details` == true is not supported when streaming tokens"
TEMPERATURE = "`temperature` must be strictly positive"
REPETITION_PENALTY = "`repetition_penalty` must be strictly positive"
FREQUENCY_PENALTY = "`frequency_penalty` must be >= -2.0 and <= 2.0"
TOP_P = "`top_p` must be > 0.0 and < 1.0"
TOP_K = "`top_k` must be strictly positive"
TRUNCATE = "`truncate` must be strictly positive and less than {0}. Given: {1}"
TYPICAL_P = "`typical_p` must be > 0.0 and < 1.0"
NEGATIVE_MAX_NEW_TOKENS = "`max_new_tokens` must be strictly positive"
MAX_TOTAL_TOKENS = (
    "`inputs` tokens + `max_new_tokens` must be <= {0}. "
    "Given: {1} `inputs` tokens and {2} `max_new_tokens`"
)
MAX_NEW_TOKENS = "`max_new_tokens` must be < `max_total_tokens` ({0}). Given: {1}"
INPUT_LENGTH = "`inputs` must have less than {0} tokens. Given: {1}"
EMPTY_INPUT = "`inputs` cannot be empty"
STOP_SEQUENCE = "`stop` supports up to {0} stop sequences. Given: {1}"
GRAMMAR = "grammar is not supported"  # by an engine without a grammar compiler
# This server's own refusals, in the same voice.
WATERMARK = "`watermark` is not supported"
ADAPTER_ID = "`adapter_id` is not supported: this server loads no LoRA adapters"
SEED = "`seed` must be >= 0 and < 2**64"
PRESENCE_PENALTY = "`presence_penalty` must be >= -2.0 and <= 2.0"
MAX_COMPLETION_TOKENS = "`max_completion_tokens` must be > 0 and < {0}. Given: {1}"
N_CHOICES = "`n` must be 1: several choices per request are not supported"
IMAGE_CONTENT = "image content is not supported: this model reads text only"
SUFFIX = "Suffix is not supported and can be achieved by preprocessing the prompt."
CLIENT_BATCH_SIZE = "Number of prompts exceeds the maximum allowed batch size of {0}"
EMPTY_PROMPT_LIST = "Empty array detected. Do not use an empty array for the prompt."

DEFAULT_GENERATION_LENGTH = 1024  # TGI v3: `max_new_tokens` absent -> up to this many
MAX_TOP_K = 2**31 - 1  # when the tokenizer does not say its vocabulary size


class Tokenizer(Protocol):
    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...


@dataclass(frozen=True)
class ValidRequest:
    """A validated generation: token ids for the engine plus what the response must carry."""

    inputs: str
    prompt_token_ids: list[int]
    params: SamplingParams
    best_of: int = 1
    details: bool = False
    decoder_input_details: bool = False
    return_full_text: bool = False

    @property
    def input_length(self) -> int:
        return len(self.prompt_token_ids)

    def with_seed(self, seed: int) -> ValidRequest:
        return replace(self, params=replace(self.params, seed=seed))


def fail(detail: str) -> ValidationFailed:
    return ValidationFailed(detail)


def require_inputs(inputs: str) -> None:
    if not inputs:
        raise fail(EMPTY_INPUT)


@dataclass(frozen=True)
class CheckedParameters:
    """Parameters that passed every rule that does not depend on the prompt's tokens."""

    best_of: int
    temperature: float
    top_k: int
    top_p: float
    typical_p: float
    repetition_penalty: float
    frequency_penalty: float
    presence_penalty: float
    top_n_tokens: int
    stop: tuple[str, ...]


class Validator:
    """Checks requests against the engine's limits and tokenises them (TGI's `Validation`).

    NOTE: every range check is written so that NaN fails it (`not lo <= x`), although the
    request models already refuse non-finite numbers: the validator is the last gate.
    """

    def __init__(
        self, tokenizer: Tokenizer, limits: EngineConfig, grammars: GrammarValidator | None = None
    ) -> None:
        self.tokenizer = tokenizer
        self.limits = limits
        self.grammars = grammars
        # A `top_k` beyond the vocabulary keeps every token: clamped, it fits the engine's int64.
        self.vocab_size = len(tokenizer) if hasattr(tokenizer, "__len__") else MAX_TOP_K

    def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def check_parameters(
        self,
        parameters: Any,
        *,
        stream: bool = False,
        presence_penalty: float | None = None,
    ) -> CheckedParameters:
        """TGI's rules in TGI's order, up to tokenisation; raise `ValidationFailed`."""
        p = parameters
        limits = self.limits
        if p.watermark:
            raise fail(WATERMARK)
        if p.adapter_id is not None:
            raise fail(ADAPTER_ID)

        best_of = 1 if p.best_of is None else p.best_of
        if best_of != 1:
            if stream:
                raise fail(BEST_OF_STREAM)
            if limits.max_best_of == 1:
                raise fail(BEST_OF_DISABLED)
            if best_of < 1 or best_of > limits.max_best_of:
                raise fail(BEST_OF.format(limits.max_best_of, best_of))
        if stream and p.decoder_input_details:
            raise fail(PREFILL_DETAILS_STREAM)

        asks_sampling = p.do_sample or any(
            v is not None for v in (p.temperature, p.top_k, p.top_p, p.typical_p)
        )
        if best_of > 1 and not asks_sampling:
            raise fail(BEST_OF_SAMPLING)

        temperature = 1.0 if p.temperature is None else p.temperature
        if not temperature >= 0.0:  # NOTE: 0 is accepted and means greedy (TGI rejects it)
            raise fail(TEMPERATURE)
        repetition_penalty = 1.0 if p.repetition_penalty is None else p.repetition_penalty
        if not repetition_penalty > 0.0:
            raise fail(REPETITION_PENALTY)
        frequency_penalty = 0.0 if p.frequency_penalty is None else p.frequency_penalty
        if not -2.0 <= frequency_penalty <= 2.0:
            raise fail(FREQUENCY_PENALTY)
        presence_penalty = 0.0 if presence_penalty is None else presence_penalty
        if not -2.0 <= presence_penalty <= 2.0:
            raise fail(PRESENCE_PENALTY)
        top_p = 1.0 if p.top_p is None else p.top_p
        if not 0.0 < top_p <= 1.0:  # NOTE: 1.0 accepted as "no top-p" (TGI rejects it)
            raise fail(TOP_P)
        typical_p = 1.0 if p.typical_p is None else p.typical_p
        if not 0.0 < typical_p <= 1.0:
            raise fail(TYPICAL_P)
        top_k = 0 if p.top_k is None else p.top_k
        if p.top_k is not None and top_k <= 0:
            raise fail(TOP_K)
        if p.max_new_tokens is not None and p.max_new_tokens <= 0:
            raise fail(NEGATIVE_MAX_NEW_TOKENS)
        stop = tuple(p.stop or ())
        if len(stop) > limits.max_stop_sequences:
            raise fail(STOP_SEQUENCE.format(limits.max_stop_sequences, len(stop)))
        if p.seed is not None:
            if best_of > 1:
                raise fail(BEST_OF_SEED)
            if not 0 <= p.seed < 2**64:
                raise fail(SEED)
        top_n_tokens = 0 if p.top_n_tokens is None else p.top_n_tokens
        if not 0 <= top_n_tokens <= limits.max_top_n_tokens:
            raise fail(TOP_N_TOKENS.format(limits.max_top_n_tokens, top_n_tokens))
        if p.truncate is not None and not 0 < p.truncate <= limits.max_input_tokens:
            raise fail(TRUNCATE.format(limits.max_input_tokens, p.truncate))
        return CheckedParameters(
            best_of=best_of,
            temperature=temperature,
            top_k=min(top_k, self.vocab_size),
            top_p=top_p,
            typical_p=typical_p,
            repetition_penalty=repetition_penalty,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
            top_n_tokens=top_n_tokens,
            stop=stop,
        )

    def check_new_tokens_bound(self, parameters: Any) -> None:
        """For routes that only tokenize: refuse a `max_new_tokens` no prompt could fit, as the
        generation routes would (every prompt is at least one token)."""
        limit, wanted = self.limits.max_total_tokens, parameters.max_new_tokens
        if wanted is not None and wanted >= limit:
            raise fail(MAX_NEW_TOKENS.format(limit, wanted))

    def validate(
        self,
        inputs: str,
        parameters: Any,
        *,
        stream: bool = False,
        add_special_tokens: bool = True,
        presence_penalty: float | None = None,
    ) -> ValidRequest:
        """Every rule, then tokenise and check the token budget. Slow for long inputs: call
        it off the event loop (`inference.api.routes.common.validate`)."""
        p = parameters
        limits = self.limits
        c = self.check_parameters(parameters, stream=stream, presence_penalty=presence_penalty)
        require_inputs(inputs)
        token_ids = self.tokenize(inputs, add_special_tokens=add_special_tokens)
        if not token_ids:
            # NOTE: text made only of what the tokenizer drops (e.g. "\x04"): the model reads
            # its start-of-text token (or end-of-text) instead, as llama.cpp does for no prompt.
            start = getattr(self.tokenizer, "bos_token_id", None)
            start = getattr(self.tokenizer, "eos_token_id", None) if start is None else start
            token_ids = [start] if start is not None else token_ids
        if p.truncate is not None:
            token_ids = token_ids[-p.truncate :]
        input_length = len(token_ids)
        if p.max_new_tokens is not None:
            max_new_tokens = p.max_new_tokens
        else:
            room = max(limits.max_total_tokens - input_length, 0)
            max_new_tokens = min(room, DEFAULT_GENERATION_LENGTH)
        if input_length + max_new_tokens > limits.max_total_tokens:
            raise fail(
                MAX_TOTAL_TOKENS.format(limits.max_total_tokens, input_length, max_new_tokens)
            )
        if input_length > limits.max_input_tokens or max_new_tokens < 1:
            raise fail(INPUT_LENGTH.format(limits.max_input_tokens, input_length))

        grammar = grammar_spec(p.grammar)
        if grammar is not None:
            if self.grammars is None:
                raise fail(GRAMMAR)
            try:
                self.grammars.compile(grammar)  # cached: the engine reuses it
            except GrammarError as exc:
                raise fail(str(exc)) from exc

        # TGI samples whenever a warper is active, even with `do_sample` false.
        warpers = c.temperature != 1.0 or c.top_k != 0 or c.top_p < 1.0 or c.typical_p < 1.0
        do_sample = (p.do_sample or warpers) and c.temperature != 0.0
        params = SamplingParams(
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=c.temperature,
            top_k=c.top_k,
            top_p=c.top_p,
            typical_p=c.typical_p,
            repetition_penalty=c.repetition_penalty,
            frequency_penalty=c.frequency_penalty,
            presence_penalty=c.presence_penalty,
            seed=resolve_seed(p.seed),
            stop=c.stop,
            top_n_tokens=c.top_n_tokens,
            decoder_input_details=p.decoder_input_details,
            grammar=grammar,
            ignore_eos=p.ignore_eos,
        )
        return ValidRequest(
            inputs=inputs,
            prompt_token_ids=token_ids,
            params=params,
            best_of=c.best_of,
            details=p.details or p.decoder_input_details,
            decoder_input_details=p.decoder_input_details,
            return_full_text=bool(p.return_full_text),
        )
