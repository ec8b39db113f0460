"""The wire types package: every family module's public names are importable from
`inference.api.schemas`, and each schema name is defined once (names are the contract)."""

from __future__ import annotations

import importlib

import pytest
from pydantic import BaseModel

from inference.api import schemas

FAMILIES = ["common", "generate", "info", "openai", "chat_completions", "completions"]


def public_names(module) -> set[str]:
    """What the module defines itself (not what it imports, nor the names pydantic gives the
    generic models it builds, such as `RootModel[list[SimpleToken]]`)."""
    return {
        name
        for name, value in vars(module).items()
        if name.isidentifier()
        and not name.startswith("_")
        and getattr(value, "__module__", None) == module.__name__
    }


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_name_is_reexported(family):
    module = importlib.import_module(f"inference.api.schemas.{family}")
    for name in public_names(module):
        assert getattr(schemas, name) is getattr(module, name)
        assert name in schemas.__all__


def test_schema_names_are_unique_across_families():
    seen: dict[str, str] = {}
    for family in FAMILIES:
        module = importlib.import_module(f"inference.api.schemas.{family}")
        for name in public_names(module):
            if isinstance(getattr(module, name), type) and issubclass(
                getattr(module, name), BaseModel
            ):
                assert name not in seen, f"{name} in {seen.get(name)} and {family}"
                seen[name] = family
    assert {"GenerateRequest", "ChatRequest", "CompletionRequest", "Info"} <= set(seen)
