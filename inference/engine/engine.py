"""The engine: ``step()`` = schedule -> execute -> sample -> postprocess.

``Engine`` is synchronous and single-threaded (tests drive it step by step); the scheduler
decides what runs, the model runner runs it, the sampler picks tokens and the output processor
turns them into events.

Speculative decoding (``speculate`` > 0): a decode chunk may carry n-gram draft tokens, and
the runner returns a logits row after its token and after each draft. Every row is sampled
as usual (its penalties see the drafts before it); the drafts are accepted while each equals
the token sampled before it, and the first token that differs (or the one after the last
draft) is kept too. With a deterministic draft this is exactly speculative rejection
sampling: the draft's distribution is a point mass q on d, so d is accepted with probability
min(1, p(d)/q(d)) = p(d), and a rejection draws from max(0, p - q) renormalised, p without d;
a sample x ~ p does both at once (x = d with probability p(d), else x ~ p without d). Greedy
output is therefore the same token for token, and sampling keeps its distribution.

``inference.engine.async_engine`` runs the engine on a thread behind asyncio.
Must not import Django or the web framework.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import torch

from inference.batch import ScheduledChunk, SchedulerOutput, Sequence
from inference.config import EngineConfig
from inference.engine.grammar import GrammarCompiler
from inference.engine.grammar_masks import PendingMasks, StepMasks
from inference.engine.kv_cache import BlockManager
from inference.engine.output_processor import OutputProcessor, OutputState, SampledToken
from inference.engine.sampler import SamplerOutput, SamplerRow, sample
from inference.engine.scheduler import Scheduler, SchedulerConfig
from inference.model.loader import LoadedModel
from inference.model.runner import ModelRunner, RunnerOutput, build_runner
from inference.types import (
    GenerationError,
    GenerationEvent,
    Request,
    SamplingParams,
    resolve_seed,
)

logger = logging.getLogger(__name__)

DUPLICATE_REQUEST_ID = "A request with this id is already running"
PROMPT_TOO_LONG = "The prompt has {num_tokens} tokens; this model handles {max_positions} positions"
STEP_FAILED = "Generation failed: {error}"
WARMUP_ID = "__warmup__"


@dataclass
class _RequestState:
    """What the engine keeps per request: the scheduler's Sequence, the sampling generator
    (None when greedy) and what its events are built from."""

    seq: Sequence
    generator: torch.Generator | None
    output: OutputState


StepResult = tuple[str, GenerationEvent | GenerationError]


def step_failed(exc: BaseException) -> GenerationError:
    return GenerationError(STEP_FAILED.format(error=f"{type(exc).__name__}: {exc}"))


class Engine:
    """Synchronous core: add requests, call ``step()``, get (request_id, event|error) pairs."""

    def __init__(
        self,
        loaded: LoadedModel,
        config: EngineConfig,
        scheduler_config: SchedulerConfig | None = None,
        runner: ModelRunner | None = None,
    ) -> None:
        self.loaded = loaded
        self.config = config
        sched_config = scheduler_config or SchedulerConfig.from_engine_config(config)
        self.runner = runner or build_runner(
            loaded, sched_config.num_blocks, sched_config.block_size
        )
        if not self.runner.supports_prefix_caching and sched_config.enable_prefix_caching:
            sched_config = replace(sched_config, enable_prefix_caching=False)
        if not self.runner.supports_speculation and sched_config.speculate:
            logger.info("This model runner verifies no drafts: speculation is off")
            sched_config = replace(sched_config, speculate=0)
        sched_config = replace(
            sched_config,
            max_positions=loaded.max_position_embeddings,
            speculate_max_rows=self.runner.max_decode_rows,
        )
        # The runner may fit more blocks than asked in the same memory (a quantized KV dtype).
        num_blocks = getattr(self.runner, "num_blocks", None) or sched_config.num_blocks
        self.scheduler = Scheduler(
            sched_config,
            BlockManager(num_blocks, sched_config.block_size, sched_config.enable_prefix_caching),
        )
        self.states: dict[str, _RequestState] = {}
        vocab_size = getattr(getattr(loaded.model, "config", None), "vocab_size", None)
        self.grammars = GrammarCompiler(loaded.tokenizer, vocab_size)
        self.masks = StepMasks(self.grammars)
        self.max_total_tokens = min(loaded.max_position_embeddings, self.scheduler.capacity_tokens)
        self.outputs = OutputProcessor(
            loaded.tokenizer, loaded.eos_token_ids, self.max_total_tokens
        )
        self.last_batch_size = 0
        self.num_steps = 0
        # Distinct tokens-per-step counts run so far (the memory report's measure of how many
        # shapes the native caches have seen); bounded by the largest step.
        self.step_shapes: set[int] = set()
        self.step_shapes_limit = config.max_batch_prefill_tokens + config.max_batch_size
        self.num_draft_tokens = 0  # drafts verified (speculative decoding)
        self.num_accepted_tokens = 0  # of which accepted

    @property
    def speculate(self) -> int:
        """Draft tokens per decoding sequence and step (0: speculation is off)."""
        return self.scheduler.config.speculate

    @property
    def tokenizer(self):
        return self.loaded.tokenizer

    @property
    def num_waiting(self) -> int:
        return self.scheduler.num_waiting

    @property
    def num_running(self) -> int:
        return self.scheduler.num_running

    @property
    def num_used_blocks(self) -> int:
        """KV cache blocks held by requests (0 when idle: freed blocks keep only their hash)."""
        return self.scheduler.block_manager.num_used_blocks

    @property
    def num_blocks(self) -> int:
        return self.scheduler.block_manager.num_blocks

    @property
    def has_work(self) -> bool:
        return self.scheduler.has_work

    # -- requests ------------------------------------------------------------------------
    def add_request(self, request: Request) -> None:
        if request.request_id in self.states:
            raise ValueError(DUPLICATE_REQUEST_ID)
        if request.num_prompt_tokens >= self.loaded.max_position_embeddings:
            raise ValueError(
                PROMPT_TOO_LONG.format(
                    num_tokens=request.num_prompt_tokens,
                    max_positions=self.loaded.max_position_embeddings,
                )
            )
        params = request.params
        seed = generator = None
        if not params.is_greedy:
            seed = resolve_seed(params.seed)
            generator = torch.Generator(device=self.loaded.device).manual_seed(seed)
        matcher = self.grammars.matcher(params.grammar) if params.grammar is not None else None
        seq = Sequence(request)
        seq.uses_prefix_cache = not params.decoder_input_details
        output = self.outputs.new_state(request, seed, matcher)
        self.states[request.request_id] = _RequestState(seq, generator, output)
        self.scheduler.add(seq)

    def abort(self, request_id: str) -> bool:
        """Drop a request now and free its cache; False when it is unknown or already done."""
        state = self.states.pop(request_id, None)
        if state is None:
            return False
        self.scheduler.finish(state.seq)
        self.runner.release(request_id)
        return True

    def abort_all(self) -> list[str]:
        ids = list(self.states)
        for request_id in ids:
            self.abort(request_id)
        return ids

    # -- the step ------------------------------------------------------------------------
    @torch.inference_mode()
    def step(self) -> list[StepResult]:
        """Schedule, execute the model, sample, post-process: one event per token generated."""
        out, results = self._schedule()
        if out.is_empty:
            return results
        sampling = [c for c in out.chunks if c.is_last_chunk]
        masks = self._start_masks(sampling)  # written on a helper thread while the model runs
        try:
            run = self._execute(out)
            sampled = self._sample(sampling, run, masks)
        except Exception as exc:
            return results + self._fail(out, masks, exc)
        return results + self._postprocess(out, sampling, run, sampled)

    def _schedule(self) -> tuple[SchedulerOutput, list[StepResult]]:
        """The step's chunks, and an error for each request that can never be served."""
        out = self.scheduler.schedule()
        results: list[StepResult] = []
        for seq, message in out.failed:
            self.states.pop(seq.seq_id, None)
            results.append((seq.seq_id, GenerationError(message)))
        for seq in out.preempted:
            self.runner.release(seq.seq_id)
        self.last_batch_size = len(out.chunks)
        if not out.is_empty:
            self.num_steps += 1
            self.step_shapes.add(sum(c.num_new_tokens for c in out.chunks))
            now = time.monotonic()
            for chunk in out.chunks:
                output = self.states[chunk.seq.seq_id].output
                output.first_scheduled_at = output.first_scheduled_at or now
        return out, results

    def _start_masks(self, sampling: list[ScheduledChunk]) -> PendingMasks | None:
        matchers = [self.states[c.seq.seq_id].output.matcher for c in sampling]
        return self.masks.start([m for m in matchers if m is not None])

    def _execute(self, out: SchedulerOutput) -> RunnerOutput:
        wanted = {
            c.seq.seq_id
            for c in out.chunks
            if self.states[c.seq.seq_id].output.prompt_logprobs is not None
        }
        if out.block_copies:
            self.runner.copy_blocks(out.block_copies)
        return self.runner.execute(out.chunks, wanted)

    def _sample(
        self, sampling: list[ScheduledChunk], run: RunnerOutput, masks: PendingMasks | None
    ) -> SamplerOutput | None:
        """One sampled token per logits row: a chunk's row after its token, then one after
        each of its drafts (whose history includes the drafts before it)."""
        if not sampling:
            return None
        rows, num_masked = [], 0
        for chunk in sampling:
            state = self.states[chunk.seq.seq_id]
            outputs = state.seq.output_token_ids
            drafts = list(chunk.draft_token_ids)
            for i in range(len(drafts) + 1):
                row = SamplerRow(
                    params=state.output.request.params,
                    generator=state.generator,
                    prompt_token_ids=state.output.request.prompt_token_ids,
                    output_token_ids=outputs + drafts[:i] if i else outputs,
                )
                if state.output.matcher is not None:  # constrained chunks carry no drafts
                    row.mask_row, num_masked = num_masked, num_masked + 1
                rows.append(row)
        return sample(run.logits, rows, masks.wait() if masks else None)

    def _fail(
        self, out: SchedulerOutput, masks: PendingMasks | None, exc: Exception
    ) -> list[StepResult]:
        """The step failed: every request in it ends with the error, the others go on."""
        if masks is not None:
            masks.future.exception()  # never free a matcher llguidance is still reading
        logger.exception("Step failed")
        error = step_failed(exc)
        return [(c.seq.seq_id, error) for c in out.chunks if self.abort(c.seq.seq_id)]

    def _postprocess(
        self,
        out: SchedulerOutput,
        sampling: list[ScheduledChunk],
        run: RunnerOutput,
        sampled: SamplerOutput | None,
    ) -> list[StepResult]:
        """Advance every chunk, then turn each sampled token into its request's event."""
        for chunk in out.chunks:
            self.scheduler.update_computed(chunk)
        for seq_id, (first, values) in run.prompt_logprobs.items():
            self.outputs.add_prompt_logprobs(self.states[seq_id].output, first, values)
        results: list[StepResult] = []
        if sampled is None:
            return results
        row = 0
        for chunk in sampling:
            results += self._accept(chunk, sampled, row)
            row += 1 + len(chunk.draft_token_ids)
        return results

    def _accept(self, chunk: ScheduledChunk, sampled: SamplerOutput, row: int) -> list[StepResult]:
        """The events of one chunk's tokens: the first sampled token, then one more per
        draft while the drafts equal what was sampled before them (see the module doc)."""
        request_id = chunk.seq.seq_id
        state = self.states[request_id]
        drafts = chunk.draft_token_ids
        results: list[StepResult] = []
        for i in range(len(drafts) + 1):
            token = SampledToken(
                sampled.token_ids[row + i],
                sampled.logprobs[row + i],
                sampled.top_token_ids[row + i],
                sampled.top_logprobs[row + i],
            )
            state.seq.token_ids.append(token.token_id)
            try:
                event = self.outputs.process(state.output, token, state.seq.num_tokens)
            except GenerationError as error:  # this request only: the others go on
                self.abort(request_id)
                return [*results, (request_id, error)]
            results.append((request_id, event))
            if event.is_final:
                self.abort(request_id)  # done: free its slot and cache
                break
            if i == len(drafts) or token.token_id != drafts[i]:
                break
        num_accepted = len(results) - 1
        self.num_draft_tokens += len(drafts)
        self.num_accepted_tokens += num_accepted
        if drafts and request_id in self.states:
            self.scheduler.accept_drafts(state.seq, num_accepted)
        return results

    def warmup(self) -> None:
        """Run one short request through every stage (allocations, kernels, tokenizer)."""
        prompt = list(range(1, 17))
        request = Request(WARMUP_ID, prompt, SamplingParams(max_new_tokens=2, ignore_eos=True))
        self.add_request(request)
        while WARMUP_ID in self.states:
            self.step()
        self.last_batch_size = 0
