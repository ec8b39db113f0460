"""A page a user gives by URL, attached to their next message as chat-ui's "add from URL" does:
fetched through `chatui.net_guard` (public addresses only, bounded in size and time), then
checked and stored exactly as an uploaded file (`chatui.attachments.attachment_store`).

Synchronous, like `chatui.services`; must not import views, endpoints or the websocket layer.
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings

from chatui import net_guard, uploads
from chatui.attachments import attachment_store
from chatui.errors import ChatError
from chatui.identity import Identity
from chatui.models import Attachment
from chatui.selectors import conversation_get

NO_URL = "Give the URL of a page or a file to attach."
FETCH_FAILED = "{url}: {reason}"
_EXTENSIONS = {"text/html": ".html", "application/xhtml+xml": ".html", "text/plain": ".txt"}


def page_name(url: str, content_type: str) -> str:
    """A file name for a fetched page: its path's last part (else its host), with the
    extension its type calls for when it has none."""
    parts = urlsplit(url)
    name = uploads.clean_name(unquote(parts.path.rstrip("/").rsplit("/", 1)[-1]))
    if name == "file" or not parts.path.strip("/"):
        name = parts.hostname or "page"
    extension = _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ""
    if extension and not name.lower().endswith(extension):
        name += extension
    return name


def attachment_from_url(*, identity: Identity, conversation_id: Any, url: Any) -> Attachment:
    """Fetches `url` and stores it as a file of the owner's conversation's next message."""
    conversation = conversation_get(identity=identity, conversation_id=conversation_id)
    if not isinstance(url, str) or not url.strip():
        raise ChatError(NO_URL)
    url = url.strip()
    try:
        page = net_guard.fetch_public_url(
            url,
            max_bytes=settings.CHATUI_URL_FETCH_MAX_BYTES,
            timeout=settings.CHATUI_URL_FETCH_TIMEOUT_S,
            allowed=net_guard.parse_networks(settings.CHATUI_URL_FETCH_ALLOWED_NETWORKS),
        )
    except net_guard.BlockedURL as exc:
        raise ChatError(FETCH_FAILED.format(url=url[:200], reason=exc), status=422) from None
    name = page_name(page.url, page.content_type)
    return attachment_store(conversation=conversation, name=name, data=page.content)
