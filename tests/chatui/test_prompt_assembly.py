"""`chatui.prompt_assembly`: an answer's input read from its request, without a query: the path
before it (the answer itself only when continued), the question, the system prompt, and what
its end needs (the tokens before a continue, whether a title is due)."""

from __future__ import annotations

import pytest

from chatui import services
from chatui.prompt_assembly import answer_prompt
from tests.chatui.helpers import MODEL_A, make_owner, new_conversation

pytestmark = pytest.mark.django_db


def _turns(prompt) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in prompt.messages]


def test_a_new_answer_is_generated_from_the_path_before_it(chat_models, django_assert_num_queries):
    owner = make_owner()
    cid = new_conversation(owner)
    request = services.message_send(identity=owner.identity, conversation_id=cid, content="Hi")
    with django_assert_num_queries(0):
        prompt = answer_prompt(request)
    assert _turns(prompt) == [("user", "Hi")]
    assert (prompt.question, prompt.preprompt) == ("Hi", "You are model A.")
    assert prompt.model.id == MODEL_A
    assert prompt.previous_tokens == 0 and prompt.needs_title is True


def test_a_continued_answer_includes_its_text_and_tokens_so_far(chat_models):
    owner = make_owner()
    cid = new_conversation(owner)
    sent = services.message_send(identity=owner.identity, conversation_id=cid, content="Story?")
    answer_id = sent.assistant_message.pk
    services.message_finish(message_id=answer_id, content="Once upon", generated_tokens=2)
    conversation = sent.assistant_message.conversation
    services.conversation_update(conversation=conversation, title="Stories")
    request = services.message_continue(
        identity=owner.identity, conversation_id=cid, message_id=answer_id
    )
    prompt = answer_prompt(request)
    assert _turns(prompt) == [("user", "Story?"), ("assistant", "Once upon")]
    assert prompt.question == "Story?" and prompt.previous_tokens == 2
    assert prompt.needs_title is False  # renamed: no generated title


def test_the_title_comes_from_the_first_message_and_its_edit_retitles(chat_models):
    owner = make_owner()
    cid = new_conversation(owner)
    first = services.message_send(identity=owner.identity, conversation_id=cid, content="Tides?")
    services.message_finish(message_id=first.assistant_message.pk, content="", error="failed")
    services.conversation_set_title(conversation_id=cid, title="Tides")
    second = services.message_send(
        identity=owner.identity,
        conversation_id=cid,
        content="And now?",
        parent_id=str(first.assistant_message.pk),
    )
    prompt = answer_prompt(second)
    assert prompt.needs_title is False and prompt.title_source == "Tides?"
    services.message_finish(message_id=second.assistant_message.pk, content="Low.")

    user_id = first.new_messages[0].pk
    edited = services.message_edit(
        identity=owner.identity, conversation_id=cid, message_id=user_id, content="Volcanoes?"
    )
    prompt = answer_prompt(edited)
    assert prompt.needs_title is True and prompt.title_source == "Volcanoes?"
    services.message_finish(message_id=edited.assistant_message.pk, content="Hot.")

    conversation = edited.assistant_message.conversation
    services.conversation_update(conversation=conversation, title="My own title")
    again = services.message_edit(
        identity=owner.identity, conversation_id=cid, message_id=user_id, content="Rivers?"
    )
    assert answer_prompt(again).needs_title is False  # renamed: the user's title stays
    assert services.conversation_set_title(conversation_id=cid, title="Rivers") == ""
