"""What `python -m bench` prints: the comparison tables, the ratios the performance targets
are stated in, and the batch-1 bandwidth floor of the weights each server reads.

Pure formatting of measured rows; it starts no server and sends no request.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from bench.limits import dense_weight_bytes, floor_line, gguf_tensor_bytes
from bench.load import LoadSummary


@dataclass
class Row:
    """One server's load run at one concurrency, with its peak RSS."""

    server: str
    summary: LoadSummary
    peak_rss_mb: float


def fmt_ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:.0f}"


def print_table(rows: list[Row], ours_label: str) -> None:
    header = (
        f"| {'server':<34} | clients | tok/s | TTFT p50 ms | TTFT p95 ms | ITL p50 ms "
        f"| ITL p95 ms | peak RSS MB | errors | ours/theirs tok/s | ours/theirs TTFT p50 |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    by_conc: dict[int, dict[str, Row]] = {}
    for row in rows:
        by_conc.setdefault(row.summary.concurrency, {})[row.server] = row
    for conc, group in sorted(by_conc.items()):
        ours = group.get(ours_label)
        for label, row in group.items():
            s = row.summary
            tput_ratio = ttft_ratio = ""
            if ours and label != ours_label and s.tokens_per_s:
                tput_ratio = f"{ours.summary.tokens_per_s / s.tokens_per_s:.2f}x"
                if s.ttft_p50 == s.ttft_p50 and s.ttft_p50 > 0:
                    ttft_ratio = f"{ours.summary.ttft_p50 / s.ttft_p50:.2f}"
            print(
                f"| {label:<34} | {conc:>7} | {s.tokens_per_s:>5.0f} | {fmt_ms(s.ttft_p50):>11} "
                f"| {fmt_ms(s.ttft_p95):>11} | {fmt_ms(s.itl_p50):>10} | {fmt_ms(s.itl_p95):>10} "
                f"| {row.peak_rss_mb:>11.0f} | {s.errors:>6} | {tput_ratio:>17} "
                f"| {ttft_ratio:>20} |"
            )


def by_label(rows: list[Row], conc: int) -> dict[str, LoadSummary]:
    return {r.server: r.summary for r in rows if r.summary.concurrency == conc}


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if a == a and b == b and b else "-"


def target_ratios(repeated: list[Row], distinct: list[Row], ours: str) -> str:
    """The ratios the performance targets are stated in (ours / theirs)."""
    parts = []
    one = by_label(repeated, 1)
    llama = next((label for label in one if label.startswith("llama-server")), None)
    if ours in one and llama:
        parts.append(
            f"1 stream ITL p50 ours/llama-server {ratio(one[ours].itl_p50, one[llama].itl_p50)}"
            f" ({fmt_ms(one[ours].itl_p50)} vs {fmt_ms(one[llama].itl_p50)} ms)"
        )
    levels = {r.summary.concurrency for r in distinct}
    level = 32 if 32 in levels else max(levels, default=0)
    group = by_label(distinct, level)
    if ours in group:
        me = group[ours]
        llama = next((label for label in group if label.startswith("llama-server")), None)
        hf = [label for label in group if label.startswith("transformers")]
        best = max(hf, key=lambda label: group[label].tokens_per_s, default=None)
        for name, label in (("llama-server", llama), (f"best transformers serve ({best})", best)):
            if label:
                them = group[label]
                parts.append(
                    f"{level} streams distinct ours/{name}: "
                    f"tok/s {ratio(me.tokens_per_s, them.tokens_per_s)}, "
                    f"TTFT p50 {ratio(me.ttft_p50, them.ttft_p50)}"
                )
    return "Targets: " + ("; ".join(parts) if parts else "no peer rows to compare")


def our_weight_bytes(args: argparse.Namespace, info: dict) -> tuple[str, int]:
    """What this server reads per batch-1 decode step (its `/info`), and how many bytes."""
    dtype = str(info.get("model_dtype") or "float32").removeprefix("torch.")
    quantize = info.get("quantize")
    our_gguf = Path(args.our_model) if str(args.our_model).endswith(".gguf") else args.gguf
    if quantize:
        return f"{quantize} weights of {our_gguf.name}", gguf_tensor_bytes(our_gguf)
    known = dtype if dtype in ("float32", "bfloat16", "float16") else "float32"
    return f"dense {known} linear weights", dense_weight_bytes(args.model_dir, known)


def floor_lines(
    args: argparse.Namespace, info: dict, bandwidth_gb_s: float, one: dict[str, LoadSummary]
) -> list[str]:
    """Batch-1 floors of the weights each server actually reads per token."""
    nan = float("nan")
    lines = []
    what, nbytes = our_weight_bytes(args, info)
    ours = next((label for label in one if label.startswith("ours")), None)
    lines.append(
        floor_line(ours or "ours", what, nbytes, bandwidth_gb_s, one[ours].itl_p50 if ours else nan)
    )
    for label, summary in one.items():
        if label.startswith("llama-server"):
            lines.append(
                floor_line(
                    label,
                    f"all tensors of {args.gguf.name}",
                    gguf_tensor_bytes(args.gguf),
                    bandwidth_gb_s,
                    summary.itl_p50,
                )
            )
    return lines
