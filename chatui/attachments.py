"""Attachments: uploading a file to a conversation, linking it to the user message that sends
it, copying it into a share (and back out when a share is continued), what a prompt gets of it,
and reading it back for its owner only.

Every check happens here, before anything reaches a model: the type by content
(`chatui.uploads`), the size limits (settings), images only for `"multimodal": true` models
whose `multimodalAcceptedMimetypes` take them, text files only when they fit the model's
`parameters.truncate`. Synchronous, like `chatui.services`; must not import views, endpoints
or the websocket layer (consumers, routing, `chatui.streaming.socket`, `chatui.layers`).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from chatui import documents, uploads
from chatui.chat_config import get_chat_config
from chatui.errors import ChatError
from chatui.identity import Identity
from chatui.models import Attachment, Conversation, Message, SharedConversation
from chatui.models_config import ModelSpec
from chatui.prompting import CHARS_PER_TOKEN, ChatMessage, context_tokens
from chatui.selectors import conversation_get
from chatui.serializers import file_to_dict

ATTACHMENT_NOT_FOUND = "File not found."
NO_FILE = "Choose a file to attach."
IMAGES_NOT_SUPPORTED = "{model} does not accept images. Pick a model that does, or remove {name}."
IMAGE_TYPE_REFUSED = "{model} does not accept {mime} images ({name})."
TEXT_DOES_NOT_FIT = (
    "{name} does not fit in what {model} reads (about {tokens} tokens; the model takes "
    "{limit}). Attach a shorter file or paste the part that matters."
)
# A document may take this share of what the model reads; the rest is left to the conversation.
DOCUMENT_SHARE = 0.75
TOO_MANY_FILES = "At most {limit} files can be attached to one message."
UNKNOWN_ATTACHMENT = "An attached file was not found; attach it again."


@dataclass(frozen=True)
class PromptFile:
    """What a prompt gets of an attachment: a text file's framed text, or an image's bytes."""

    kind: str
    name: str
    mime: str
    text: str = ""
    data: bytes = b""

    @property
    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def _label(model: ModelSpec) -> str:
    return model.display_name or model.name


def document_budget(model: ModelSpec) -> int | None:
    """The most characters of one document's text the model is sent (None: no limit)."""
    tokens = context_tokens(model)
    return int(tokens * CHARS_PER_TOKEN * DOCUMENT_SHARE) if tokens else None


