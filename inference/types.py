"""The engine's vocabulary: what a request asks for, what the engine answers, and the
`EngineClient` interface the API layer is written against.

Every other module (scheduler, sampler, engine, API) imports these shapes instead of
inventing its own. Must not import torch, Django or the web framework.
"""

from __future__ import annotations

import enum
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from inference.config import EngineConfig

MAX_SEED = 2**63 - 1
ENGINE_OVERLOADED = "Model is overloaded"
INVALID_SCHEMA = "Invalid JSON Schema: {0}"
INVALID_REGEX = "Invalid regex: {0}"
UNSUPPORTED_SCHEMA = "Unsupported JSON Schema feature: {0}"
SCHEMA_NOT_OBJECT = "a JSON Schema must be an object"


def resolve_seed(seed: int | None) -> int:
    """A sampled request's seed: its own, else a random one in [0, MAX_SEED]."""
    return seed if seed is not None else random.randint(0, MAX_SEED)


def distinct_seeds(n: int) -> list[int]:
    """`n` different random seeds (the sequences of one `best_of` request)."""
    seeds: set[int] = set()
    while len(seeds) < n:
        seeds.add(resolve_seed(None))
    return list(seeds)


class FinishReason(enum.StrEnum):
    """Why a sequence stopped, spelled as TGI spells it on the wire."""

    LENGTH = "length"
    EOS_TOKEN = "eos_token"
    STOP_SEQUENCE = "stop_sequence"


@dataclass(frozen=True)
class GrammarSpec:
    """A constraint on the generated text: ``kind`` "json" (``value``: a JSON Schema as
    canonical JSON text) or "regex" (``value``: the pattern). Hashable: the compile cache key."""

    kind: str
    value: str


class GrammarError(ValueError):
    """A grammar the engine cannot follow; the message says why, for a 422."""


def schema_text(schema: Any) -> str:
    """A schema's compact JSON text: the cache key, whether the client sent an object or text.

    NOTE: keys keep the client's order: llguidance writes an object's properties in the order
    of `properties`, which the client chose (a tool call's `_name` comes first)."""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise GrammarError(INVALID_SCHEMA.format(exc)) from exc
    if not isinstance(schema, dict):
        raise GrammarError(INVALID_SCHEMA.format(SCHEMA_NOT_OBJECT))
    return json.dumps(schema, separators=(",", ":"))


def json_grammar(schema: Any) -> GrammarSpec:
    """The spec of a JSON-Schema constraint (schema given as a dict or as JSON text)."""
    return GrammarSpec(kind="json", value=schema_text(schema))


def regex_grammar(pattern: str) -> GrammarSpec:
    return GrammarSpec(kind="regex", value=pattern)


@dataclass(frozen=True)
class SamplingParams:
    """How to pick the next tokens of one request (TGI's parameter names).

    Greedy when ``do_sample`` is false or ``temperature`` is 0. Values are already
    validated by the API layer; ``__post_init__`` only guards internal callers.
    """

    max_new_tokens: int = 100
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0  # 0: disabled
    top_p: float = 1.0  # 1.0: disabled
    typical_p: float = 1.0  # 1.0: disabled
    repetition_penalty: float = 1.0  # 1.0: disabled (multiplicative, CTRL-style)
    frequency_penalty: float = 0.0  # 0.0: disabled (additive, per occurrence)
    presence_penalty: float = 0.0  # 0.0: disabled (additive, once per seen token)
    seed: int | None = None  # engine picks one when sampling without a seed
    stop: tuple[str, ...] = ()
    top_n_tokens: int = 0  # alternatives reported per generated token
    decoder_input_details: bool = False  # report prompt tokens with logprobs
    ignore_eos: bool = False
    grammar: GrammarSpec | None = None  # the output must match it (masks in the sampler)

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")

    @property
    def is_greedy(self) -> bool:
        return not self.do_sample or self.temperature == 0.0


@dataclass
class Request:
    """One generation asked of the engine: already-tokenised prompt plus sampling params."""

    request_id: str
    prompt_token_ids: list[int]
    params: SamplingParams
    arrival_time: float = field(default_factory=time.monotonic)

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)


