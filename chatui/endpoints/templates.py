"""The model's own chat template, asked of the endpoint over HTTP and kept per endpoint.

In order: the model's ``tokenizer`` setting (a directory, or a repo id in this machine's hub
cache), the template the server reports in ``/info`` (``chat_template``, which this project's
inference server sends), and for servers that do not (a real TGI) the ``model_id`` it reports,
read from a directory or the hub cache of this machine when it has one. None of these: ChatML.
Nothing is ever downloaded.

Must not import Django or the database layer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from huggingface_hub import try_to_load_from_cache

if TYPE_CHECKING:
    from chatui.endpoints.backend import Backend
    from chatui.models_config import Endpoint

logger = logging.getLogger(__name__)

_Key = tuple[str, str | None]


def template_of(config: dict[str, Any]) -> str | None:
    """The template of a tokenizer config (named templates: the default one)."""
    template = config.get("chat_template")
    if isinstance(template, list):
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    return template if isinstance(template, str) else None


def read_local_template(source: str) -> str | None:
    """A chat template from a tokenizer directory, or from the local hub cache (never fetched)."""
    path = Path(source).expanduser()
    if path.is_dir():
        jinja_file, config_file = path / "chat_template.jinja", path / "tokenizer_config.json"
    else:
        try:
            found = [
                try_to_load_from_cache(source, f)
                for f in ("chat_template.jinja", "tokenizer_config.json")
            ]
        except Exception:  # not a repo id
            return None
        jinja_file, config_file = (Path(f) if isinstance(f, str) else None for f in found)
    if jinja_file is not None and jinja_file.is_file():
        return jinja_file.read_text(encoding="utf-8")
    if config_file is not None and config_file.is_file():
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except ValueError:
            return None
        return template_of(config) if isinstance(config, dict) else None
    return None


class ChatTemplates:
    """Templates found so far, per endpoint and tokenizer setting; a burst of first answers
    waits for one look-up, not one each."""

    def __init__(self) -> None:
        self._found: dict[_Key, str | None] = {}
        self._loads: dict[_Key, asyncio.Task[str | None]] = {}

    def clear(self) -> None:
        self._found.clear()
        self._loads.clear()

    async def get(
        self,
        endpoint: Endpoint,
        backend: Backend,
        *,
        tokenizer: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> str | None:
        """The template for prompts sent to `endpoint`; ``None`` means ChatML."""
        key = (endpoint.key, tokenizer)
        if key in self._found:
            return self._found[key]
        load = self._loads.get(key)
        if load is None or load.get_loop() is not asyncio.get_running_loop():
            load = asyncio.create_task(self._load(key, endpoint, backend, tokenizer, client))
            self._loads[key] = load
            load.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(load)  # one waiter giving up does not stop the others' load

    def _forget(self, key: _Key, load: asyncio.Task[str | None]) -> None:
        if self._loads.get(key) is load:
            del self._loads[key]

    async def _load(
        self,
        key: _Key,
        endpoint: Endpoint,
        backend: Backend,
        tokenizer: str | None,
        client: httpx.AsyncClient | None,
    ) -> str | None:
        source = tokenizer
        template = None
        if source is None:
            try:
                info = await backend.template_info(endpoint, client)
            except (httpx.HTTPError, ValueError) as exc:
                logger.info("No /info from %s (%s); not caching the template", endpoint.url, exc)
                return None
            info = info or {}
            template = template_of(info)
            model_id = info.get("model_id")
            source = model_id if template is None and isinstance(model_id, str) else None
        if source:
            template = await asyncio.to_thread(read_local_template, source)
        self._found[key] = template
        return template
