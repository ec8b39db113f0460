"""The assistants pages: the list (featured first), one assistant's page (its shareable link),
create / edit / delete for the owner, starting a chat with one, and the avatar.

Thin: a form for the fields, a selector or service call, a template. Anyone may list, open and
start an assistant (its chat at `/?assistant=<id>`, stored with its first message); creating
needs an account.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from chatui import selectors, services
from chatui.chat_config import get_chat_config
from chatui.errors import ChatError
from chatui.models import (
    ASSISTANT_DESCRIPTION_MAX_LENGTH,
    ASSISTANT_NAME_MAX_LENGTH,
    MAX_STARTERS,
    Assistant,
)
from chatui.page_context import base_context


class AssistantForm(forms.Form):
    """The fields as the page shows them; `chatui.services.assistant_save` validates."""

    name = forms.CharField(max_length=ASSISTANT_NAME_MAX_LENGTH)
    description = forms.CharField(
        max_length=ASSISTANT_DESCRIPTION_MAX_LENGTH, required=False, widget=forms.Textarea
    )
    model = forms.ChoiceField(choices=())
    system_prompt = forms.CharField(
        label="Instructions (system prompt)", required=False, widget=forms.Textarea
    )
    avatar = forms.FileField(required=False, help_text="An image (PNG, JPEG, GIF or WebP).")
    remove_avatar = forms.BooleanField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        models = list(get_chat_config().listed_models)
        self.fields["model"].choices = [(m.id, m.display_name or m.name) for m in models]
        for index in range(MAX_STARTERS):
            self.fields[f"starter_{index}"] = forms.CharField(
                label=f"Conversation starter {index + 1}", required=False, max_length=500
            )

    def starters(self) -> list[str]:
        return [self.cleaned_data.get(f"starter_{i}", "") for i in range(MAX_STARTERS)]

    @classmethod
    def initial_for(cls, assistant: Assistant) -> dict[str, Any]:
        initial = {
            "name": assistant.name,
            "description": assistant.description,
            "model": assistant.model,
            "system_prompt": assistant.system_prompt,
        }
        for index, starter in enumerate(assistant.starters[:MAX_STARTERS]):
            initial[f"starter_{index}"] = starter
        return initial


def _assistant_or_404(assistant_id: Any) -> Assistant:
    try:
        return selectors.assistant_get(assistant_id=assistant_id)
    except ChatError:
        raise Http404 from None


def _model_names() -> dict[str, str]:
    return {m.id: m.display_name or m.name for m in get_chat_config().models}


@require_http_methods(["GET"])
def assistant_list(request: HttpRequest) -> HttpResponse:
    """`chatui/assistants.html`: the base names plus `assistants` and `featured` (each with
    `model_label` and `num_conversations`), `mine` and `query`."""
    query = request.GET.get("q", "").replace("\x00", "")
    assistants = list(selectors.assistant_list(query=query))
    mine = request.user.is_authenticated and request.GET.get("mine") == "1"
    if mine:
        assistants = [a for a in assistants if a.user_id == request.user.pk]
    names = _model_names()
    for assistant in assistants:
        assistant.model_label = names.get(assistant.model, assistant.model)
    context = base_context(request) | {
        "featured": [a for a in assistants if a.is_featured],
        "assistants": [a for a in assistants if not a.is_featured],
        "query": query,
        "mine": mine,
    }
    return render(request, "chatui/assistants.html", context)


@require_http_methods(["GET"])
def assistant_page(request: HttpRequest, assistant_id: Any) -> HttpResponse:
    """`chatui/assistant.html`: the base names plus `assistant`, `model_name`, `is_owner`."""
    assistant = _assistant_or_404(assistant_id)
    context = base_context(request) | {
        "assistant": assistant,
        "model_name": _model_names().get(assistant.model, assistant.model),
        "is_owner": request.user.is_authenticated and assistant.user_id == request.user.pk,
    }
    return render(request, "chatui/assistant.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def assistant_edit(request: HttpRequest, assistant_id: Any = None) -> HttpResponse:
    """`chatui/assistant_form.html` (create, or edit one's own): the base names plus `form`,
    `assistant` (None when creating) and `error`."""
    assistant = _assistant_or_404(assistant_id) if assistant_id is not None else None
    if assistant is not None and assistant.user_id != request.user.pk:
        raise Http404
    error = ""
    if request.method == "POST":
        form = AssistantForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            try:
                saved = services.assistant_save(
                    user=request.user,
                    assistant=assistant,
                    name=data["name"],
                    description=data["description"],
                    model=data["model"],
                    system_prompt=data["system_prompt"],
                    starters=form.starters(),
                    avatar=data.get("avatar"),
                    remove_avatar=data.get("remove_avatar", False),
                )
            except ChatError as exc:
                error = exc.message
            else:
                return redirect(f"/assistant/{saved.pk}")
    else:
        initial = AssistantForm.initial_for(assistant) if assistant else {}
        form = AssistantForm(initial=initial)
    context = base_context(request) | {"form": form, "assistant": assistant, "error": error}
    return render(request, "chatui/assistant_form.html", context, status=400 if error else 200)


@login_required
@require_POST
def assistant_delete(request: HttpRequest, assistant_id: Any) -> HttpResponse:
    try:
        services.assistant_delete(user=request.user, assistant=_assistant_or_404(assistant_id))
    except ChatError:
        raise Http404 from None
    return redirect("/assistants")


@require_POST
def assistant_start(request: HttpRequest, assistant_id: Any) -> HttpResponse:
    """The assistant's new chat (for pages that still post here). Creates nothing: as for any
    chat, the conversation comes with the first message, so leaving leaves no empty chat."""
    assistant = _assistant_or_404(assistant_id)
    return redirect(f"/?assistant={assistant.pk}")


@require_http_methods(["GET"])
def assistant_avatar(request: HttpRequest, assistant_id: Any) -> FileResponse:
    assistant = _assistant_or_404(assistant_id)
    if not assistant.avatar:
        raise Http404
    response = FileResponse(assistant.avatar.open("rb"), content_type=assistant.avatar_mime)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "public, max-age=300"
    return response
