"""A real OpenID provider for the login tests: `tests/peers/oidc/server.js` (the npm package
`oidc-provider`, OpenID-certified) under node, on a free port of 127.0.0.1.

`OidcProvider` writes the provider's config (clients, accounts and their claims) to a
temporary file, starts node, waits for its discovery document and stops it by PID.
`restart()` comes back on the same port with a fresh signing key: a key rotation.
Imports nothing from `chatui`: the app under test reaches the provider over HTTP only.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Self

from bench.processes import free_port
from tests.support.server_process import PROJECT_ROOT, ServerProcess

PEER_DIR = PROJECT_ROOT / "tests" / "peers" / "oidc"
STARTUP_TIMEOUT_S = 30.0
NOT_INSTALLED = "the test OpenID provider is not installed: run `make peers`"


class OidcProvider:
    """oidc-provider with `clients` (its client metadata) and `accounts` ({sub: claims}; a
    `quirk` of "wrong-audience" or "expired" spoils that account's ID tokens)."""

    def __init__(self, clients: list[dict[str, Any]], accounts: dict[str, dict[str, Any]]):
        if not (PEER_DIR / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError(NOT_INSTALLED)
        self.port = free_port()
        self.clients = clients
        self.accounts = accounts
        self.tmp = Path(tempfile.mkdtemp(prefix="chatui-oidc-"))
        self.server: ServerProcess | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        config = {
            "issuer": self.issuer,
            "port": self.port,
            "clients": self.clients,
            "accounts": self.accounts,
        }
        config_path = self.tmp / "config.json"
        config_path.write_text(json.dumps(config))
        argv = ["node", str(PEER_DIR / "server.js"), str(config_path)]
        ready_url = f"{self.issuer}/.well-known/openid-configuration"
        log_path = self.tmp / "provider.log"
        self.server = ServerProcess(argv, None, ready_url, log_path=log_path, name="oidc-provider")
        self.server.start().wait_ready(STARTUP_TIMEOUT_S)
        return self

    def restart(self) -> Self:
        """Stop, then start again on the same port with the current accounts and a new key."""
        if self.server is not None:
            self.server.stop()
        return self.start()

    def log(self) -> str:
        return self.server.log() if self.server is not None else ""

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.server = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
