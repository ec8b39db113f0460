"""chatui.prompting: chat-ui's templates, the model's own template, ChatML, continue, truncation."""

from __future__ import annotations

import pytest

from chatui.models_config import ModelSpec, bundled_model
from chatui.prompting import (
    ChatMessage,
    PromptTemplateError,
    build_chat_messages,
    build_prompt,
    is_jinja,
    truncate_messages,
)

# Templates as they appear in chat-ui's own configurations.
CHATML = (
    "{{#if @root.preprompt}}<|im_start|>system\n{{@root.preprompt}}<|im_end|>\n{{/if}}"
    "{{#each messages}}{{#ifUser}}<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"
    "{{/ifUser}}{{#ifAssistant}}{{content}}<|im_end|>\n{{/ifAssistant}}{{/each}}"
)
LLAMA2 = (
    "{{#each messages}}{{#ifUser}}{{#if @first}}<s>[INST] {{#if @root.preprompt}}<<SYS>>\n"
    "{{@root.preprompt}}\n<</SYS>>\n\n{{/if}}{{else}}<s>[INST] {{/if}}{{content}} [/INST]"
    "{{/ifUser}}{{#ifAssistant}} {{content}} </s>{{/ifAssistant}}{{/each}}"
)
MISTRAL = (
    "<s>{{#each messages}}{{#ifUser}}[INST] {{#if @first}}{{#if @root.preprompt}}"
    "{{@root.preprompt}}\n{{/if}}{{/if}}{{content}} [/INST]{{/ifUser}}"
    "{{#ifAssistant}}{{content}}</s>{{/ifAssistant}}{{/each}}"
)
ZEPHYR = (
    "<|system|>\n{{preprompt}}</s>\n{{#each messages}}{{#ifUser}}<|user|>\n{{content}}</s>\n"
    "<|assistant|>\n{{/ifUser}}{{#ifAssistant}}{{content}}</s>\n{{/ifAssistant}}{{/each}}"
)
# SmolLM2's own chat template (tokenizer_config.json / chat_template.jinja).
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Mistral-style Jinja template that refuses a system role.
NO_SYSTEM_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ message['content'] + '</s>' }}{% endif %}{% endfor %}"
)

HISTORY = [
    ChatMessage("user", 'Hi <there> & "you"'),
    ChatMessage("assistant", "Hello!"),
    ChatMessage("user", "What is 2+2?"),
]


def make_model(**changes) -> ModelSpec:
    return bundled_model().model_copy(update=changes)


def test_chatml_handlebars_template_without_html_escaping() -> None:
    prompt = build_prompt(make_model(chat_prompt_template=CHATML), HISTORY, preprompt="Be kind.")
    assert prompt == (
        "<|im_start|>system\nBe kind.<|im_end|>\n"
        '<|im_start|>user\nHi <there> & "you"<|im_end|>\n<|im_start|>assistant\n'
        "Hello!<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_llama2_template_puts_the_system_prompt_in_the_first_turn_only() -> None:
    prompt = build_prompt(make_model(chat_prompt_template=LLAMA2), HISTORY, preprompt="Be kind.")
    assert prompt == (
        '<s>[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\nHi <there> & "you" [/INST] Hello! </s>'
        "<s>[INST] What is 2+2? [/INST]"
    )
    without = build_prompt(make_model(chat_prompt_template=LLAMA2), HISTORY[:1], preprompt="")
    assert without == '<s>[INST] Hi <there> & "you" [/INST]'


def test_mistral_template() -> None:
    prompt = build_prompt(make_model(chat_prompt_template=MISTRAL), HISTORY, preprompt="Be kind.")
    assert prompt == (
        '<s>[INST] Be kind.\nHi <there> & "you" [/INST]Hello!</s>[INST] What is 2+2? [/INST]'
    )


def test_zephyr_template_reads_preprompt_from_root() -> None:
    prompt = build_prompt(make_model(chat_prompt_template=ZEPHYR), HISTORY[:1], preprompt="Sys")
    assert prompt == '<|system|>\nSys</s>\n<|user|>\nHi <there> & "you"</s>\n<|assistant|>\n'


def test_if_system_templates_see_the_system_message() -> None:
    template = (
        "{{#each messages}}{{#ifSystem}}S:{{content}}|{{/ifSystem}}{{#ifUser}}U:{{content}}|"
        "{{/ifUser}}{{#ifAssistant}}A:{{content}}|{{/ifAssistant}}{{/each}}"
    )
    prompt = build_prompt(make_model(chat_prompt_template=template), HISTORY[:2], preprompt="P")
    assert prompt == 'S:P|U:Hi <there> & "you"|A:Hello!|'


def test_tokenizer_template_is_used_when_there_is_no_prompt_template() -> None:
    model = make_model()
    prompt = build_prompt(model, HISTORY[:1], preprompt="", tokenizer_template=SMOLLM2_TEMPLATE)
    assert prompt == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        'Face<|im_end|>\n<|im_start|>user\nHi <there> & "you"<|im_end|>\n<|im_start|>assistant\n'
    )
    prompt = build_prompt(model, HISTORY[:1], preprompt="Sys", tokenizer_template=SMOLLM2_TEMPLATE)
    assert prompt.startswith("<|im_start|>system\nSys<|im_end|>\n<|im_start|>user\n")


