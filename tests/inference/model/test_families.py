"""Every decoder-only family through the engine, against transformers' ``generate``.

One row per family (``tests.support.tiny_families``): a tiny random model in float32, served
by the runner ``build_runner`` picks for it (and the fused Llama families once more through
the transformers backend). Several sequences of different lengths run concurrently with a
small prefill budget, so long prompts are chunked while others decode (and cross the
families' sliding windows); a follow-up request then reuses the first round's cached prefix.
Greedy tokens must equal ``generate``'s on the same weights, and every generated and prompt
token's logprob must be within 1e-4.

Batch-dependent RoPE (``dynamic``, ``longrope``) chooses its frequencies from the longest
position in a forward, so a packed batch matches ``generate`` only while every position stays
on one side of the original context length: these rows keep all positions below it (256).
"""

from __future__ import annotations

import copy

import pytest
import torch

from inference.config import EngineConfig
from inference.cpu import Isa, LinearPath, cpu_info
from inference.engine.engine import Engine
from inference.engine.scheduler import SchedulerConfig
from inference.model import quant_loader
from inference.model.backend_linears import ProjectionLinear
from inference.model.linear import QuantizedWeights, QuantProjection, linear_path
from inference.model.runner import HFModelRunner, PagedModelRunner
from inference.model.transformers_backend import TransformersPagedRunner
from inference.types import GenerationEvent
from tests.inference.factories import make_request, run_to_completion
from tests.support.tiny_families import FAMILIES, build_tiny_family

LIMITS = EngineConfig(
    max_input_tokens=400,
    max_total_tokens=512,
    max_batch_prefill_tokens=32,  # the 70-token prompt is computed in 3 chunks
    max_batch_total_tokens=4096,
    max_batch_size=16,
)
BLOCK_SIZE = 16
NEW_TOKENS = 8
PROMPTS = [
    [5, 9, 13],
    list(range(100, 117)),
    [(i * 37) % 500 + 7 for i in range(45)],
    [(i * 53) % 500 + 3 for i in range(70)],
]
LOGPROB_PROMPT = [(i * 29) % 500 + 11 for i in range(40)]
TOLERANCE = 1e-4

