"""The operations routes: `/healthz` (the process answers), `/readyz` (the database, the
channel layer and at least one model's endpoint answer) and `/metrics` (Prometheus).

`/healthz` and `/readyz` are open and cheap: every check has a short timeout and the answer
names no host, only which checks passed. `/metrics` answers a `METRICS_TOKEN` bearer (compared
in constant time) or a client address in `METRICS_ALLOW_IPS` (default: loopback only). Each
process answers for itself. Must not import consumers or views.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from typing import Any

import httpx
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chatui import metrics
from chatui.chat_config import get_chat_config
from chatui.endpoints import endpoint_status
from chatui.streaming.hub import get_hub

logger = logging.getLogger(__name__)

ERR_METRICS_FORBIDDEN = "Metrics are served to METRICS_ALLOW_IPS or a METRICS_TOKEN bearer only"
READY = "ready"
NOT_READY = "not ready"
PROBE_TYPE = "ops.readyz"


@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """200 whenever the process answers."""
    return JsonResponse({"status": "ok"})


def _ping_database() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


async def _database() -> bool:
    # NOTE: asgiref's thread-sensitive bridge, as for any Django async view, so the request's
    # own connection answers; channels' database_sync_to_async would close it on the way.
    return await sync_to_async(_ping_database)()


async def _channel_layer() -> bool:
    """A message to a fresh channel of this process comes back."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": PROBE_TYPE})
    return (await layer.receive(channel)).get("type") == PROBE_TYPE


async def _models() -> dict[str, bool]:
    """Each listed model: whether any of its endpoints answers its health check."""
    models = [m for m in get_chat_config().models if not m.unlisted]
    endpoints = {e.key: e for m in models for e in m.endpoints}
    async with httpx.AsyncClient(timeout=settings.CHATUI_READYZ_TIMEOUT_S) as client:
        results = await asyncio.gather(
            *(endpoint_status(e, client=client) for e in endpoints.values())
        )
    is_up = {key: result["ok"] for key, result in zip(endpoints, results, strict=True)}
    return {m.id: any(is_up[e.key] for e in m.endpoints) for m in models}


async def _check(name: str, probe: Any) -> Any:
    try:
        return await asyncio.wait_for(probe, settings.CHATUI_READYZ_TIMEOUT_S)
    except Exception as exc:  # any failure of a dependency is "not ready", never a 500
        logger.warning("Readiness check %s failed: %r", name, exc)
        return False


@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database, the channel layer and one model's endpoint answer, else 503."""
    database, layer, models = await asyncio.gather(
        _check("database", _database()),
        _check("channel_layer", _channel_layer()),
        _check("models", _models()),
    )
    models = models or {}
    ready = database is True and layer is True and any(models.values())
    body = {
        "status": READY if ready else NOT_READY,
        "checks": {"database": database is True, "channel_layer": layer is True, "models": models},
    }
    return JsonResponse(body, status=200 if ready else 503)


def _address_allowed(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for allowed in settings.METRICS_ALLOW_IPS:
        try:
            if ip in ipaddress.ip_network(allowed, strict=False):
                return True
        except ValueError:
            logger.warning("METRICS_ALLOW_IPS: %r is not an address or network", allowed)
    return False


def _token_matches(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """This process's metrics in Prometheus' text format (403 to anyone not let in)."""
    if not (_token_matches(request) or _address_allowed(request.META.get("REMOTE_ADDR", ""))):
        return JsonResponse({"error": ERR_METRICS_FORBIDDEN}, status=403)
    stats = get_hub().stats()
    metrics.OPEN_WEBSOCKETS.set(stats["sockets"])
    metrics.RUNNING_ANSWERS.set(stats["generations"])
    return HttpResponse(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST)
