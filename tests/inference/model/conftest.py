"""Fixtures shared by the model tests."""

from __future__ import annotations

import pytest

from inference.cpu import ISA_ENV, cpu_info


@pytest.fixture
def tier(monkeypatch, request):
    """The CPU tier the server believes it has: the hardware's (None) or one forced lower
    (parametrize ``tier`` indirectly with the tier's name)."""
    forced = getattr(request, "param", None)
    if forced:
        monkeypatch.setenv(ISA_ENV, forced)
    cpu_info.cache_clear()
    yield forced
    monkeypatch.delenv(ISA_ENV, raising=False)
    cpu_info.cache_clear()
