"""Start-up: a bad MODELS stops the process with the readable message, no stack trace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bad_models_stops_startup_with_the_config_error():
    result = run_manage("check", MODELS='[{"name": "x", "endpoints": [{"type": "llamacpp"}]}]')
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Invalid chat configuration" in result.stderr
    assert "'llamacpp' is not supported" in result.stderr


def test_bad_models_stops_the_asgi_app_too():
    result = subprocess.run(
        [sys.executable, "-c", "import config.asgi"],
        cwd=ROOT,
        env={**os.environ, "MODELS": "[{name: 'x',"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: Invalid chat configuration: MODELS is not valid JSON5")


def test_good_models_pass_the_check():
    result = run_manage("check", MODELS='[{"name": "org/model", "displayName": "M",}]')
    assert result.returncode == 0, result.stderr