def test_chat_prompt_template_wins_over_tokenizer_template() -> None:
    model = make_model(chat_prompt_template=ZEPHYR)
    prompt = build_prompt(model, HISTORY[:1], preprompt="", tokenizer_template=SMOLLM2_TEMPLATE)
    assert prompt.startswith("<|system|>")


def test_jinja_in_chat_prompt_template_is_rendered_as_jinja() -> None:
    assert is_jinja(SMOLLM2_TEMPLATE)
    assert is_jinja("{{ messages[0].content }}")
    assert not is_jinja(CHATML) and not is_jinja(LLAMA2)
    prompt = build_prompt(
        make_model(chat_prompt_template=SMOLLM2_TEMPLATE), HISTORY[:1], preprompt="Sys"
    )
    assert prompt.startswith("<|im_start|>system\nSys<|im_end|>\n")


def test_chatml_fallback() -> None:
    prompt = build_prompt(make_model(), HISTORY, preprompt="Sys")
    assert prompt == (
        "<|im_start|>system\nSys<|im_end|>\n"
        '<|im_start|>user\nHi <there> & "you"<|im_end|>\n'
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert build_prompt(make_model(), HISTORY[:1], preprompt="").startswith("<|im_start|>user\n")


def test_system_prompt_comes_from_preprompt_then_history_then_model() -> None:
    model = make_model(preprompt="Model default")
    history = [ChatMessage("system", "From history"), *HISTORY[:1]]
    assert "From history" in build_prompt(model, history, preprompt=None)
    assert "Given" in build_prompt(model, history, preprompt="Given")
    assert "From history" not in build_prompt(model, history, preprompt="Given")
    assert "Model default" in build_prompt(model, HISTORY[:1], preprompt=None)


def test_system_role_unsupported_merges_into_first_user_message() -> None:
    model = make_model(system_role_supported=False)
    prompt = build_prompt(model, HISTORY, preprompt="Sys")
    assert prompt.startswith('<|im_start|>user\nSys\nHi <there> & "you"<|im_end|>\n')
    assert "system" not in prompt

    strict = make_model(system_role_supported=False, chat_prompt_template=NO_SYSTEM_TEMPLATE)
    assert build_prompt(strict, HISTORY[:1], preprompt="Sys") == (
        '[INST] Sys\nHi <there> & "you" [/INST]'
    )
    assert build_chat_messages(strict, HISTORY[:2], "Sys") == [
        {"role": "user", "content": 'Sys\nHi <there> & "you"'},
        {"role": "assistant", "content": "Hello!"},
    ]
    assert build_chat_messages(make_model(), HISTORY[:1], "Sys")[0] == {
        "role": "system",
        "content": "Sys",
    }


def test_template_errors_are_readable() -> None:
    strict = make_model(chat_prompt_template=NO_SYSTEM_TEMPLATE)
    with pytest.raises(PromptTemplateError, match="System role not supported"):
        build_prompt(strict, HISTORY[:1], preprompt="Sys")
    sneaky = make_model(
        chat_prompt_template="{% for x in messages %}{{ x.__class__.__mro__ }}{% endfor %}"
    )
    with pytest.raises(PromptTemplateError):
        build_prompt(sneaky, HISTORY[:1], preprompt="")


@pytest.mark.parametrize(
    ("changes", "tokenizer_template", "expected_end"),
    [
        ({}, None, "<|im_start|>assistant\nHello! I can"),
        ({"chat_prompt_template": CHATML}, None, "<|im_start|>assistant\nHello! I can"),
        ({"chat_prompt_template": MISTRAL}, None, "[/INST]Hello! I can"),
        ({"chat_prompt_template": LLAMA2}, None, "[/INST] Hello! I can"),
        ({}, SMOLLM2_TEMPLATE, "<|im_start|>assistant\nHello! I can"),
    ],
)
def test_continue_leaves_the_last_answer_open(changes, tokenizer_template, expected_end) -> None:
    history = [HISTORY[0], ChatMessage("assistant", "Hello! I can")]
    prompt = build_prompt(
        make_model(**changes),
        history,
        preprompt="",
        continue_message=True,
        tokenizer_template=tokenizer_template,
    )
    assert prompt.endswith(expected_end)


def test_continue_without_a_trailing_answer_is_a_normal_prompt() -> None:
    assert build_prompt(make_model(), HISTORY, preprompt="", continue_message=True) == build_prompt(
        make_model(), HISTORY, preprompt=""
    )


def test_truncate_messages_drops_oldest_non_system_messages() -> None:
    history = [
        ChatMessage("system", "s" * 40),
        ChatMessage("user", "a" * 400),
        ChatMessage("assistant", "b" * 400),
        ChatMessage("user", "c" * 40),
    ]
    assert truncate_messages(history, None) == history
    assert truncate_messages(history, 1000) == history
    # 100 tokens ~ 400 characters: the system prompt and the last message stay.
    assert [m.content[0] for m in truncate_messages(history, 150)] == ["s", "b", "c"]
    assert [m.content[0] for m in truncate_messages(history, 10)] == ["s", "c"]
