"""Batched logits processing and sampling: one pass over all rows of a step.

Pure functions over tensors plus a small ``SamplingBatch`` that carries the per-row
parameters as tensors. Which rows need which processing is known on the host from the
parameters, so nothing here waits on the device except the final ``.tolist()``.

Logprob convention (as TGI): a token's logprob is the log-softmax of the scores AFTER the
repetition/frequency/presence penalties, temperature and top-k/top-p/typical-p filtering;
``top_tokens`` come from the same distribution. Greedy rows go through the same processing
(temperature 0 counts as 1) and take the argmax. Prompt logprobs (``decoder_input_details``)
are the raw model log-softmax.

Seeded rows draw from their own ``torch.Generator`` (one uniform number per token, inverse
CDF), so their output does not depend on which other requests share the batch.
Must not import the scheduler, the engine or Django.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inference.types import SamplingParams


@dataclass
class SamplerRow:
    """What the sampler needs to know about one row of logits."""

    params: SamplingParams
    generator: torch.Generator | None  # None for greedy rows
    prompt_token_ids: list[int]
    output_token_ids: list[int]


@dataclass
class SamplerOutput:
    """Host-side results, one entry per row."""

    token_ids: list[int]
    logprobs: list[float]
    top_token_ids: list[list[int]]  # [] for rows that did not ask for top_n_tokens
    top_logprobs: list[list[float]]


def apply_repetition_penalty(
    logits: torch.Tensor, token_ids: torch.Tensor, penalty: torch.Tensor
) -> torch.Tensor:
    """CTRL penalty: seen tokens' positive scores are divided, negative ones multiplied.

    logits: [N, V]; token_ids: [N, L] (rows padded by repeating one of their ids); penalty: [N]
    """
    scores = logits.gather(1, token_ids)
    penalty = penalty.unsqueeze(1)
    scores = torch.where(scores < 0, scores * penalty, scores / penalty)
    return logits.scatter(1, token_ids, scores)


def apply_frequency_presence_penalties(
    logits: torch.Tensor,
    output_ids: torch.Tensor,
    output_mask: torch.Tensor,
    frequency: torch.Tensor,
    presence: torch.Tensor,
) -> torch.Tensor:
    """OpenAI-style additive penalties over the generated tokens.

    output_ids: [N, L] padded ids; output_mask: [N, L] 1.0 where the id is real, else 0.0.
    """
    counts = torch.zeros_like(logits)
    counts.scatter_add_(1, output_ids, output_mask.to(logits.dtype))
    return logits - frequency.unsqueeze(1) * counts - presence.unsqueeze(1) * (counts > 0)


def apply_top_k_top_p(
    logits: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor
) -> torch.Tensor:
    """Keep each row's ``top_k`` best tokens, then its smallest set with mass >= ``top_p``.

    top_k: [N] long (vocab size where disabled); top_p: [N] float (1.0 where disabled).
    At least one token always survives.
    """
    sorted_logits, sorted_idx = logits.sort(dim=-1, descending=True)
    vocab = logits.shape[-1]
    ranks = torch.arange(vocab, device=logits.device).unsqueeze(0)
    remove = ranks >= top_k.clamp(1, vocab).unsqueeze(1)
    sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # mass of strictly better tokens
    remove = mass_before >= top_p.unsqueeze(1)
    remove[:, 0] = False
    sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
    return torch.empty_like(logits).scatter_(1, sorted_idx, sorted_logits)


def apply_typical_p(logits: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    """Locally typical sampling (as transformers' TypicalLogitsWarper), per-row ``mass``."""
    logp = logits.log_softmax(dim=-1)
    p = logp.exp()
    entropy = -(p * logp).nan_to_num().sum(dim=-1, keepdim=True)
    shifted = (-logp - entropy).abs()
    sorted_shifted, sorted_idx = shifted.sort(dim=-1)
    cumulative = logits.gather(-1, sorted_idx).softmax(dim=-1).cumsum(dim=-1)
    last = (cumulative < mass.unsqueeze(1)).sum(dim=1).clamp(max=logits.shape[-1] - 1)
    remove_sorted = sorted_shifted > sorted_shifted.gather(1, last.unsqueeze(1))
    remove_sorted[:, 0] = False
    remove = remove_sorted.scatter(1, sorted_idx, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def _pad(rows: list[list[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists (padding repeats a real id, or 0): ids [N, L] and a 0/1 mask."""
    width = max(1, max(len(r) for r in rows))
    ids = [r + [r[0] if r else 0] * (width - len(r)) for r in rows]
    mask = [[1.0] * len(r) + [0.0] * (width - len(r)) for r in rows]
    return (
        torch.tensor(ids, dtype=torch.long, device=device),
        torch.tensor(mask, dtype=torch.float32, device=device),
    )


def _rows_tensor(values: list, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=device)


def process_logits(logits: torch.Tensor, rows: list[SamplerRow]) -> torch.Tensor:
    """Penalties, temperature and filters for every row: [N, V] fp32 scores."""
    device = logits.device
    vocab = logits.shape[-1]
    edits_rows = any(
        p.repetition_penalty != 1.0
        or p.frequency_penalty
        or p.presence_penalty
        or p.top_k > 0
        or p.top_p < 1.0
        or p.typical_p < 1.0
        for p in (r.params for r in rows)
    )
    # Rows are edited in place below: never edit the caller's tensor.
    logits = logits.float().clone() if edits_rows else logits.float()

    idx = [i for i, r in enumerate(rows) if r.params.repetition_penalty != 1.0]
    if idx:
        sel = torch.tensor(idx, device=device)
        ids, _ = _pad([rows[i].prompt_token_ids + rows[i].output_token_ids for i in idx], device)
        penalty = _rows_tensor(
            [rows[i].params.repetition_penalty for i in idx], torch.float32, device
        )
        logits[sel] = apply_repetition_penalty(logits[sel], ids, penalty)

    idx = [
        i
        for i, r in enumerate(rows)
        if (r.params.frequency_penalty or r.params.presence_penalty) and r.output_token_ids
    ]
    if idx:
        sel = torch.tensor(idx, device=device)
        ids, mask = _pad([rows[i].output_token_ids for i in idx], device)
        freq = _rows_tensor([rows[i].params.frequency_penalty for i in idx], torch.float32, device)
        pres = _rows_tensor([rows[i].params.presence_penalty for i in idx], torch.float32, device)
        logits[sel] = apply_frequency_presence_penalties(logits[sel], ids, mask, freq, pres)

    temps = [r.params.temperature if r.params.temperature > 0 else 1.0 for r in rows]
    if any(t != 1.0 for t in temps):
        logits = logits / _rows_tensor(temps, torch.float32, device).unsqueeze(1)

    idx = [i for i, r in enumerate(rows) if r.params.top_k > 0 or r.params.top_p < 1.0]
    if idx:
        sel = torch.tensor(idx, device=device)
        top_k = [rows[i].params.top_k if rows[i].params.top_k > 0 else vocab for i in idx]
        top_p = [rows[i].params.top_p for i in idx]
        logits[sel] = apply_top_k_top_p(
            logits[sel],
            _rows_tensor(top_k, torch.long, device),
            _rows_tensor(top_p, torch.float32, device),
        )

    idx = [i for i, r in enumerate(rows) if r.params.typical_p < 1.0]
    if idx:
        sel = torch.tensor(idx, device=device)
        mass = _rows_tensor([rows[i].params.typical_p for i in idx], torch.float32, device)
        logits[sel] = apply_typical_p(logits[sel], mass)
    return logits


def draw_uniforms(rows: list[SamplerRow], device: torch.device) -> torch.Tensor:
    """One uniform number in [0, 1) per row, each from the row's own generator."""
    return torch.cat([torch.rand(1, generator=r.generator, device=device) for r in rows])


def sample(logits: torch.Tensor, rows: list[SamplerRow]) -> SamplerOutput:
    """Pick one token per row and report logprobs and top-n alternatives.

    logits: [N, V] raw model scores for the last position of each row.
    """
    device = logits.device
    scores = process_logits(logits, rows)
    # log-softmax = scores - logsumexp; only the rows and entries needed are materialised.
    lse = scores.logsumexp(dim=-1, keepdim=True)  # [N, 1]
    token_ids = scores.argmax(dim=-1)
    sampled_rows = [i for i, r in enumerate(rows) if not r.params.is_greedy]
    if sampled_rows:
        sel = torch.tensor(sampled_rows, device=device)
        sub = [rows[i] for i in sampled_rows]
        cdf = (scores[sel] - lse[sel]).exp().cumsum(dim=-1)
        u = draw_uniforms(sub, device).unsqueeze(1) * cdf[:, -1:]
        picked = torch.searchsorted(cdf, u, right=True).squeeze(1)
        token_ids[sel] = picked.clamp(max=scores.shape[-1] - 1)
    chosen = (scores.gather(1, token_ids.unsqueeze(1)) - lse).squeeze(1)

    top_n = max(r.params.top_n_tokens for r in rows)
    top_ids: list[list[int]] = [[] for _ in rows]
    top_lps: list[list[float]] = [[] for _ in rows]
    if top_n > 0:
        values, indices = scores.topk(top_n, dim=-1)
        all_ids, all_values = indices.tolist(), (values - lse).tolist()
        for i, r in enumerate(rows):
            n = r.params.top_n_tokens
            top_ids[i], top_lps[i] = all_ids[i][:n], all_values[i][:n]
    return SamplerOutput(
        token_ids=token_ids.tolist(),
        logprobs=chosen.tolist(),
        top_token_ids=top_ids,
        top_logprobs=top_lps,
    )


def prompt_logprobs(logits: torch.Tensor, next_token_ids: torch.Tensor) -> list[float]:
    """Raw log-softmax of each next prompt token: logits [T, V], next_token_ids [T]."""
    logprobs = logits.float().log_softmax(dim=-1)
    return logprobs.gather(1, next_token_ids.unsqueeze(1)).squeeze(1).tolist()
