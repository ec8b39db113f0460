"""The OpenAPI document is the contract: schemathesis fuzzes every operation of it against the
real server on a real socket, with every check on, and finds nothing.

Bodies the document allows must be accepted, bodies it forbids refused, and every answer must
have a documented status, content type and schema. The only rule stated in words instead of
JSON Schema is the token budget; `contract_hooks` keeps valid bodies inside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from inference.api.docs import OPENAPI_URL
from inference.config import EngineConfig
from tests.inference.api.conftest import serve, tiny_engine
from tests.inference.live_server import LiveServer

ROOT = Path(__file__).resolve().parents[3]
ST = Path(sys.executable).with_name("st")
SEED = 20240611
MAX_EXAMPLES = 12  # per operation in the fuzzing phase (the coverage phase adds its own)
# Room for any 16-character text (at most 64 tokens) in a chat template, and best_of 2 on, so
# the document's `best_of` rules are exercised.
CONTRACT_LIMITS = EngineConfig(
    max_concurrent_requests=8,
    max_best_of=2,
    max_stop_sequences=2,
    max_top_n_tokens=3,
    max_input_tokens=400,
    max_total_tokens=512,
    max_batch_prefill_tokens=512,
    max_batch_total_tokens=16384,
    max_batch_size=8,
)


@pytest.fixture(scope="module")
def contract_server() -> Iterator[LiveServer]:
    live = serve(tiny_engine(CONTRACT_LIMITS), CONTRACT_LIMITS)
    yield live
    live.stop()


def run_schemathesis(url: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """`st run` over the whole document: all checks, fixed seed, bounded examples; run in
    `workdir`, so no cache of an earlier run's failures is replayed."""
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.inference.api.contract_hooks"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [
        str(ST), "run", url + OPENAPI_URL,
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing",
        "--seed", str(SEED),
        "--max-examples", str(MAX_EXAMPLES),
        "--workers", "1",
        "--generation-database", "none",
        "--request-timeout", "30",
        # NOTE: only Hypothesis's timing of its own data generation, which a busy CI can trip
        "--suppress-health-check", "too_slow",
        "--no-color",
    ]  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=workdir, timeout=600
    )


@pytest.mark.skipif(not ST.exists(), reason="schemathesis is not installed")
@pytest.mark.timeout(660)  # 4 to 7.5 minutes measured on a shared 2-core machine; `st` stops at 600
def test_the_server_keeps_to_its_openapi_document(contract_server, tmp_path):
    result = run_schemathesis(contract_server.url, tmp_path)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-4000:]
    document = httpx.get(contract_server.url + OPENAPI_URL).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    assert f"Tested: {operations}" in result.stdout  # every operation, none skipped
    assert "No issues found" in result.stdout
