"""The ASGI application daphne serves: Django for HTTP, Channels for websockets.

Django is set up first (`get_asgi_application`), so a bad chat configuration stops the
process here with a readable message and no stack trace. What start-up loaded is frozen for
the garbage collector at the end (`gc.freeze`). The web process itself is `config.serve`.

The composition root: it imports the routing and the reaper's middleware, and no module of
`chatui` may import it.
"""

from __future__ import annotations

import gc
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

from django.core.asgi import get_asgi_application

try:
    django_asgi_app = get_asgi_application()
except Exception as exc:
    from chatui.apps import AppConfigError

    if not isinstance(exc, AppConfigError):
        raise
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(1)

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter

from chatui.origin import SameOriginValidator
from chatui.routing import websocket_urlpatterns
from chatui.streaming.reaper import with_reaper

application = with_reaper(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            # Origin: scheme, host and port, as Django's CSRF check (chatui.origin).
            "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
)
# NOTE: the objects of start-up (Django, the app, their imports) live as long as the process:
# frozen, the garbage collector stops walking them, so a full collection no longer pauses every
# stream for tens of milliseconds.
gc.freeze()
