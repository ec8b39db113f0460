"""The one place that reads the environment: process variables, then `.env.local`, then `.env`.

The first source that sets a name wins, as in chat-ui. Files are parsed by python-dotenv, plus
chat-ui's backtick form (``MODELS=`[ ... ]```) that spans lines and is kept verbatim: JS dotenv
supports it and existing `.env.local` files rely on it, python-dotenv does not. No variable
interpolation is done (chat-ui does none; prompts may contain ``${...}``).

Must not import Django or `chatui`; nothing here runs at import time.
"""

from __future__ import annotations

import io
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

ENV_FILES = (".env.local", ".env")  # highest priority first

# A backtick value, JS dotenv style: from the opening backtick to the next unescaped one,
# possibly many lines later, then only blanks or a comment up to the end of the line.
_BACKTICK_ASSIGNMENT = re.compile(
    r"^[ \t]*(?:export[ \t]+)?(?P<key>[A-Za-z_][\w.-]*)[ \t]*=[ \t]*"
    r"`(?P<value>(?:\\`|[^`])*)`[ \t]*(?:#[^\n]*)?$",
    re.MULTILINE,
)


def parse_env_text(text: str) -> dict[str, str]:
    """Parse the text of one `.env` file; a name set twice keeps its last value."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    marker = f"__env_backtick_{secrets.token_hex(8)}_"
    backtick_values: dict[str, str] = {}

    def stash(match: re.Match[str]) -> str:
        placeholder = f"{marker}{len(backtick_values)}"
        backtick_values[placeholder] = match.group("value")
        return f"{match.group('key')}={placeholder}"

    text = _BACKTICK_ASSIGNMENT.sub(stash, text)
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {
        key: backtick_values.get(value, value) if value is not None else ""
        for key, value in values.items()
    }


def read_env_file(path: Path) -> dict[str, str]:
    """The names one file sets; an absent file sets none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return parse_env_text(text)


def load_env(base_dir: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The merged view: ``environ`` (default ``os.environ``) over `.env.local` over `.env`."""
    merged: dict[str, str] = {}
    for name in reversed(ENV_FILES):
        merged.update(read_env_file(Path(base_dir) / name))
    merged.update(os.environ if environ is None else environ)
    return merged
