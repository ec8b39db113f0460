"""`python -m inference.keyfile PATH`: the key that `make run` gives both processes, made once.

A missing (or empty) file gets a fresh random key, readable by its owner only; an existing one
is kept. The key is never printed. Imports nothing of the server.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

KEY_BYTES = 32  # `secrets.token_urlsafe(32)`: 43 characters, 256 bits


def ensure_key_file(path: Path) -> str:
    """The key in `path`, written first (mode 0600, never wider) when there is none."""
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(KEY_BYTES)
    # NOTE: created 0600, so the key is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    path.chmod(0o600)
    return key


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m inference.keyfile PATH", file=sys.stderr)
        return 2
    ensure_key_file(Path(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
