"""One strict reading of an environment value as a boolean, shared by the server's CLI and the
web settings.

Only the standard library: the web image copies this file alone. Must not import torch, Django
or any other module of `inference`.
"""

from __future__ import annotations

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
NOT_A_BOOLEAN = "{name} must be one of {words} (or unset), got {value!r}"


def parse_bool(value: str | None, default: bool, *, name: str = "the value") -> bool:
    """`default` when `value` is unset or blank; True or False for the words above (any case);
    ValueError, naming `name`, for anything else."""
    text = (value or "").strip().lower()
    if not text:
        return default
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    words = "/".join(TRUE_WORDS + FALSE_WORDS)
    raise ValueError(NOT_A_BOOLEAN.format(name=name, words=words, value=value))
