"""Stored data: conversations (a message tree), user settings, shared snapshots, the
links of OpenID identities to users, and personal API tokens.

Ownership: a row belongs either to a user (`user`) or, for an anonymous visitor, to the
random key kept in their session (`anon_key`, see `chatui.identity`). Models hold data and
validation only; writes go through `chatui.services`, reads through `chatui.selectors`.
Must not import services, selectors or the websocket layer (consumers, routing,
`chatui.streaming.socket`, `chatui.layers`).
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.files.storage import storages
from django.db import models
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver

DEFAULT_TITLE = "New Chat"
TITLE_MAX_LENGTH = 100
ASSISTANT_NAME_MAX_LENGTH = 60
ASSISTANT_DESCRIPTION_MAX_LENGTH = 300
MAX_STARTERS = 4
TOKEN_NAME_MAX_LENGTH = 60


def attachments_storage() -> object:
    """The storage of attachments and avatars (settings.STORAGES["attachments"])."""
    return storages["attachments"]


class Assistant(models.Model):
    """chat-ui's (legacy) assistant: a named preset of a model, a system prompt, up to four
    conversation starters and an avatar. Anyone with its link can start a chat with it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assistants"
    )
    name = models.CharField(max_length=ASSISTANT_NAME_MAX_LENGTH)
    description = models.CharField(
        max_length=ASSISTANT_DESCRIPTION_MAX_LENGTH, blank=True, default=""
    )
    model = models.CharField(max_length=255)
    system_prompt = models.TextField(blank=True, default="")
    starters = models.JSONField(default=list, blank=True)  # up to MAX_STARTERS strings
    avatar = models.FileField(
        storage=attachments_storage, upload_to="avatars/", blank=True, default=""
    )
    avatar_mime = models.CharField(max_length=64, blank=True, default="")
    is_featured = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_featured", "-created_at"]

    def __str__(self) -> str:
        return self.name


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="conversations",
    )
    anon_key = models.CharField(max_length=64, blank=True, default="")
    model = models.CharField(max_length=255)
    title = models.CharField(max_length=TITLE_MAX_LENGTH, default=DEFAULT_TITLE)
    # Set once the user renames: generated titles (first message, or its edit) stop then.
    is_title_custom = models.BooleanField(default=False)
    system_prompt = models.TextField(blank=True, default="")
    assistant = models.ForeignKey(
        Assistant,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversations",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["user", "-updated_at"], name="conv_user_updated"),
            models.Index(fields=["anon_key", "-updated_at"], name="conv_anon_updated"),
        ]

    def __str__(self) -> str:
        return self.title


class Message(models.Model):
    class Role(models.TextChoices):
        SYSTEM = "system"
        USER = "user"
        ASSISTANT = "assistant"

    class Score(models.IntegerChoices):
        DOWN = -1, "Thumbs down"
        NONE = 0, "No feedback"
        UP = 1, "Thumbs up"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True, default="")
    model = models.CharField(max_length=255, blank=True, default="")
    finish_reason = models.CharField(max_length=32, blank=True, default="")
    interrupted = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    # The tools an answer called, step by step (`chatui.tools.calls` records: id, name,
    # arguments, result, error, duration_ms, source, step)
    tool_calls = models.JSONField(default=list, blank=True)
    # chat-ui's message score: the user's thumbs up (1) or down (-1) on an answer, else 0.
    score = models.SmallIntegerField(choices=Score.choices, default=Score.NONE)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    generated_tokens = models.PositiveIntegerField(default=0)
    is_generating = models.BooleanField(default=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="msg_conv_created"),
            models.Index(
                fields=["heartbeat_at"], name="msg_generating", condition=Q(is_generating=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:50]}"


class Feedback(Message):
    """Answers that got a thumbs up or down (the admin's feedback list and JSONL export)."""

    class Meta:
        proxy = True
        verbose_name = "feedback"
        verbose_name_plural = "feedback"


class UserSettings(models.Model):
    class Theme(models.TextChoices):
        LIGHT = "light"
        DARK = "dark"
        SYSTEM = "system"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="chat_settings",
    )
    anon_key = models.CharField(max_length=64, blank=True, default="")
    active_model = models.CharField(max_length=255, blank=True, default="")
    custom_prompts = models.JSONField(default=dict, blank=True)
    theme = models.CharField(max_length=8, choices=Theme.choices, default=Theme.SYSTEM)
    # {"disabled": ["server:<name>", "<source>/<tool>"], "servers": [{"name", "url", "headers"}]}
    tools = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "user settings"
        constraints = [
            models.UniqueConstraint(
                fields=["anon_key"], condition=Q(user__isnull=True), name="settings_one_per_anon"
            ),
        ]

    def __str__(self) -> str:
        return f"settings of {self.user or self.anon_key[:8]}"


def new_share_id() -> str:
    """8 URL-safe characters (48 random bits)."""
    return secrets.token_urlsafe(6)


class SharedConversation(models.Model):
    id = models.CharField(primary_key=True, max_length=16, default=new_share_id, editable=False)
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="shares"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="shared_conversations",
    )
    anon_key = models.CharField(max_length=64, blank=True, default="")
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    model = models.CharField(max_length=255)
    snapshot = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id}: {self.title}"


class Attachment(models.Model):
    """A file attached to a user message: an image or a text file, checked by its content.

    It belongs to a conversation (uploaded before its message is sent, then linked to it) or
    to a share (a frozen copy of the file, like the share's snapshot). Deleting either deletes
    the row and, through the signal below, the stored file.
    """

    class Kind(models.TextChoices):
        IMAGE = "image"
        TEXT = "text"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    share = models.ForeignKey(
        SharedConversation,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="attachments",
    )
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    # In a share: the id of the message it belongs to in the snapshot.
    snapshot_message_id = models.CharField(max_length=64, blank=True, default="")
    name = models.CharField(max_length=255)
    mime = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    size = models.PositiveIntegerField()
    file = models.FileField(storage=attachments_storage, upload_to="files/%Y/%m/")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name


@receiver(post_delete, sender=Attachment, dispatch_uid="chatui_attachment_file_delete")
def _delete_attachment_file(sender: type, instance: Attachment, **kwargs: object) -> None:
    if instance.file:
        instance.file.storage.delete(instance.file.name)


@receiver(post_delete, sender=Assistant, dispatch_uid="chatui_assistant_avatar_delete")
def _delete_avatar(sender: type, instance: Assistant, **kwargs: object) -> None:
    """The avatar's file goes with its assistant (the row is gone; nothing else points at it)."""
    if instance.avatar:
        instance.avatar.storage.delete(instance.avatar.name)


class OpenIDAccount(models.Model):
    """The link from an identity at an OpenID provider (issuer + `sub`, never the e-mail,
    which a provider may reassign) to the local user it logs in as."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="openid_account"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    email = models.EmailField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "OpenID account"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="openid_account_unique")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class ApiToken(models.Model):
    """A personal API token (`Authorization: Bearer`, chatui.api_v1): shown once at creation,
    stored as a keyed SHA-256 of its secret; found by `key_id`, its public first part."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=TOKEN_NAME_MAX_LENGTH)
    key_id = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)  # hex HMAC-SHA256 of the whole token
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"


class ApiAuthFailure(models.Model):
    """Failed bearer authentications from one client address in the current window (the
    throttle of chatui.services.api_throttle); shared by every web process."""

    address = models.CharField(max_length=64, unique=True)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.address}: {self.failures}"
