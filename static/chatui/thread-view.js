// The displayed branch of a conversation (chat-ui's ChatWindow): the list of messages, the
// streaming render loop (one body repaint per animation frame), sticking to the bottom while an
// answer grows, the edit-in-place draft, and the clicks on the messages' buttons. Reads the
// conversation state through `read()`; every change to it goes through the `actions` chat.js
// passes in. Must not import chat.js or the API, nor call conversation.js's `apply`.

import { visiblePath } from "./conversation.js";
import { copyText, flashCopied, installCodeCopy } from "./markdown.js";
import { fillBody, renderLooseError, renderMessage } from "./message-view.js";

const STICK_TO_BOTTOM_PX = 96;

const byId = (root, id) => root.querySelector(`.msg[data-id="${CSS.escape(id)}"]`);

export class ThreadView {
  /**
   * `read()` returns the conversation state (conversation.js); `modelLabel(id)` a model's name;
   * `actions` = {vote(message, score), regenerate(id), continueMessage(id), retry(id|null),
   * submitEdit(id, text), choose(id) -> bool, redraw()}; `redraw` re-renders the thread with
   * whatever chat.js keeps beside it (the model switch).
   */
  constructor({ messages, scroller, empty, read, modelLabel, actions }) {
    this.el = { messages, scroller, empty };
    this.read = read;
    this.modelLabel = modelLabel;
    this.actions = actions;
    this.editing = null; // {id, draft, focus}: the user message being edited
    this.dirty = new Set(); // message ids whose body must be re-rendered next frame
    this.frame = 0;
    messages.addEventListener("click", (event) => this.onClick(event));
    installCodeCopy(messages);
  }

  /** What one message needs to know about the page around it (message-view.js). */
  context() {
    const state = this.read();
    return {
      tree: state.tree,
      busy: state.busy,
      editing: this.editing,
      modelLabel: this.modelLabel,
      onCancelEdit: () => {
        this.editing = null;
        this.actions.redraw();
      },
      onSubmitEdit: (id, text) => this.actions.submitEdit(id, text),
    };
  }

  /** Rebuilds the displayed branch (structural changes only; tokens go through scheduleBody). */
  render() {
    if (this.editing) {
      const box = this.el.messages.querySelector(".edit-form textarea");
      if (box) this.editing.draft = box.value;
    }
    const state = this.read();
    const path = visiblePath(state);
    const empty = path.length === 0 && !state.looseError;
    this.el.empty.hidden = !(empty && (!state.conversationId || state.loaded));
    this.el.messages.hidden = empty;
    const view = this.context();
    const nodes = path.map((message) => renderMessage(message, view));
    if (state.looseError) nodes.push(renderLooseError(state.looseError, state.busy));
    this.el.messages.replaceChildren(...nodes);
    this.dirty.clear();
    const editBox = this.el.messages.querySelector(".edit-form textarea");
    if (editBox && document.activeElement !== editBox && this.editing?.focus) {
      this.editing.focus = false;
      editBox.focus();
      editBox.setSelectionRange(editBox.value.length, editBox.value.length);
    }
  }

  /** Re-renders one message in place (status changes). */
  refreshMessage(id) {
    const message = this.read().tree.get(id);
    const old = message ? byId(this.el.messages, id) : null;
    if (old) old.replaceWith(renderMessage(message, this.context()));
  }

  /** Queues a body re-render; at most one per animation frame, whatever the token rate. */
  scheduleBody(id) {
    this.dirty.add(id);
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const stick = this.nearBottom();
      for (const dirtyId of this.dirty) {
        const message = this.read().tree.get(dirtyId);
        const article = byId(this.el.messages, dirtyId);
        if (!message || !article) continue;
        if (!article.classList.contains("is-generating")) {
          article.replaceWith(renderMessage(message, this.context()));
        } else {
          fillBody(article.querySelector(".msg-body"), message);
        }
      }
      this.dirty.clear();
      if (stick) this.scrollToBottom();
    });
  }

  /** Enables or disables the buttons that start an answer. */
  setBusy(busy) {
    for (const button of this.el.messages.querySelectorAll("[data-needs-idle]")) {
      button.disabled = busy;
    }
  }

  nearBottom() {
    const s = this.el.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < STICK_TO_BOTTOM_PX;
  }

  scrollToBottom() {
    const s = this.el.scroller;
    s.scrollTop = s.scrollHeight;
  }

  async onClick(event) {
    const button = event.target.closest("button");
    if (!button || button.disabled || !this.el.messages.contains(button)) return;
    const id = button.closest(".msg")?.dataset.id;
    const message = id ? this.read().tree.get(id) : null;
    const has = (name) => button.classList.contains(name);
    if (has("retry-btn")) {
      this.actions.retry(button.dataset.retry || null);
    } else if (!message) {
      return;
    } else if (has("msg-copy")) {
      if (await copyText(message.content || "")) flashCopied(button);
    } else if (has("msg-vote-up") || has("msg-vote-down")) {
      this.actions.vote(message, has("msg-vote-up") ? 1 : -1);
    } else if (has("msg-regenerate")) {
      this.actions.regenerate(message.id);
    } else if (has("msg-continue")) {
      this.actions.continueMessage(message.id);
    } else if (has("msg-edit")) {
      this.editing = { id: message.id, draft: message.content, focus: true };
      this.actions.redraw();
    } else if (has("branch-prev") || has("branch-next")) {
      const direction = has("branch-prev") ? "branch-prev" : "branch-next";
      if (!this.actions.choose(button.dataset.target)) return;
      this.actions.redraw();
      const again = this.el.messages.querySelector(
        `.msg[data-id="${CSS.escape(button.dataset.target)}"] .${direction}`,
      );
      if (again && !again.disabled) again.focus();
    }
  }
}
