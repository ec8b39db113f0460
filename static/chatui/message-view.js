// One message of the thread as DOM (chat-ui's ChatMessage): the user's bubble or its editor, an
// answer with its tool calls, body, error box and actions, and the branch switcher. Builds
// elements only: the buttons carry classes and data attributes that thread-view.js acts on.
// Reads the conversation state it is given; never imports conversation.js, chat.js or the API.

import { renderAnswer, toolBlocks } from "./blocks.js";
import { div, textSpan } from "./dom.js";
import { messageFiles } from "./files.js";
import { ICONS, iconButton } from "./icons.js";
import { forgetRendered } from "./markdown.js";

export const STOPPED_LABEL = "Stopped";

/**
 * `view` = {tree, busy, editing: {id, draft} | null, modelLabel(id), onCancelEdit(),
 * onSubmitEdit(id, text)}: what a message needs to know about the page around it.
 */
export function renderMessage(message, view) {
  return message.role === "user" ? renderUser(message, view) : renderAssistant(message, view);
}

/** The <article> around one message: its id and role for the tests and the click handler. */
function messageArticle(id, role, label) {
  const article = document.createElement("article");
  article.className = `msg msg-${role}`;
  article.dataset.id = id;
  article.dataset.role = role;
  article.setAttribute("aria-label", label);
  return article;
}

function renderUser(message, view) {
  const article = messageArticle(message.id, "user", "Your message");
  const main = div("msg-main");
  if (view.editing && view.editing.id === message.id) {
    main.append(renderEditor(message, view));
  } else {
    const files = messageFiles(message.files);
    if (files) main.append(files);
    const bubble = div("msg-bubble");
    bubble.textContent = message.content;
    main.append(bubble);
    const actions = div("msg-actions");
    actions.append(
      ...branchSwitcher(message, view.tree),
      actionButton("msg-edit", "Edit message", ICONS.edit, { needsIdle: true, busy: view.busy }),
      actionButton("msg-copy", "Copy message", ICONS.copy),
    );
    main.append(actions);
  }
  article.append(main);
  return article;
}

function renderEditor(message, view) {
  const form = document.createElement("form");
  form.className = "edit-form";
  form.dataset.id = message.id;
  const area = document.createElement("textarea");
  area.value = view.editing.draft ?? message.content;
  area.rows = Math.min(10, Math.max(2, area.value.split("\n").length));
  area.setAttribute("aria-label", "Edit message");
  const row = div("edit-actions");
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "btn edit-cancel";
  cancel.textContent = "Cancel";
  const save = document.createElement("button");
  save.type = "submit";
  save.className = "btn btn-primary edit-save";
  save.textContent = "Send";
  row.append(cancel, save);
  form.append(area, row);
  area.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    } else if (event.key === "Escape") {
      event.preventDefault();
      view.onCancelEdit();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    view.onSubmitEdit(message.id, area.value);
  });
  cancel.addEventListener("click", () => view.onCancelEdit());
  return form;
}