FUSED = {"llama", "llama-rope-llama3", "llama-rope-linear", "llama-rope-yarn"}
FALLBACK = {"falcon"}  # its attention does not go through transformers' AttentionInterface
RUNNERS = {"fused": PagedModelRunner, "transformers": TransformersPagedRunner}
RUNNERS["fallback"] = HFModelRunner


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny matmuls gain nothing from threads, and spinning ones wait on every other test
    process sharing these cores (~20x slower under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def expected_path(family: str) -> str:
    return "fused" if family in FUSED else "fallback" if family in FALLBACK else "transformers"


CASES = [(family, expected_path(family)) for family in FAMILIES]
CASES += [(family, "transformers") for family in FAMILIES if family in FUSED]


def reference(model, prompt: list[int], n: int) -> tuple[list[int], list[float]]:
    """``generate``'s greedy tokens and each one's logprob (no end-of-sequence stop)."""
    out = model.generate(
        torch.tensor([prompt]),
        max_new_tokens=n,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=0,
        output_logits=True,
        return_dict_in_generate=True,
    )
    tokens = out.sequences[0, len(prompt) :].tolist()
    logprobs = [
        logits[0].float().log_softmax(-1)[t].item()
        for logits, t in zip(out.logits, tokens, strict=True)
    ]
    return tokens, logprobs


def reference_prompt_logprobs(model, prompt: list[int]) -> list[float]:
    logits = model(torch.tensor([prompt])).logits[0].float()
    values = logits[:-1].log_softmax(-1).gather(1, torch.tensor(prompt[1:]).unsqueeze(1))
    return values.squeeze(1).tolist()


def generated(events: list) -> tuple[list[int], list[float]]:
    tokens = [e.token for e in events if isinstance(e, GenerationEvent)]
    return [t.id for t in tokens], [t.logprob for t in tokens]


def assert_matches(events: list, model, prompt: list[int]) -> None:
    tokens, logprobs = generated(events)
    expected_tokens, expected_logprobs = reference(model, prompt, NEW_TOKENS)
    assert tokens == expected_tokens
    assert logprobs == pytest.approx(expected_logprobs, abs=TOLERANCE)


@pytest.mark.parametrize(("family", "path"), CASES, ids=[f"{f}-{p}" for f, p in CASES])
@torch.inference_mode()
def test_engine_matches_transformers_generate(family: str, path: str) -> None:
    check_family(family, path)


@pytest.mark.parametrize("tier", ["avx2"], indirect=True)
@pytest.mark.parametrize("family", ["llama", "qwen3", "gemma2"])
@torch.inference_mode()
def test_an_avx2_only_cpu_serves_the_families_alike(family: str, tier: str) -> None:
    """The same rows with the tier forced to AVX2 (no AVX-512, no native bf16): each
    projection chooses its path for that tier at load (``inference.cpu``)."""
    assert cpu_info().isa == Isa.AVX2
    check_family(family, expected_path(family))


def check_family(family: str, path: str) -> None:
    """Round 1 (concurrent prompts, chunked prefill, prompt logprobs) and round 2 (a cached
    prefix's follow-up beside a fresh prompt) against ``generate``, on runner ``path``."""
    loaded = build_tiny_family(family)
    scheduler_config = SchedulerConfig.from_engine_config(LIMITS, block_size=BLOCK_SIZE)
    model = copy.deepcopy(loaded.model)  # transformers' own modules: the runners swap linears
    runner = None
    if path != expected_path(family):
        runner = RUNNERS[path](loaded, scheduler_config.num_blocks, BLOCK_SIZE)
    engine = Engine(loaded, LIMITS, scheduler_config, runner)
    assert type(engine.runner) is RUNNERS[path]

    # Round 1: four prompts of different lengths and one asking for prompt logprobs.
    first = [make_request(p, max_new_tokens=NEW_TOKENS, ignore_eos=True) for p in PROMPTS]
    details = make_request(
        LOGPROB_PROMPT, max_new_tokens=NEW_TOKENS, ignore_eos=True, decoder_input_details=True
    )
    for request in [*first, details]:
        engine.add_request(request)
    results = run_to_completion(engine)
    for request, prompt in zip(first, PROMPTS, strict=True):
        assert_matches(results[request.request_id], model, prompt)
    assert_matches(results[details.request_id], model, LOGPROB_PROMPT)
    prefill = results[details.request_id][0].prefill
    assert [t.logprob for t in prefill[1:]] == pytest.approx(
        reference_prompt_logprobs(model, LOGPROB_PROMPT), abs=TOLERANCE
    )

    # Round 2: a chat follow-up resends the history (reusing its cached prefix) while a new
    # prompt starts beside it.
    answer, _ = generated(results[first[3].request_id])
    follow_prompt = PROMPTS[3] + answer + [11, 12, 13]
    follow = make_request(follow_prompt, max_new_tokens=NEW_TOKENS, ignore_eos=True)
    fresh = make_request(PROMPTS[2][::-1], max_new_tokens=NEW_TOKENS, ignore_eos=True)
    engine.add_request(follow)
    engine.add_request(fresh)
    seq = engine.states[follow.request_id].seq
    results = run_to_completion(engine)
    if engine.runner.supports_prefix_caching:
        assert seq.num_cached_tokens >= len(PROMPTS[3])
    assert_matches(results[follow.request_id], model, follow_prompt)
    assert_matches(results[fresh.request_id], model, PROMPTS[2][::-1])


@torch.inference_mode()
def test_layers_with_their_own_kv_shape_get_their_own_cache() -> None:
    """A model whose layers differ in KV heads (as pruned / NAS-searched checkpoints do)."""
    from transformers.models.llama.modeling_llama import LlamaAttention

    loaded = build_tiny_family("llama")
    config = copy.deepcopy(loaded.model.config)
    config.num_key_value_heads = 1
    layer = loaded.model.model.layers[1]
    torch.manual_seed(1)
    layer.self_attn = LlamaAttention(config, layer_idx=1).eval()
    model = copy.deepcopy(loaded.model)
    scheduler_config = SchedulerConfig.from_engine_config(LIMITS, block_size=BLOCK_SIZE)
    engine = Engine(loaded, LIMITS, scheduler_config)
    assert type(engine.runner) is TransformersPagedRunner
    assert [c.kv.shape[-2] for c in engine.runner.caches] == [2, 1]
    requests = [make_request(p, max_new_tokens=NEW_TOKENS, ignore_eos=True) for p in PROMPTS]
    for request in requests:
        engine.add_request(request)
    results = run_to_completion(engine)
    for request, prompt in zip(requests, PROMPTS, strict=True):
        assert_matches(results[request.request_id], model, prompt)


@pytest.mark.parametrize("tier", [None, "avx2"], indirect=True)
@pytest.mark.parametrize("bits", [8, 4])
@torch.inference_mode()
def test_quantized_weights_are_served_by_the_transformers_backend(bits: int, tier) -> None:
    """int8/int4 Qwen3 against the same de-quantized values in fp32: only the kernels'
    8-bit activations differ."""
    reference = build_tiny_family("qwen3")
    served = build_tiny_family("qwen3")
    weights = quant_loader.quantize_linears(served.model, bits)
    for name, weight in weights.items():
        reference.model.get_submodule(name).weight.data = weight.dequantize()
    served.quantized = QuantizedWeights(weights, label=f"int{bits}")
    served.frees_hf_weights = True
    engine = Engine(served, LIMITS, SchedulerConfig.from_engine_config(LIMITS))
    assert type(engine.runner) is TransformersPagedRunner
    assert served.quantize == f"int{bits}" and not weights  # given to the runner
    up = served.model.model.layers[0].mlp.up_proj
    assert isinstance(up, ProjectionLinear) and isinstance(up.projection, QuantProjection)
    prompt = PROMPTS[3]
    expected = reference.model(torch.tensor([prompt])).logits[0, -1].log_softmax(-1)
    request = make_request(prompt, max_new_tokens=1)
    engine.add_request(request)
    event = run_to_completion(engine)[request.request_id][0]
    assert event.token.id == int(expected.argmax())
    assert abs(event.token.logprob - float(expected[event.token.id])) < 0.05


@pytest.mark.parametrize("tier", [None, "avx2"], indirect=True)
@torch.inference_mode()
def test_dense_linears_are_prepacked_on_the_transformers_backend(tier) -> None:
    """Every dense linear of the family is served by a projection (oneDNN's prepacked layout
    where oneDNN runs float32 here), and a step still gives transformers' logits."""
    loaded = build_tiny_family("qwen3")
    reference = copy.deepcopy(loaded.model)
    loaded.frees_hf_weights = True
    engine = Engine(loaded, LIMITS, SchedulerConfig.from_engine_config(LIMITS))
    assert type(engine.runner) is TransformersPagedRunner
    modules = list(loaded.model.modules())
    if linear_path(torch.device("cpu"), torch.float32) == LinearPath.ONEDNN:
        assert not any(type(m) is torch.nn.Linear for m in modules)
        up = loaded.model.model.layers[0].mlp.up_proj
        assert isinstance(up, ProjectionLinear) and up.projection.prepacked
    prompt = PROMPTS[3]
    expected = reference(torch.tensor([prompt])).logits[0, -1].log_softmax(-1)
    request = make_request(prompt, max_new_tokens=1)
    engine.add_request(request)
    event = run_to_completion(engine)[request.request_id][0]
    assert event.token.id == int(expected.argmax())
    assert abs(event.token.logprob - float(expected[event.token.id])) < TOLERANCE
