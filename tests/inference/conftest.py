"""Shared by the inference tests: the tiny random Llama and engines over it.

Only tests marked ``slow`` load the bundled model; everything else uses ``build_tiny_llama``
(2 layers, hidden 64, the bundled tokenizer). Factories live in ``factories.py``. The suite-wide
conftest already keeps every client away from the model hub.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from inference.config import EngineConfig
from inference.cpu import ISA_ENV, cpu_info
from inference.engine.engine import Engine
from inference.engine.scheduler import SchedulerConfig
from inference.model.loader import LoadedModel
from tests.inference.factories import SMALL_LIMITS
from tests.support.tiny_model import build_tiny_llama


@pytest.fixture(scope="session")
def tiny() -> LoadedModel:
    return build_tiny_llama()


@pytest.fixture
def engine_factory(tiny: LoadedModel) -> Callable[..., Engine]:
    """Engines over the shared tiny model; keyword overrides go to SchedulerConfig."""

    def make(config: EngineConfig = SMALL_LIMITS, runner=None, **overrides) -> Engine:
        scheduler_config = SchedulerConfig.from_engine_config(config, **overrides)
        return Engine(tiny, config, scheduler_config, runner)

    return make


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