function renderAssistant(message, view) {
  const article = messageArticle(message.id, "assistant", "Answer");
  article.classList.toggle("is-generating", Boolean(message.is_generating));
  // Screen readers wait for the finished answer instead of hearing every frame.
  article.setAttribute("aria-busy", String(Boolean(message.is_generating)));
  const main = div("msg-main");
  const meta = div("msg-meta");
  const label = document.createElement("span");
  label.className = "msg-model";
  label.dataset.model = message.model || "";
  label.textContent = view.modelLabel(message.model);
  meta.append(label);
  if (message.interrupted && !message.error && !message.is_generating) {
    const stopped = textSpan(STOPPED_LABEL);
    stopped.className = "msg-stopped";
    meta.append(stopped);
  }
  const body = div("msg-body markdown");
  fillBody(body, message);
  main.append(meta, ...toolBlocks(message.tool_calls, message.running_tools), body);

  if (message.error) main.append(errorBox(message.error, message.id, view.busy));

  const actions = div("msg-actions");
  const canContinue =
    !message.is_generating &&
    !message.error &&
    (message.finish_reason === "length" || Boolean(message.interrupted));
  actions.append(...branchSwitcher(message, view.tree));
  if (!message.is_generating) {
    const idle = { needsIdle: true, busy: view.busy };
    // An answer that failed is not rated: there is nothing to judge but the error.
    if (!message.error) {
      actions.append(
        scoreButton("msg-vote-up", "Good answer", ICONS.thumbUp, message.score === 1),
        scoreButton("msg-vote-down", "Bad answer", ICONS.thumbDown, message.score === -1),
      );
    }
    actions.append(
      actionButton("msg-copy", "Copy answer", ICONS.copy),
      actionButton("msg-regenerate", "Regenerate answer", ICONS.regenerate, idle),
    );
    if (canContinue) {
      const button = actionButton("msg-continue", "Continue answer", ICONS.continue, idle);
      button.append(textSpan("Continue"));
      actions.append(button);
    }
  }
  main.append(actions);
  article.append(main);
  return article;
}

/** An answer's body: the typing dots before its first token, then its text. */
export function fillBody(body, message) {
  const content = message.content || "";
  if (!content && message.is_generating) {
    forgetRendered(body);
    body.innerHTML = '<span class="typing" aria-label="Writing"><i></i><i></i><i></i></span>';
    return;
  }
  renderAnswer(body, content);
}

function errorBox(text, assistantId, busy) {
  const box = div("msg-error");
  box.setAttribute("role", "alert");
  const icon = document.createElement("span");
  icon.className = "msg-error-icon";
  icon.innerHTML = ICONS.alert;
  const words = document.createElement("span");
  words.className = "msg-error-text";
  words.textContent = text;
  const retry = document.createElement("button");
  retry.type = "button";
  retry.className = "btn retry-btn";
  retry.dataset.retry = assistantId || "";
  retry.dataset.needsIdle = "";
  retry.disabled = busy;
  retry.innerHTML = ICONS.retry;
  retry.append(textSpan("Retry"));
  box.append(icon, words, retry);
  return box;
}

/** An error that belongs to no stored message (a refused request), shown as an answer. */
export function renderLooseError(text, busy) {
  const article = document.createElement("article");
  article.className = "msg msg-assistant msg-loose-error";
  const main = div("msg-main");
  main.append(errorBox(text, null, busy));
  article.append(main);
  return article;
}

/** `< 1/2 >` for a message with siblings of its role (none: []); shared.js uses it too. */
export function branchSwitcher(message, tree) {
  const siblings = tree.siblings(message).filter((m) => m.role === message.role);
  if (siblings.length < 2) return [];
  const index = siblings.findIndex((m) => m.id === message.id);
  const nav = document.createElement("div");
  nav.className = "branch-switcher";
  nav.setAttribute("role", "group");
  nav.setAttribute("aria-label", "Versions");
  const prev = actionButton("branch-prev", "Previous version", ICONS.left);
  prev.disabled = index <= 0;
  prev.dataset.target = index > 0 ? siblings[index - 1].id : "";
  const count = document.createElement("span");
  count.className = "branch-count";
  count.textContent = `${index + 1}/${siblings.length}`;
  const next = actionButton("branch-next", "Next version", ICONS.right);
  next.disabled = index >= siblings.length - 1;
  next.dataset.target = index < siblings.length - 1 ? siblings[index + 1].id : "";
  nav.append(prev, count, next);
  return [nav];
}

function scoreButton(className, label, icon, pressed) {
  const button = iconButton(`msg-vote ${className}`, label, icon);
  button.setAttribute("aria-pressed", String(pressed));
  return button;
}

function actionButton(className, label, icon, { needsIdle = false, busy = false } = {}) {
  const button = iconButton(className, label, icon);
  if (needsIdle) {
    button.dataset.needsIdle = "";
    button.disabled = busy;
  }
  return button;
}
