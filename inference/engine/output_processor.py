"""From sampled tokens to the events clients see (vLLM v1's OutputProcessor idea).

Per request it keeps the detokenizer, the stopping criteria and the grammar matcher; per
token it turns (id, logprob, alternatives) into a `GenerationEvent`: the UTF-8-safe text delta,
the stop decision, the grammar's advance, the prompt's tokens on the first event and the totals
on the last. It owns the one rule for which tokens are special. Must not import torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from inference.engine.detokenizer import REPLACEMENT_CHAR, IncrementalDetokenizer
from inference.engine.grammar import consume, is_complete
from inference.engine.stopping import StoppingCriteria
from inference.engine.token_bytes import byte_level_table
from inference.types import FinishReason, GenerationError, GenerationEvent, Request, TokenInfo

GRAMMAR_REFUSED = "The grammar refused token {token_id}: {error}"


@dataclass
class OutputState:
    """What one request's events are built from, beside the scheduler's Sequence."""

    request: Request
    detokenizer: IncrementalDetokenizer
    stopping: StoppingCriteria
    seed: int | None
    matcher: Any = None  # llguidance.LLMatcher when the request has a grammar
    prompt_logprobs: list[float | None] | None = None  # when the request asked for them
    num_generated: int = 0
    first_scheduled_at: float = 0.0
    sent_prefill: bool = False


@dataclass(frozen=True)
class SampledToken:
    """One sampled token of one request with its logprob and the top alternatives."""

    token_id: int
    logprob: float
    top_ids: list[int]
    top_logprobs: list[float]


class OutputProcessor:
    """Builds every request's events; one per engine (it holds the tokenizer's facts)."""

    def __init__(self, tokenizer: Any, eos_token_ids: set[int], max_total_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.eos_token_ids = eos_token_ids
        self.max_total_tokens = max_total_tokens
        self.special_ids = frozenset(getattr(tokenizer, "all_special_ids", ()) or ())
        # Built once: every request's detokenizer looks its tokens' bytes up in it.
        self.token_bytes = byte_level_table(tokenizer)
        self._texts: dict[int, str] = {}  # each token on its own, as `token.text` spells it

    def is_special(self, token_id: int) -> bool:
        """An end-of-sequence token or one of the tokenizer's special tokens."""
        return token_id in self.eos_token_ids or token_id in self.special_ids

    def new_state(self, request: Request, seed: int | None, matcher: Any = None) -> OutputState:
        params = request.params
        state = OutputState(
            request=request,
            detokenizer=IncrementalDetokenizer(
                self.tokenizer,
                request.prompt_token_ids,
                special_ids=self.special_ids,
                token_bytes=self.token_bytes,
            ),
            stopping=StoppingCriteria(params, self.eos_token_ids, self.max_total_tokens),
            seed=seed,
            matcher=matcher,
        )
        if params.decoder_input_details:
            state.prompt_logprobs = [None] * request.num_prompt_tokens
        return state

    def add_prompt_logprobs(self, state: OutputState, first: int, values: list[float]) -> None:
        """Prompt logprobs of one chunk, from prompt position `first` on."""
        if state.prompt_logprobs is not None:
            state.prompt_logprobs[first : first + len(values)] = values

    def token_text(self, token_id: int) -> str:
        """The token on its own, special tokens spelled out (decoded once per token id)."""
        text = self._texts.get(token_id)
        if text is None:
            text = self._texts[token_id] = self.tokenizer.decode(
                [token_id], skip_special_tokens=False
            )
        return text

    def token_info(self, token_id: int, logprob: float | None) -> TokenInfo:
        return TokenInfo(
            id=token_id,
            text=self.token_text(token_id),
            logprob=logprob,
            special=self.is_special(token_id),
        )

    def process(
        self, state: OutputState, sampled: SampledToken, num_tokens: int
    ) -> GenerationEvent:
        """The event for one new token (`num_tokens`: prompt + generated, this one included).

        The event is final (`finish_reason` set, totals filled) when the request is done.
        Raises GenerationError when the request's grammar refuses the token.
        """
        token_id = sampled.token_id
        state.num_generated += 1
        is_eos = token_id in self.eos_token_ids
        special = self.is_special(token_id)
        text = state.detokenizer.add(token_id)
        if is_eos or (special and state.detokenizer.skip_special_tokens):
            text = ""
        finish = state.stopping.check(token_id, text, num_tokens)
        if state.matcher is not None and finish is None:
            if not consume(state.matcher, token_id):
                raise GenerationError(
                    GRAMMAR_REFUSED.format(token_id=token_id, error=state.matcher.get_error())
                )
            if is_complete(state.matcher):
                finish = FinishReason.EOS_TOKEN  # the answer is whole: nothing else may follow
        if finish is not None:
            rest = state.detokenizer.flush()
            # A special last token streams its own spelling, never this text: an unfinished
            # character before it is dropped, so the final text is what the stream showed.
            text += rest.rstrip(REPLACEMENT_CHAR) if special else rest
        token_text = self.token_text(token_id) if special else text
        event = GenerationEvent(
            request_id=state.request.request_id,
            index=state.num_generated,
            token=TokenInfo(id=token_id, text=token_text, logprob=sampled.logprob, special=special),
            text=text,
            top_tokens=[
                self.token_info(t, lp)
                for t, lp in zip(sampled.top_ids, sampled.top_logprobs, strict=True)
            ],
        )
        if not state.sent_prefill:
            state.sent_prefill = True
            event.prefill = self._prefill(state)
        if finish is not None:
            self._finish(state, event, finish)
        return event

    def _prefill(self, state: OutputState) -> list[TokenInfo] | None:
        """The prompt's tokens with their logprobs (the first has none), when asked for."""
        if state.prompt_logprobs is None:
            return None
        return [
            self.token_info(t, None if i == 0 else state.prompt_logprobs[i])
            for i, t in enumerate(state.request.prompt_token_ids)
        ]

    def _finish(self, state: OutputState, event: GenerationEvent, reason: FinishReason) -> None:
        event.finish_reason = reason
        event.num_prompt_tokens = state.request.num_prompt_tokens
        event.num_generated_tokens = state.num_generated
        event.seed = state.seed
        event.queued_at = state.request.arrival_time
        event.first_scheduled_at = state.first_scheduled_at
        event.finished_at = time.monotonic()