@dataclass(frozen=True)
class TokenInfo:
    """One token as reported to clients (TGI's `Token` / `PrefillToken`)."""

    id: int
    text: str
    logprob: float | None
    special: bool = False


@dataclass
class GenerationEvent:
    """One step of one request, streamed by ``AsyncEngine.generate``.

    ``text`` is the UTF-8-safe text this token added (may be "" while a multi-byte
    character is incomplete). The last event has ``finish_reason`` set and carries the
    request's totals.
    """

    request_id: str
    index: int  # 1-based position of this generated token
    token: TokenInfo
    text: str
    top_tokens: list[TokenInfo] = field(default_factory=list)
    prefill: list[TokenInfo] | None = None  # only on the first event, when asked
    finish_reason: FinishReason | None = None
    # Totals, set on the final event only.
    num_prompt_tokens: int = 0
    num_generated_tokens: int = 0
    seed: int | None = None
    queued_at: float = 0.0  # time.monotonic() stamps
    first_scheduled_at: float = 0.0
    finished_at: float = 0.0

    @property
    def is_final(self) -> bool:
        return self.finish_reason is not None


class EngineOverloadedError(RuntimeError):
    """The engine cannot accept another request right now (maps to HTTP 429)."""


class GenerationError(RuntimeError):
    """A request failed while generating (maps to HTTP 424)."""


class Permit:
    """One admitted client request; release it exactly once (later calls do nothing)."""

    def __init__(self, limiter: ConcurrencyLimiter) -> None:
        self._limiter = limiter
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._limiter.in_flight -= 1


class ConcurrencyLimiter:
    """`max_concurrent_requests`: the next request beyond it is refused at once.

    Used from one event loop only, so it needs no lock.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def acquire(self) -> Permit:
        """A permit, or EngineOverloadedError when `limit` are held."""
        if self.in_flight >= self.limit:
            raise EngineOverloadedError(ENGINE_OVERLOADED)
        self.in_flight += 1
        return Permit(self)


@dataclass(frozen=True)
class EngineLoad:
    """A snapshot of the engine's queues and KV cache (the `/metrics` gauges)."""

    num_waiting: int  # requests not scheduled yet
    num_running: int  # requests holding cache blocks
    last_batch_size: int  # sequences in the last step
    num_used_blocks: int
    num_blocks: int
    speculate: int = 0  # draft tokens per decoding sequence and step (0: speculation is off)
    num_draft_tokens: int = 0  # drafts verified since start
    num_accepted_tokens: int = 0  # of which accepted


class GrammarValidator(Protocol):
    """What validation asks of the engine's grammar compiler: compile a spec (cached, so the
    engine reuses it) or raise `GrammarError` with the reason."""

    def compile(self, spec: GrammarSpec) -> str: ...


class ServedModel(Protocol):
    """The facts of the model being served that `/info` and the headers report."""

    model_id: str
    dtype: Any  # a torch.dtype; printed, never computed with here
    quantize: str | None
    kv_cache_dtype: str  # how the KV cache stores keys and values ("bfloat16", "int8", ...)
    kv_cache_tokens: int | None  # tokens the paged KV cache holds (None: no shared cache)
    device: Any  # a torch.device; `/info` reads its `type`
    runner: str | None  # the path serving it: "fused", "transformers", "fallback" (None: unknown)
    runner_reason: str | None  # why that path


class EngineClient(Protocol):
    """What the API layer asks of an engine; `inference.engine.async_engine.AsyncEngine` is the one
    this project serves. Admission happens here: `admit()` is the only concurrency check."""

    config: EngineConfig  # the limits validation enforces
    loaded: ServedModel  # the model served (/info reads its id, dtype, device, quantization)
    limiter: ConcurrencyLimiter
    is_ready: bool  # warmed up and stepping

    @property
    def tokenizer(self) -> Any: ...

    @property
    def grammars(self) -> GrammarValidator: ...

    def load(self) -> EngineLoad: ...

    def diagnostics(self) -> dict[str, Any]:
        """Sizes and limits of what the engine keeps (the memory report, `/debug/memory`)."""
        ...

    async def start(self) -> None: ...

    async def shutdown(self) -> None: ...

    def admit(self) -> Permit: ...

    def generate(
        self, request: Request, permit: Permit | None = None
    ) -> AsyncIterator[GenerationEvent]: ...
