"""The throttle of bearer authentication: after LOGIN_FAILURE_LIMIT failed tokens from one
client address within LOGIN_COOLOFF_MINUTES, that address is refused (even with a good
token) until the window ends. Counted in the database, so every web process shares it.

The same limits as the login form's (django-axes), counted apart from them: a script with a
stale token does not lock its owner out of the login page.

Must not import the websocket layer (consumers, routing, `chatui.streaming`, `chatui.layers`),
views or endpoints.
"""

from __future__ import annotations

import math
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from chatui.models import ApiAuthFailure


def _window_start() -> datetime:
    return timezone.now() - settings.AXES_COOLOFF_TIME


def throttle_wait_s(*, address: str) -> int:
    """Seconds before `address` may try a token again; 0 when it is not throttled."""
    row = ApiAuthFailure.objects.filter(address=address).first()
    if row is None or row.failures < settings.AXES_FAILURE_LIMIT:
        return 0
    remaining = (row.window_started_at - _window_start()).total_seconds()
    return max(0, math.ceil(remaining))


def throttle_failure(*, address: str) -> None:
    """One more failed token from `address`. Windows that are over are deleted first (the
    table holds only addresses that failed lately), so an address past its window starts a
    new one."""
    with transaction.atomic():
        ApiAuthFailure.objects.filter(window_started_at__lte=_window_start()).delete()
        row, created = ApiAuthFailure.objects.select_for_update().get_or_create(
            address=address, defaults={"failures": 1, "window_started_at": timezone.now()}
        )
        if not created:
            ApiAuthFailure.objects.filter(pk=row.pk).update(failures=F("failures") + 1)
