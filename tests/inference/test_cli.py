"""`python -m inference`: flags, environment, derived limits, and a clean failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.processes import free_port
from inference.cli import engine_config_for, parse_args
from inference.config import EngineConfig

ROOT = Path(__file__).resolve().parents[2]


def test_defaults():
    config, _ = parse_args([], environ={})
    assert (config.hostname, config.port) == ("127.0.0.1", 8080)
    assert config.model.model_id == "bundled"
    model = config.model
    assert (model.dtype, model.device, model.quantize) == ("auto", "auto", "auto")
    # before the model is read: EngineConfig's defaults stand in (for /info only)
    assert config.engine.max_total_tokens == EngineConfig.max_total_tokens
    assert config.engine.max_input_tokens == EngineConfig.max_total_tokens - 1


def test_environment_as_tgi_launcher_reads_it_and_flags_win():
    environ = {
        "MODEL_ID": "/models/x",
        "PORT": "9000",
        "HOSTNAME": "0.0.0.0",
        "DTYPE": "bfloat16",
        "MAX_CONCURRENT_REQUESTS": "7",
        "MAX_TOTAL_TOKENS": "1024",
        "MAX_INPUT_TOKENS": "1000",
        "WAITING_SERVED_RATIO": "0.5",
    }
    config, _ = parse_args(["--port", "9100", "--max-concurrent-requests", "9"], environ=environ)
    assert config.model.model_id == "/models/x"
    assert (config.hostname, config.port) == ("0.0.0.0", 9100)
    assert config.model.dtype == "bfloat16"
    assert config.engine.max_concurrent_requests == 9
    assert (config.engine.max_total_tokens, config.engine.max_input_tokens) == (1024, 1000)
    assert config.engine.waiting_served_ratio == 0.5


def test_every_flag_is_accepted():
    argv = [
        "--model-id", "bundled", "--revision", "main", "--dtype", "float32", "--device", "cpu",
        "--hostname", "127.0.0.1", "--port", "8081",
        "--max-concurrent-requests", "3", "--max-best-of", "2", "--max-stop-sequences", "5",
        "--max-top-n-tokens", "4", "--max-input-tokens", "100", "--max-total-tokens", "200",
        "--max-batch-prefill-tokens", "300", "--max-batch-total-tokens", "4000",
        "--max-batch-size", "8", "--waiting-served-ratio", "0.2", "--max-waiting-tokens", "10",
    ]  # fmt: skip
    config, _ = parse_args(argv, environ={})
    engine = config.engine
    assert config.model.revision == "main"
    assert (engine.max_best_of, engine.max_stop_sequences, engine.max_top_n_tokens) == (2, 5, 4)
    assert (engine.max_batch_prefill_tokens, engine.max_batch_total_tokens) == (300, 4000)
    assert (engine.max_batch_size, engine.max_waiting_tokens) == (8, 10)


def test_speculate_comes_from_the_flag_or_tgi_environment_variable():
    assert parse_args([], environ={})[0].engine.speculate == 0
    assert parse_args([], environ={"SPECULATE": "3"})[0].engine.speculate == 3
    assert parse_args(["--speculate", "5"], environ={"SPECULATE": "3"})[0].engine.speculate == 5


@pytest.mark.parametrize("positions", [2048, 8192, 32768, 131072])
def test_limits_follow_the_model_context(positions):
    _, args = parse_args([], environ={})
    limits = engine_config_for(args, max_position_embeddings=positions)
    assert (limits.max_total_tokens, limits.max_input_tokens) == (positions, positions - 1)
    # one full-context sequence fits the KV cache, and a whole prompt fits one prefill budget
    assert limits.max_batch_total_tokens >= max(positions, EngineConfig.max_batch_total_tokens)
    assert limits.max_batch_prefill_tokens >= positions - 1


def test_limits_follow_the_bundled_model_config():
    from transformers import AutoConfig

    from inference.model.source import ensure_bundled_model

    config = AutoConfig.from_pretrained(ensure_bundled_model())
    _, args = parse_args([], environ={})
    limits = engine_config_for(args, config.max_position_embeddings)
    assert config.max_position_embeddings == 8192
    assert (limits.max_total_tokens, limits.max_input_tokens) == (8192, 8191)


def test_an_explicit_input_limit_past_the_default_is_accepted_before_the_model_is_read():
    config, args = parse_args(["--max-input-tokens", "6000"], environ={})
    assert config.engine.max_input_tokens == 6000
    assert engine_config_for(args, 8192).max_total_tokens == 8192


def test_explicit_limits_win_over_the_model_context():
    _, args = parse_args(["--max-total-tokens", "1024"], environ={})
    limits = engine_config_for(args, 8192)
    assert (limits.max_total_tokens, limits.max_input_tokens) == (1024, 1023)


@pytest.mark.parametrize(
    ("argv", "environ", "needle"),
    [
        (["--port", "abc"], {}, "invalid int value"),
        ([], {"PORT": "abc"}, "invalid int value"),
        (["--dtype", "int3"], {}, "invalid choice"),
        (["--max-input-tokens", "10", "--max-total-tokens", "10"], {}, "max_input_tokens"),
        ([], {"PREFIX_CACHING": "maybe"}, "PREFIX_CACHING"),
        (["--speculate", "-1"], {}, "speculate"),
    ],
)
def test_bad_values_are_one_line_usage_errors(argv, environ, needle, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv, environ=environ)
    assert exit_info.value.code == 2
    assert needle in capsys.readouterr().err


def test_an_unreachable_hub_model_fails_with_one_error_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update({"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    model_id = "no-such-org/no-such-model"
    result = subprocess.run(
        [sys.executable, "-m", "inference", "--model-id", model_id, "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert model_id in errors[0] and "--model-id" in errors[0]
    assert "Uvicorn running on" in result.stderr  # the port was bound before the model loaded


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        ([], {}, True),
        ([], {"PREFIX_CACHING": "0"}, False),
        ([], {"PREFIX_CACHING": "1"}, True),
        (["--no-prefix-caching"], {"PREFIX_CACHING": "1"}, False),
    ],
)
def test_prefix_caching_is_on_unless_turned_off(argv, environ, expected):
    config, args = parse_args(argv, environ=environ)
    assert config.engine.enable_prefix_caching is expected
    assert engine_config_for(args, 2048).enable_prefix_caching is expected


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        ([], {}, 2_000_000),
        ([], {"PAYLOAD_LIMIT": "4096"}, 4096),
        (["--payload-limit", "100"], {"PAYLOAD_LIMIT": "4096"}, 100),
    ],
)
def test_payload_limit_flag_and_environment(argv, environ, expected):
    config, _ = parse_args(argv, environ=environ)
    assert config.payload_limit == expected


def test_a_payload_limit_below_one_byte_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--payload-limit", "0"], environ={})
    assert "payload_limit" in capsys.readouterr().err
