"""The web side's one environment reader: process variables, then `.env.local`, then `.env`,
and the typed readings of one value (the one boolean parser) that settings and `chatui` share.

The first source that sets a name wins, as in chat-ui. Files are parsed by python-dotenv, plus
chat-ui's backtick form (``MODELS=`[ ... ]```) that spans lines and is kept verbatim: JS dotenv
supports it and existing `.env.local` files rely on it, python-dotenv does not. No variable
interpolation is done (chat-ui does none; prompts may contain ``${...}``).

Must not import Django, `chatui` or `inference`: the web side and the inference server deploy
apart, so the server keeps a reader of its own (`inference.env`). Nothing here runs at import time.
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

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
_BOOLEANS = {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}
NOT_A_BOOLEAN = "{name} must be one of {words} (or unset), got {value!r}"

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


def parse_bool(value: str | None, default: bool, *, name: str = "the value") -> bool:
    """`default` when `value` is unset or blank, else one of the words above in any case; any
    other value is a ValueError naming `name`, so a typo stops start-up instead of meaning False."""
    text = (value or "").strip().lower()
    if not text:
        return default
    if text not in _BOOLEANS:
        words = "/".join(_BOOLEANS)
        raise ValueError(NOT_A_BOOLEAN.format(name=name, words=words, value=value))
    return _BOOLEANS[text]


def env_bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """`env[name]` read by `parse_bool`."""
    return parse_bool(env.get(name), default, name=name)


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    """`env[name]` as an integer; `default` when unset or blank."""
    value = env.get(name)
    if value is None or str(value).strip() == "":
        return default
    return int(str(value).strip())


def env_list(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    """`env[name]` split on commas, blanks dropped; `default` when unset or blank."""
    value = env.get(name)
    if value is None or str(value).strip() == "":
        return default
    return [item.strip() for item in str(value).split(",") if item.strip()]
