"""The system `bench.chat` loads: the fake endpoint process, Postgres databases (one migrated
template, one clone per configuration, all dropped at the end) with their write counters, and the
daphne web processes with their peak memory.

Database writes are Postgres's own row counters (`pg_stat_user_tables`) of the clone, read after
the web processes exited (a backend flushes its counters at exit at the latest). Must not import
Django or `chatui`: the app runs in the child processes only.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from bench.processes import VENV_BIN, free_port, web_argv
from tests.support.server_process import ServerProcess

MODEL_ID = "bench-model"


@contextlib.contextmanager
def fake_endpoint(num_tokens: int, delay_ms: float, log_dir: Path) -> Iterator[str]:
    """`bench.chat_endpoint` in its own process; yields its URL."""
    port = free_port()
    argv = [str(VENV_BIN / "python"), "-m", "bench.chat_endpoint", "--port", str(port)]
    argv += ["--tokens", str(num_tokens), "--delay-ms", str(delay_ms)]
    ready = f"tcp://127.0.0.1:{port}"
    with ServerProcess(argv, None, ready, log_path=log_dir / "endpoint.log", name="endpoint"):
        yield f"http://127.0.0.1:{port}"


class Databases:
    """Scratch databases on the Postgres server of `server_url`."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.names: list[str] = []

    def url(self, name: str) -> str:
        return urlunsplit(urlsplit(self.server_url)._replace(path=f"/{name}"))

    def create(self, template: str | None = None) -> str:
        name = f"chatui_bench_{secrets.token_hex(4)}"
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            admin.execute(query)
        self.names.append(name)
        return name

    def drop_all(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            for name in reversed(self.names):
                drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                admin.execute(drop.format(sql.Identifier(name)))
        self.names.clear()

    def row_writes(self, name: str) -> dict[str, tuple[int, int]]:
        """Table -> (rows inserted, rows updated) since the database was created."""
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT relname, n_tup_ins, n_tup_upd FROM pg_stat_user_tables"
            ).fetchall()
        return {table: (inserted, updated) for table, inserted, updated in rows}


def web_env(
    *,
    database_url: str,
    redis_url: str,
    endpoint_url: str,
    settings_module: str = "config.settings.base",
) -> dict[str, str]:
    model = {
        "id": MODEL_ID,
        "name": "bench/fake-tgi",
        "parameters": {"max_new_tokens": 1024, "stop": ["<|im_end|>"]},
        "endpoints": [{"type": "tgi", "url": endpoint_url}],
    }
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-only",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MODELS": json.dumps([model]),
        "LLM_SUMMARIZATION": "false",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }


class WebProcess(ServerProcess):
    """`python -m config.serve -b 127.0.0.1 -p PORT config.asgi:application`: daphne on uvloop
    as in production (access log off), started at once."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        argv = web_argv(self.port, "-v", "0")
        super().__init__(argv, env, self.url + "/api/models", log_path=log_path, name="daphne")
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def peak_rss_bytes(self) -> int:
        """The kernel's high-water mark of the process's resident memory (VmHWM)."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(ln for ln in status.splitlines() if ln.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    def stop(self, timeout_s: float = 15.0) -> None:
        super().stop(timeout_s)