def check_for_model(*, model: ModelSpec, kind: str, mime: str, name: str, size: int) -> None:
    """Refuses what `model` cannot take (before anything is sent to it). A document that is
    too long is not refused: it is cut (see `document_notice`)."""
    if kind == Attachment.Kind.IMAGE:
        if not model.multimodal:
            raise ChatError(IMAGES_NOT_SUPPORTED.format(model=_label(model), name=name))
        if not uploads.mime_accepted(mime, model.multimodal_accepted_mimetypes):
            raise ChatError(IMAGE_TYPE_REFUSED.format(model=_label(model), mime=mime, name=name))
        return
    if mime in documents.DOCUMENT_MIMES:
        return
    limit = context_tokens(model)
    tokens = -(-size // CHARS_PER_TOKEN)
    if limit and tokens > limit:
        raise ChatError(
            TEXT_DOES_NOT_FIT.format(name=name, model=_label(model), tokens=tokens, limit=limit),
            status=413,
        )


def document_notice(*, model: ModelSpec, name: str, text: str) -> str:
    """What the user is told when a document will be cut to fit the model ("" when it fits)."""
    _, kept = documents.cut_to_fit(text, name=name, max_chars=document_budget(model))
    if kept >= 1.0:
        return ""
    tokens = (document_budget(model) or 0) // CHARS_PER_TOKEN
    percent = max(1, int(kept * 100))
    return documents.DOCUMENT_CUT.format(
        name=name, model=_label(model), percent=percent, tokens=tokens
    )


def _size_limit(sniffed: uploads.Sniffed) -> int:
    if sniffed.kind == "image":
        return settings.CHATUI_ATTACHMENT_MAX_IMAGE_BYTES
    if sniffed.mime in documents.DOCUMENT_MIMES:
        return settings.CHATUI_ATTACHMENT_MAX_DOCUMENT_BYTES
    return settings.CHATUI_ATTACHMENT_MAX_TEXT_BYTES


def largest_upload() -> int:
    """The size past which no file is read at all."""
    return max(
        settings.CHATUI_ATTACHMENT_MAX_IMAGE_BYTES,
        settings.CHATUI_ATTACHMENT_MAX_TEXT_BYTES,
        settings.CHATUI_ATTACHMENT_MAX_DOCUMENT_BYTES,
    )


def attachment_store(*, conversation: Conversation, name: str, data: bytes) -> Attachment:
    """Checks `data` (type, size, the conversation's model) and stores it as a file of the
    conversation's next message. `attachment.notice` says when a document will be cut."""
    sniffed = uploads.sniff(data, name)
    uploads.check_size(name=name, kind=sniffed.kind, size=len(data), limit=_size_limit(sniffed))
    model = get_chat_config().model(conversation.model)
    check_for_model(model=model, kind=sniffed.kind, mime=sniffed.mime, name=name, size=len(data))
    notice = ""
    if sniffed.mime in documents.DOCUMENT_MIMES:
        text = documents.document_text(data, name=name, mime=sniffed.mime)
        notice = document_notice(model=model, name=name, text=text)
    attachment = Attachment(
        conversation=conversation, name=name, mime=sniffed.mime, kind=sniffed.kind, size=len(data)
    )
    attachment.file.save(name, ContentFile(data), save=False)
    attachment.save()
    attachment.notice = notice  # type: ignore[attr-defined]  # for the response only
    return attachment


def attachment_upload(*, identity: Identity, conversation_id: Any, upload: Any) -> Attachment:
    """A file for the next message of the owner's conversation (not linked to a message yet)."""
    conversation = conversation_get(identity=identity, conversation_id=conversation_id)
    if upload is None:
        raise ChatError(NO_FILE)
    name = uploads.clean_name(upload.name)
    uploads.check_size(name=name, kind="file", size=upload.size, limit=largest_upload())
    return attachment_store(conversation=conversation, name=name, data=upload.read())


def attachments_link(*, conversation: Conversation, message: Message, ids: Any) -> None:
    """Links uploaded files to the user message that sends them, checked against the model
    the message goes to (inside the caller's transaction)."""
    if not ids:
        return
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ChatError(UNKNOWN_ATTACHMENT)
    if len(ids) > settings.CHATUI_ATTACHMENT_MAX_FILES:
        raise ChatError(TOO_MANY_FILES.format(limit=settings.CHATUI_ATTACHMENT_MAX_FILES))
    try:
        found = list(
            Attachment.objects.filter(
                conversation=conversation, message__isnull=True, pk__in=set(ids)
            )
        )
    except (ValueError, ValidationError):
        raise ChatError(UNKNOWN_ATTACHMENT) from None
    if len(found) != len(set(ids)):
        raise ChatError(UNKNOWN_ATTACHMENT)
    model = get_chat_config().model(conversation.model)
    for attachment in found:
        check_for_model(
            model=model,
            kind=attachment.kind,
            mime=attachment.mime,
            name=attachment.name,
            size=attachment.size,
        )
    Attachment.objects.filter(pk__in=[a.pk for a in found]).update(message=message)


def prompt_files(messages: Iterable[Message]) -> dict[str, tuple[PromptFile, ...]]:
    """The files of each message (by id), read from storage, for the prompt."""
    files: dict[str, list[PromptFile]] = {}
    found = Attachment.objects.filter(message__in=list(messages)).select_related("conversation")
    for attachment in found:
        with attachment.file.open("rb") as handle:
            data = handle.read()
        if attachment.mime in documents.DOCUMENT_MIMES:
            text = _document_prompt_text(attachment, data)
            entry = PromptFile("text", attachment.name, attachment.mime, text=text)
        elif attachment.kind == Attachment.Kind.TEXT:
            text = uploads.decode_text(data) or ""
            entry = PromptFile("text", attachment.name, attachment.mime, text=text)
        else:
            entry = PromptFile("image", attachment.name, attachment.mime, data=data)
        files.setdefault(str(attachment.message_id), []).append(entry)
    return {key: tuple(value) for key, value in files.items()}


def _document_prompt_text(attachment: Attachment, data: bytes) -> str:
    """A document's text, cut to what its conversation's model reads; a document that can no
    longer be read says so in the prompt instead of failing the answer."""
    try:
        text = documents.document_text(data, name=attachment.name, mime=attachment.mime)
    except ChatError as exc:
        return f"[{exc}]"
    conversation = attachment.conversation
    model = get_chat_config().model(conversation.model if conversation else None)
    return documents.cut_to_fit(text, name=attachment.name, max_chars=document_budget(model))[0]


def with_text_files(content: str, files: Iterable[PromptFile]) -> str:
    """A user message's text with its text files before it, each named and fenced."""
    framed = [uploads.frame_text_file(f.name, f.text) for f in files if f.kind == "text"]
    return "\n\n".join([*framed, content]) if framed else content


def chat_message(message: Message, files: dict[str, tuple[PromptFile, ...]]) -> ChatMessage:
    """A stored message as a prompt turn: its text files framed before its text, its images
    as data URLs."""
    own = files.get(str(message.id), ())
    return ChatMessage(
        role=message.role,  # type: ignore[arg-type]
        content=with_text_files(message.content, own),
        images=tuple(f.data_url for f in own if f.kind == "image"),
    )


def attachment_for_owner(*, identity: Identity, attachment_id: Any) -> Attachment:
    """One of the identity's own files (anyone else's is "not found")."""
    try:
        return Attachment.objects.get(identity.owner_q("conversation__"), pk=attachment_id)
    except (Attachment.DoesNotExist, ValueError, ValidationError):
        raise ChatError(ATTACHMENT_NOT_FOUND, status=404) from None


def attachment_in_share(*, share: SharedConversation, attachment_id: Any) -> Attachment:
    try:
        return share.attachments.get(pk=attachment_id)
    except (Attachment.DoesNotExist, ValueError, ValidationError):
        raise ChatError(ATTACHMENT_NOT_FOUND, status=404) from None


def _copy(attachment: Attachment, **owner: Any) -> Attachment:
    with attachment.file.open("rb") as handle:
        data = handle.read()
    copy = Attachment(
        name=attachment.name,
        mime=attachment.mime,
        kind=attachment.kind,
        size=attachment.size,
        **owner,
    )
    copy.file.save(attachment.name, ContentFile(data), save=False)
    copy.save()
    return copy


def attachments_share(*, conversation: Conversation, share: SharedConversation) -> None:
    """Frozen copies of the conversation's files for the share, and the snapshot's file
    entries pointed at them (the owner's own URLs would answer nobody else)."""
    by_message: dict[str, list[dict[str, Any]]] = {}
    for attachment in Attachment.objects.filter(conversation=conversation, message__isnull=False):
        copy = _copy(attachment, share=share, snapshot_message_id=str(attachment.message_id))
        by_message.setdefault(str(attachment.message_id), []).append(
            file_to_dict(copy, url=f"/r/{share.pk}/files/{copy.pk}")
        )
    for message in share.snapshot.get("messages", []):
        message["files"] = by_message.get(message["id"], [])
    share.save(update_fields=["snapshot"])


def attachments_continue(
    *, share: SharedConversation, conversation: Conversation, new_ids: dict[str, Message]
) -> None:
    """The share's files, copied to the visitor's own conversation made from it."""
    for attachment in share.attachments.all():
        message = new_ids.get(attachment.snapshot_message_id)
        if message is not None:
            _copy(attachment, conversation=conversation, message=message)
