"""The HTTP layer: TGI's API (and its OpenAI-compatible routes) over the engine.

Must not import Django.
"""

from __future__ import annotations

from inference.api.app import create_app

__all__ = ["create_app"]
