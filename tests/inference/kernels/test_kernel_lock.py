"""Loading the kernels never hangs on a build lock: one left by a crashed build is cleared,
and a live build elsewhere is waited on for a bounded time, then the portable path is used.

Each case loads the kernels in a fresh process (as a starting server does), under a timeout
that a hang would exceed, against a private copy of the built extension (TORCH_EXTENSIONS_DIR):
the locks these tests hold and leave must never stall a test that loads the kernels in another
pytest worker.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inference import kernels
from inference.cpu import cpu_info

ROOT = Path(__file__).resolve().parents[3]
LOAD = """
import json, logging, time
logging.basicConfig(level=logging.INFO)
from inference import kernels
start = time.monotonic()
ok = kernels.available()
print(json.dumps({"available": ok, "seconds": time.monotonic() - start}))
"""
HANG_S = 120  # far beyond a load from the cache (seconds); torch's own wait has no end

pytestmark = pytest.mark.skipif(not kernels.available(), reason="no C++ toolchain here")


@pytest.fixture(autouse=True)
def private_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This tier's built extension, copied (times kept, so nothing rebuilds) where only this
    test looks: `build_directory` and the subprocess both read TORCH_EXTENSIONS_DIR."""
    shared = kernels.build_directory(cpu_info())
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    private = kernels.build_directory(cpu_info())
    shutil.copytree(
        shared,
        private,
        ignore=shutil.ignore_patterns(kernels.BUILD_LOCK, kernels.TORCH_BATON),
        dirs_exist_ok=True,
    )
    return private


def load_in_subprocess(**env: str) -> tuple[dict, str]:
    done = subprocess.run(
        [sys.executable, "-c", LOAD],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=HANG_S,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_a_stale_torch_build_lock_is_cleared_and_the_kernels_load():
    """An empty `lock` file, as a build killed mid-way leaves it, used to block every start."""
    baton = kernels.build_directory(cpu_info()) / kernels.TORCH_BATON
    baton.touch()
    try:
        result, log = load_in_subprocess()
    finally:
        baton.unlink(missing_ok=True)
    assert result["available"] is True
    assert "Removing a stale CPU-kernel build lock" in log
    assert str(baton) in log


def test_a_live_build_elsewhere_is_waited_on_for_a_bounded_time_then_skipped():
    """Another process holds the build (here: this one); the load gives up after the wait."""
    build_dir = kernels.build_directory(cpu_info())
    with open(build_dir / kernels.BUILD_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            result, log = load_in_subprocess(INFERENCE_KERNELS_BUILD_WAIT="1")
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    assert result["available"] is False
    assert 1.0 <= result["seconds"] < 30
    assert "Another process has been building the CPU kernels" in log
    assert "using the portable path" in log


def test_the_build_lock_is_free_again_after_a_load():
    result, _ = load_in_subprocess(INFERENCE_KERNELS_BUILD_WAIT="1")
    assert result["available"] is True
    with kernels.build_lock(kernels.build_directory(cpu_info()), wait_s=0) as acquired:
        assert acquired
