"""The API's own documentation: the OpenAPI document and a Swagger UI that works offline.

The document lives at `/api-doc/openapi.json` (TGI's path) and names its schemas as TGI does;
`/docs` serves Swagger UI 5 (it reads OpenAPI 3.1) from files vendored beside this module
(`swagger_ui/`, from npm's `swagger-ui-dist`), so no asset comes from the internet.
Must not import the engine or torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from inference import __version__
from inference.api import schemas
from inference.api.contract import apply_limits, streamed_body
from inference.config import EngineConfig

OPENAPI_URL = "/api-doc/openapi.json"
DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
TITLE = "Text Generation Inference"
DESCRIPTION = "Text Generation Webserver (TGI-compatible)"
SWAGGER_UI_DIR = Path(__file__).with_name("swagger_ui")

# Schemas that responses reference by name but no route declares as its body type.
EXTRA_SCHEMAS: tuple[type[BaseModel], ...] = (
    schemas.StreamResponse,
    schemas.StreamDetails,
    schemas.ChatCompletionChunk,
    schemas.ChatCompletionChoice,
    schemas.ChatCompletionDelta,
    schemas.Chunk,
    schemas.CompletionComplete,
    schemas.GenerateResponse,
    schemas.Details,
    schemas.BestOfSequence,
    schemas.Token,
    schemas.PrefillToken,
    schemas.ErrorResponse,
    schemas.SimpleToken,
)


# Routes that only stream: their body refuses what streams refuse.
STREAMED_BODIES = {"/generate_stream": "GenerateRequest"}


def served_limits(app: FastAPI) -> EngineConfig:
    """The limits requests are validated against: the engine's once loaded, else the config's."""
    state = app.state.server
    return state.limits or state.config.engine


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the streamed schemas and this server's limits; cached on the
    app until the limits change (the loaded model may lower them)."""
    limits = served_limits(app)
    if app.openapi_schema and getattr(app.state, "openapi_limits", None) == limits:
        return app.openapi_schema
    document = get_openapi(
        title=TITLE,
        version=__version__,
        description=DESCRIPTION,
        routes=app.routes,
        license_info={"name": "Apache 2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        separate_input_output_schemas=False,
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    _, extra = models_json_schema(
        [(model, "validation") for model in EXTRA_SCHEMAS],
        ref_template="#/components/schemas/{model}",
    )
    for name, schema in extra.get("$defs", {}).items():
        components.setdefault(name, schema)
    apply_limits(components, limits)
    for path, request in STREAMED_BODIES.items():
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        body["schema"] = streamed_body(request)
    app.openapi_schema = document
    app.state.openapi_limits = limits
    return document


def install_docs(app: FastAPI) -> None:
    """Serve the document, the UI page and its assets (all local)."""
    app.openapi_url = OPENAPI_URL
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    app.mount(ASSETS_URL, StaticFiles(directory=SWAGGER_UI_DIR), name="swagger-assets")

    @app.get(OPENAPI_URL, include_in_schema=False)
    async def openapi_document() -> dict[str, Any]:
        return build_openapi(app)

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui():
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{TITLE} - Swagger UI",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        )
