"""Start-up: a bad MODELS stops the process with the readable message, no stack trace; the web
process runs on uvloop; Postgres connections come from a pool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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


def run_python(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_web_process_runs_daphne_on_uvloop():
    script = (
        "import uvloop; from config.serve import use_uvloop; assert use_uvloop(); "
        "import daphne.server; assert isinstance(daphne.server.twisted_loop, uvloop.Loop)"
    )
    result = run_python(script)
    assert result.returncode == 0, result.stderr


DATABASE_OPTIONS = (
    "import json; from config.settings import base; db = base.DATABASES['default']; "
    "print(json.dumps([db['CONN_MAX_AGE'], db.get('OPTIONS', {}).get('pool')]))"
)


def test_postgres_connections_come_from_a_pool():
    result = run_python(DATABASE_OPTIONS, DATABASE_URL="postgres://u@127.0.0.1:5432/chat")
    assert result.returncode == 0, result.stderr
    conn_max_age, pool = json.loads(result.stdout)
    assert conn_max_age == 0  # Django refuses a pool with persistent connections
    assert pool["max_size"] >= pool["min_size"] >= 1


def test_sqlite_has_no_pool(tmp_path):
    result = run_python(DATABASE_OPTIONS, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[1] is None
