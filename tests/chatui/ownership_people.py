"""The people of the ownership tests: two anonymous visitors and two logged-in users, each with
private data (a conversation with a file, settings, a share, an assistant) and a way to sign in.

`Person.state()` is everything a person owns as plain values, so a test can show that an attack
changed nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.files.base import ContentFile
from django.test import Client

from chatui import services
from chatui.identity import ANON_SESSION_KEY, Identity
from chatui.models import (
    ApiToken,
    Assistant,
    Attachment,
    Conversation,
    Message,
    SharedConversation,
    UserSettings,
)
from tests.chatui.helpers import MODEL_A, MODEL_B

PEOPLE = ("visitor1", "visitor2", "user1", "user2")
PASSWORD = "Pw-of-a-victim-77"


@dataclass
class Person:
    name: str
    identity: Identity
    user: Any
    conversation_id: str
    question_id: str
    answer_id: str
    share_id: str
    assistant_id: str  # users have one (public by design); a visitor's is an unknown id
    attachment_id: str  # a file on the private conversation's question
    token_id: str  # users have a personal API token; a visitor's is an unknown id

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings only this person's private data contains."""
        return (
            f"{self.name}-title",
            f"{self.name}-question",
            f"{self.name}-prompt",
            f"{self.name}-token",
        )

    def client(self, **kwargs: Any) -> Client:
        """A fresh client signed in as this person (a new session each time: an attack such
        as logout must not leave the next one anonymous)."""
        client = Client(**kwargs)
        if self.user is not None:
            client.force_login(self.user)
        else:
            session = SessionStore()
            session[ANON_SESSION_KEY] = self.identity.anon_key
            session.create()
            client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
        return client

    def state(self) -> list[Any]:
        """Everything this person owns, as plain values (timestamps included)."""
        owned = self.identity.owner_q()
        rows = [
            list(Conversation.objects.filter(owned).order_by("pk").values()),
            list(Message.objects.filter(self.identity.owner_q("conversation__")).values()),
            list(UserSettings.objects.filter(owned).values()),
            list(SharedConversation.objects.filter(owned).values()),
            list(Attachment.objects.filter(self.identity.owner_q("conversation__")).values()),
        ]
        if self.user is not None:
            rows.append(list(get_user_model().objects.filter(pk=self.user.pk).values()))
            rows.append(list(Assistant.objects.filter(user=self.user).values()))
            rows.append(list(ApiToken.objects.filter(user=self.user).values()))
        return rows


def make_person(name: str) -> Person:
    user = None
    if name.startswith("user"):
        user = get_user_model().objects.create_user(name, password=PASSWORD)
        identity = Identity(user_id=user.pk)
    else:
        identity = Identity(anon_key=f"key-of-{name}")
    services.settings_update(
        identity=identity, active_model=MODEL_B, custom_prompts={MODEL_A: f"{name}-prompt"}
    )
    # The shared conversation holds nothing private: a share shows its whole snapshot.
    public = services.conversation_create(identity=identity, model=MODEL_A, system_prompt="")
    question = Message.objects.create(conversation=public, role="user", content="shared q")
    Message.objects.create(conversation=public, parent=question, role="assistant", content="a")
    share = services.conversation_share(identity=identity, conversation=public)
    conversation = services.conversation_create(identity=identity, model=MODEL_A)
    services.conversation_update(conversation=conversation, title=f"{name}-title")
    question = Message.objects.create(
        conversation=conversation, role="user", content=f"{name}-question"
    )
    answer = Message.objects.create(
        conversation=conversation, parent=question, role="assistant", content="answer"
    )
    attachment = Attachment(
        conversation=conversation, message=question, name="f.txt", mime="text/plain", size=6
    )
    attachment.kind = Attachment.Kind.TEXT
    attachment.file.save("f.txt", ContentFile(f"{name}-question".encode()), save=False)
    attachment.save()
    assistant_id, token_id = "00000000-0000-4000-8000-000000000000", "999999"
    if user is not None:
        assistant_id = str(services.assistant_save(user=user, name=f"{name}-bot", model=MODEL_A).pk)
        token_id = str(services.api_token_create(user=user, name=f"{name}-token")[0].pk)
    return Person(
        name,
        identity,
        user,
        str(conversation.pk),
        str(question.pk),
        str(answer.pk),
        share.id,
        assistant_id,
        str(attachment.pk),
        token_id,
    )
