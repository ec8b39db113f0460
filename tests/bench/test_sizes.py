"""`python -m bench --model-size`: the flag parses, each size gets its own models and levels,
and several sizes end in one side-by-side table. No server is started."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench.real_model
from bench.__main__ import main, parse_args
from bench.load import LoadSummary
from bench.real_model import QWEN25_1_5B, RealModel
from bench.servers import ServerSpec
from bench.sizes import SizeResult, parse_sizes, side_by_side, size_args


def summary(conc: int, tok_s: float, itl_s: float) -> LoadSummary:
    return LoadSummary(conc, 10.0, int(tok_s * 10), 0, 0.1, 0.2, itl_s, itl_s * 2)


def test_the_flag_parses_one_size_or_several() -> None:
    assert parse_args([]).model_size == "135m"
    assert parse_args(["--model-size", "1.5b"]).model_size == "1.5b"
    assert parse_sizes("135m, 1.5B") == ["135m", "1.5b"]
    with pytest.raises(ValueError, match=r"expected one or more of 135m, 1\.5b"):
        parse_sizes("7b")
    with pytest.raises(SystemExit, match="unknown model size 7b"):
        main(["--model-size", "7b"])


def test_the_bundled_size_keeps_every_row_and_level() -> None:
    args = parse_args([])
    args.model_dir, args.gguf = Path("bundled-dir"), Path("bundled.gguf")
    one = size_args(args, "135m")
    assert one.concurrency == "1,8,32,64" and one.extra_rows
    assert (one.model_dir, one.gguf, one.our_model) == (args.model_dir, args.gguf, "bundled")
    assert one.transformers_cache_tokens is None and one.ready_timeout_s is None


def test_the_real_size_serves_its_own_gguf_to_every_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built = RealModel(QWEN25_1_5B, tmp_path / "hf", tmp_path / "qwen2.5-1.5b-q8_0.gguf")
    monkeypatch.setattr(bench.real_model, "ensure_real_model", lambda spec: built)
    args = parse_args(["--model-size", "1.5b"])
    args.model_dir, args.gguf = Path("bundled-dir"), Path("bundled.gguf")
    one = size_args(args, "1.5b")
    assert (one.model_dir, one.gguf, one.our_model) == (built.hf_dir, built.gguf, str(built.gguf))
    assert one.concurrency == "1,32" and not one.extra_rows
    assert one.transformers_cache_tokens
    assert one.ready_timeout_s > ServerSpec("x", [], 0, "x").ready_timeout_s  # a GGUF to convert
    assert args.gguf == Path("bundled.gguf")  # the other sizes' arguments are untouched
    explicit = parse_args(["--model-size", "1.5b", "--concurrency", "1"])
    explicit.model_dir, explicit.gguf = args.model_dir, args.gguf
    assert size_args(explicit, "1.5b").concurrency == "1"


def test_sizes_print_side_by_side() -> None:
    ours, llama, hf = "ours (auto)", "llama-server (32 slots)", "transformers serve CB (bf16)"
    peers_32 = {
        "135m": {llama: summary(32, 200, 0.1), hf: summary(32, 100, 0.2)},
        "1.5b": {llama: summary(32, 200, 0.1)},  # transformers serve left out
    }
    results = [
        SizeResult(
            size,
            f"{size}.gguf",
            ours,
            one={ours: summary(1, 50, itl), llama: summary(1, 40, itl * 2)},
            distinct={ours: summary(32, 400, 0.05), **peers_32[size]},
            our_floor_s=itl / 4,
        )
        for size, itl in (("135m", 0.02), ("1.5b", 0.1))
    ]
    table = side_by_side(results).splitlines()
    assert len(table) == 4
    assert table[2] == "| 135m | 135m.gguf | 20 | 0.50 | 4.00 | 400 at 32 | 2.00 | 4.00 |"
    assert table[3] == "| 1.5b | 1.5b.gguf | 100 | 0.50 | 4.00 | 400 at 32 | 2.00 | - |"
