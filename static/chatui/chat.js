// The conversation view: message list, composer, model switcher and the websocket protocol of
// docs/chat-protocol.md. Owns the displayed branch and the streaming render loop.
// Uses api.js / socket.js / markdown.js / tree.js; the sidebar and settings are reached only
// through the callbacks app.js passes in.

import { postJSON, patchJSON, uploadFile } from "./api.js";
import { PendingFiles, messageFiles } from "./files.js";
import { ICONS, iconButton } from "./icons.js";
import { renderAnswer, toolBlocks } from "./blocks.js";
import { copyText, flashCopied, forgetRendered, installCodeCopy } from "./markdown.js";
import { ConversationSocket } from "./socket.js";
import { MessageTree } from "./tree.js";

export const RECONNECTING_NOTICE = "Connection lost. Reconnecting…";
export const DENIED_NOTICE = "This conversation is not available.";
export const GENERIC_ERROR = "Something went wrong while writing the answer.";
const STICK_TO_BOTTOM_PX = 96;
const COMPOSER_MAX_PX = 240;

/**
 * The chat column. Public surface used by app.js:
 * open(id, {push}), newChat({push}), setActiveModel(id), conversationId.
 */
export class Chat {
  constructor({ models, activeModel, appName, sidebar, notify, onActiveModelPicked }) {
    this.models = models;
    this.activeModel = activeModel;
    this.appName = appName;
    this.sidebar = sidebar;
    this.notify = notify;
    this.onActiveModelPicked = onActiveModelPicked;

    this.conversationId = null;
    this.conversation = null;
    this.tree = new MessageTree();
    this.socket = null;
    this.generatingId = null;
    this.isBusy = false;
    this.pendingSend = null; // text sent but not yet stored as a user message
    this.looseError = null; // an error not attached to any stored message
    this.editing = null; // {id, draft}
    this.selectedModel = activeModel;
    this.dirty = new Set(); // message ids whose body must be re-rendered next frame
    this.frame = 0;
    this.loaded = false;

    this.el = {
      app: document.getElementById("app"),
      scroller: document.getElementById("chat-scroll"),
      messages: document.getElementById("messages"),
      empty: document.getElementById("empty-state"),
      title: document.getElementById("conv-title"),
      modelSelect: document.getElementById("model-select"),
      modelPicker: document.getElementById("model-picker"),
      modelName: document.getElementById("model-name"),
      modelDesc: document.getElementById("model-desc"),
      modelLink: document.getElementById("model-link"),
      examples: document.getElementById("examples"),
      form: document.getElementById("composer"),
      prompt: document.getElementById("prompt"),
      send: document.getElementById("send-btn"),
      stop: document.getElementById("stop-btn"),
      share: document.getElementById("share-btn"),
      assistant: document.getElementById("assistant-chip"),
    };

    this.files = new PendingFiles({
      container: document.getElementById("pending-files"),
      input: document.getElementById("file-input"),
      attach: document.getElementById("attach-btn"),
      dropZone: document.getElementById("main"),
      prompt: this.el.prompt,
      notify: this.notify,
      currentModel: () => this.model(this.selectedModel || this.activeModel),
      onChange: () => this.updateSendState(),
    });

    this.fillModelSelect(this.el.modelSelect);
    this.fillModelSelect(this.el.modelPicker);
    this.installComposer();
    this.installMessageActions();
    installCodeCopy(this.el.messages);

    this.el.modelPicker.addEventListener("change", () => {
      this.setActiveModel(this.el.modelPicker.value);
      this.onActiveModelPicked(this.el.modelPicker.value);
    });
    this.el.modelSelect.addEventListener("change", () => this.switchModel(this.el.modelSelect.value));
    this.el.examples.addEventListener("click", (event) => {
      const card = event.target.closest(".example-card");
      if (card) this.sendText(card.dataset.prompt);
    });
  }

  // --- models -------------------------------------------------------------------------------

  model(id) {
    return this.models.find((m) => m.id === id) || null;
  }

  modelLabel(id) {
    const model = this.model(id);
    return model ? model.displayName || model.name || model.id : id || "";
  }

  fillModelSelect(select) {
    select.replaceChildren(
      ...this.models.map((m) => {
        const option = document.createElement("option");
        option.value = m.id;
        option.textContent = m.displayName || m.name || m.id;
        return option;
      }),
    );
  }

  /** The model for new chats (the settings' active model). */
  setActiveModel(id) {
    if (!this.model(id)) return;
    this.activeModel = id;
    if (!this.conversationId) {
      this.selectedModel = id;
      this.renderEmpty();
    }
  }

  /** Inside a conversation: the next answer comes from `id`. */
  async switchModel(id) {
    if (!this.model(id) || !this.conversationId) return;
    this.selectedModel = id;
    try {
      const updated = await patchJSON(`/api/conversations/${this.conversationId}`, { model: id });
      if (this.conversation && updated && updated.id === this.conversationId) {
        this.conversation.model = updated.model;
      }
    } catch (error) {
      this.notify(error.message, "error");
    }
  }

  // --- navigation ---------------------------------------------------------------------------

  /** Shows a stored conversation (its snapshot arrives over the socket). */
  open(id, { push = true } = {}) {
    if (id === this.conversationId && this.socket) return;
    this.reset();
    this.conversationId = id;
    if (push) history.pushState({ id }, "", `/conversation/${id}`);
    this.sidebar.setCurrent(id);
    this.el.app.classList.add("is-loading");
    this.el.share.hidden = false;
    this.connect();
    this.render();
  }

  /** An empty chat with the examples and the model picker. */
  newChat({ push = true } = {}) {
    this.reset();
    if (push && location.pathname !== "/") history.pushState({}, "", "/");
    this.sidebar.setCurrent(null);
    this.el.share.hidden = true;
    this.selectedModel = this.activeModel;
    this.render();
    this.el.prompt.focus();
  }

  reset() {
    if (this.socket) this.socket.close();
    this.socket = null;
    this.conversationId = null;
    this.conversation = null;
    this.tree = new MessageTree();
    this.generatingId = null;
    this.looseError = null;
    this.editing = null;
    this.pendingSend = null;
    this.loaded = false;
    this.setBusy(false);
    this.notify(null);
  }

  connect() {
    const id = this.conversationId;
    this.socket = new ConversationSocket(id, {
      onMessage: (event) => this.onEvent(event),
      onState: (state) => {
        if (state === "reconnecting") this.notify(RECONNECTING_NOTICE, "warn");
        else if (state === "open") this.notify(null);
        else if (state === "denied") {
          this.el.app.classList.remove("is-loading");
          this.restorePending();
          this.notify(DENIED_NOTICE, "error");
        }
      },
    });
  }

  // --- protocol events ----------------------------------------------------------------------

  onEvent(event) {
    switch (event.type) {
      case "snapshot":
        return this.onSnapshot(event.conversation);
      case "message":
        return this.onMessage(event.message);
      case "status":
        return this.onStatus(event.message_id, event.status);
      case "token":
        return this.onToken(event.message_id, event.token, event.offset);
      case "final":
        return this.onFinal(event.message);
      case "tool_calls":
        return this.onToolCalls(event.message_id, event.tool_calls);
      case "title":
        return this.onTitle(event.conversation_id, event.title);
      case "error":
        return this.onError(event.message, event.message_id);
      default:
        return undefined;
    }
  }

  /** The tools an answer called, before its text: shown at once as closed blocks. */
  onToolCalls(messageId, toolCalls) {
    const message = this.tree.get(messageId);
    if (!message) return;
    message.tool_calls = toolCalls || [];
    this.refreshMessage(message);
  }

  onSnapshot(conversation) {
    if (!conversation || conversation.id !== this.conversationId) return;
    const chosen = this.tree.chosen;
    this.tree = new MessageTree(conversation.messages || []);
    this.tree.chosen = chosen;
    this.conversation = conversation;
    this.selectedModel = conversation.model || this.selectedModel;
    this.generatingId = null;
    for (const message of this.tree.byId.values()) {
      if (message.is_generating) this.generatingId = message.id;
    }
    if (this.generatingId) this.tree.reveal(this.tree.get(this.generatingId));
    // NOTE: a send queued before this snapshot is still on its way: stay busy until it lands.
    const waiting = this.pendingSend !== null;
    this.setBusy(Boolean(this.generatingId || conversation.is_generating || waiting));
    this.el.app.classList.remove("is-loading");
    const first = !this.loaded;
    this.loaded = true;
    this.render();
    if (first) this.scrollToBottom();
  }

  onMessage(message) {
    if (!message) return;
    const stick = this.nearBottom();
    const stored = this.tree.add(message);
    this.tree.reveal(stored);
    if (message.role === "user") {
      this.pendingSend = null;
      this.looseError = null;
    }
    if (message.role === "assistant" && message.is_generating) {
      this.generatingId = message.id;
      this.looseError = null;
      this.setBusy(true);
    }
    this.renderThread();
    if (stick || message.role === "user") this.scrollToBottom();
  }

  onStatus(id, status) {
    const message = this.tree.get(id);
    if (status === "queued" || status === "generating") {
      this.generatingId = id;
      if (message) message.is_generating = true;
      this.setBusy(true);
    } else {
      if (message) message.is_generating = false;
      if (this.generatingId === id) {
        this.generatingId = null;
        this.setBusy(false);
      }
    }
    if (message) this.refreshMessage(message);
  }

  /** `offset` (UTF-16 units, like JS strings) says where the token goes: a token already
   * shown is skipped, one that overlaps the end replaces it (a resync after a reconnect sends
   * the whole text at offset 0). Without an offset the token is appended. */
  onToken(id, token, offset) {
    const message = this.tree.get(id);
    if (!message) return;
    const content = message.content || "";
    if (typeof offset === "number") {
      if (offset + token.length <= content.length) return;
      message.content = content.slice(0, Math.min(offset, content.length)) + token;
    } else {
      message.content = content + token;
    }
    if (!message.is_generating) {
      message.is_generating = true;
      this.generatingId = id;
      this.setBusy(true);
    }
    this.scheduleBody(id);
  }

  onFinal(message) {
    if (!message) return;
    const stick = this.nearBottom();
    const stored = this.tree.add({ ...message, is_generating: false });
    if (this.generatingId === stored.id) {
      this.generatingId = null;
      this.setBusy(false);
    }
    this.renderThread();
    if (stick) this.scrollToBottom();
    if (this.conversation) {
      const updatedAt = new Date().toISOString();
      const entry = { id: this.conversationId, title: this.conversation.title, updated_at: updatedAt };
      this.sidebar.upsert(entry, { bump: true });
    }
  }

  onTitle(conversationId, title) {
    if (this.conversation && conversationId === this.conversationId) {
      this.conversation.title = title;
      this.renderTitle();
    }
    this.sidebar.setTitle(conversationId, title);
  }

  onError(text, messageId) {
    const readable = text || GENERIC_ERROR;
    const message = messageId ? this.tree.get(messageId) : null;
    if (message) {
      message.error = readable;
      message.is_generating = false;
      this.looseError = null;
    } else {
      this.looseError = readable;
    }
    // A refused request (no message id) while another answer runs leaves that answer running.
    if (!this.generatingId || this.generatingId === messageId) {
      this.generatingId = null;
      this.setBusy(false);
    }
    this.restorePending();
    this.renderThread();
    this.scrollToBottom();
  }

  /** Puts text that never became a stored message back into the composer. */
  restorePending() {
    if (this.pendingSend === null) return;
    if (!this.el.prompt.value.trim()) {
      this.el.prompt.value = this.pendingSend;
      this.autosize();
    }
    this.pendingSend = null;
  }

  // --- sending ------------------------------------------------------------------------------

  async sendText(raw) {
    const text = (raw || "").trim();
    if (!text || this.isBusy) return;
    const refused = this.files.refusalFor(this.model(this.selectedModel || this.activeModel));
    if (refused) {
      this.notify(refused, "error");
      return;
    }
    this.el.prompt.value = "";
    this.autosize();
    this.setBusy(true); // also guards against a second send while the conversation is created
    if (!this.conversationId) {
      // The server applies the user's custom system prompt for this model (or its preprompt).
      const model = this.selectedModel || this.activeModel;
      let created;
      try {
        created = await postJSON("/api/conversations", { model });
      } catch (error) {
        this.sendFailed(error, text);
        return;
      }
      this.open(created.id);
      this.conversation = created;
      this.sidebar.upsert(
        {
          id: created.id,
          title: created.title,
          model: created.model,
          updated_at: created.updated_at,
          is_generating: true,
        },
        { bump: true },
      );
      this.setBusy(true);
    }
    const attachments = [];
    try {
      for (const { file } of this.files.files) {
        const url = `/api/conversations/${this.conversationId}/attachments`;
        attachments.push((await uploadFile(url, file)).id);
      }
    } catch (error) {
      this.sendFailed(error, text);
      return;
    }
    this.files.clear();
    const leaf = this.visiblePath().at(-1) || null;
    let parentId = leaf ? leaf.id : null;
    // A user message whose answer never came: the new one replaces it as a sibling.
    if (leaf && leaf.role === "user") parentId = leaf.parent_id ?? null;
    this.pendingSend = text;
    this.looseError = null;
    this.socket.send({
      type: "send",
      content: text,
      parent_id: parentId,
      model: this.selectedModel,
      attachments,
    });
    this.scrollToBottom();
  }

  /** chat-ui's score: thumbs up or down on an answer; the same thumb again takes it back. */
  async vote(message, score) {
    const next = message.score === score ? 0 : score;
    const url = `/api/conversations/${this.conversationId}/messages/${message.id}/score`;
    try {
      const saved = await postJSON(url, { score: next });
      message.score = saved.score;
      this.refreshMessage(message);
    } catch (error) {
      this.notify(error.message, "error");
    }
  }

  /** A send that failed before reaching the socket: say why, give the text back. */
  sendFailed(error, text) {
    this.notify(error.message, "error");
    this.setBusy(false);
    this.pendingSend = text;
    this.restorePending();
  }

  /** The text of the last answer on the displayed branch ("" when there is none). */
  lastAnswerText() {
    const answer = this.visiblePath().findLast((m) => m.role === "assistant" && m.content);
    return answer ? answer.content : "";
  }

  stop() {
    if (this.socket) this.socket.send({ type: "stop" });
  }

  regenerate(messageId) {
    if (!this.socket || this.isBusy) return;
    this.looseError = null;
    const message = this.tree.get(messageId);
    if (message) message.error = null;
    this.setBusy(true);
    this.socket.send({ type: "regenerate", message_id: messageId });
    this.renderThread();
  }

  continueMessage(messageId) {
    if (!this.socket || this.isBusy) return;
    this.setBusy(true);
    this.socket.send({ type: "continue", message_id: messageId });
  }

  submitEdit(messageId, content) {
    const text = content.trim();
    if (!text || !this.socket || this.isBusy) return;
    this.editing = null;
    this.setBusy(true);
    this.socket.send({ type: "edit", message_id: messageId, content: text });
    this.renderThread();
  }

  /** Retry after an error: a new answer under the failed turn's user message. */
  retry(assistantId) {
    const path = this.visiblePath();
    let userId = null;
    if (assistantId) {
      userId = this.tree.get(assistantId)?.parent_id ?? null;
    } else {
      const lastUser = [...path].reverse().find((m) => m.role === "user");
      userId = lastUser ? lastUser.id : null;
    }
    if (userId && this.tree.get(userId)?.role === "user") {
      this.regenerate(userId);
    } else if (this.el.prompt.value.trim()) {
      this.looseError = null;
      this.sendText(this.el.prompt.value);
    }
  }

  setBusy(busy) {
    this.isBusy = busy;
    this.el.send.hidden = busy;
    this.el.stop.hidden = !busy;
    this.el.app.classList.toggle("is-generating", busy);
    this.updateSendState();
    if (this.conversationId) this.sidebar.setGenerating(this.conversationId, busy);
    for (const button of this.el.messages.querySelectorAll("[data-needs-idle]")) {
      button.disabled = busy;
    }
  }

  // --- composer -----------------------------------------------------------------------------

  installComposer() {
    const { form, prompt, stop } = this.el;
    prompt.addEventListener("input", () => this.autosize());
    prompt.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        if (!this.isBusy) form.requestSubmit();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendText(prompt.value);
    });
    stop.addEventListener("click", () => this.stop());
    this.autosize();
  }

  autosize() {
    const { prompt } = this.el;
    prompt.style.height = "auto";
    prompt.style.height = `${Math.min(prompt.scrollHeight, COMPOSER_MAX_PX)}px`;
    prompt.style.overflowY = prompt.scrollHeight > COMPOSER_MAX_PX ? "auto" : "hidden";
    this.updateSendState();
  }

  updateSendState() {
    this.el.send.disabled = this.isBusy || !this.el.prompt.value.trim();
  }

  // --- rendering ----------------------------------------------------------------------------

  visiblePath() {
    return this.tree.path().filter((m) => m.role !== "system");
  }

  render() {
    this.renderTitle();
    this.renderEmpty();
    this.renderThread();
  }

  renderTitle() {
    this.renderAssistantChip();
    const title = this.conversation?.title || (this.conversationId ? "" : this.appName);
    this.el.title.textContent = title || this.appName;
    document.title = this.conversationId && title ? `${title} - ${this.appName}` : this.appName;
  }

  /** The assistant a conversation runs, next to its title (a link to its page). */
  renderAssistantChip() {
    const assistant = this.conversation?.assistant;
    const chip = this.el.assistant;
    chip.hidden = !assistant;
    if (!assistant) return;
    chip.href = assistant.url;
    chip.title = `Assistant: ${assistant.name}`;
    let avatar;
    if (assistant.avatar_url) {
      avatar = document.createElement("img");
      avatar.src = assistant.avatar_url;
      avatar.alt = "";
    } else {
      avatar = document.createElement("span");
      avatar.textContent = assistant.name.slice(0, 1).toUpperCase();
      avatar.classList.add("assistant-avatar-letter");
    }
    avatar.classList.add("assistant-avatar");
    chip.replaceChildren(avatar, textSpan(assistant.name));
  }

  renderEmpty() {
    const assistant = this.conversation?.assistant;
    const model = this.model(this.selectedModel) || this.models[0];
    this.el.modelPicker.value = this.activeModel;
    this.el.modelSelect.value = this.selectedModel;
    this.el.modelSelect.closest(".model-switch").hidden = !this.conversationId;
    this.el.empty.classList.toggle("has-assistant", Boolean(assistant));
    if (assistant) {
      // An assistant's chat: its name and description, and its starters as the examples.
      this.el.modelName.textContent = assistant.name;
      this.el.modelDesc.textContent = assistant.description || "";
      this.el.modelLink.hidden = true;
      const starters = (assistant.starters || []).map((prompt) => ({ title: "", prompt }));
      this.el.examples.replaceChildren(...starters.map(exampleCard));
      return;
    }
    if (!model) return;
    this.el.modelName.textContent = model.displayName || model.name;
    this.el.modelDesc.textContent = model.description || "";
    if (model.websiteUrl && /^https?:\/\//.test(model.websiteUrl)) {
      this.el.modelLink.href = model.websiteUrl;
      this.el.modelLink.hidden = false;
    } else {
      this.el.modelLink.hidden = true;
    }
    this.el.examples.replaceChildren(...(model.promptExamples || []).map(exampleCard));
  }

  /** Rebuilds the displayed branch (structural changes only; tokens go through scheduleBody). */
  renderThread() {
    if (this.editing) {
      const box = this.el.messages.querySelector(".edit-form textarea");
      if (box) this.editing.draft = box.value;
    }
    const path = this.visiblePath();
    const empty = path.length === 0 && !this.looseError;
    this.el.empty.hidden = !(empty && (!this.conversationId || this.loaded));
    this.el.messages.hidden = empty;
    this.el.modelSelect.closest(".model-switch").hidden = !this.conversationId;
    this.el.modelSelect.value = this.selectedModel;
    const nodes = path.map((message) => this.renderMessage(message));
    if (this.looseError) nodes.push(this.renderLooseError());
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
  refreshMessage(message) {
    const old = this.el.messages.querySelector(`.msg[data-id="${CSS.escape(message.id)}"]`);
    if (old) old.replaceWith(this.renderMessage(message));
  }

  renderMessage(message) {
    return message.role === "user" ? this.renderUser(message) : this.renderAssistant(message);
  }

  renderUser(message) {
    const article = document.createElement("article");
    article.className = "msg msg-user";
    article.dataset.id = message.id;
    article.dataset.role = "user";
    article.setAttribute("aria-label", "Your message");
    const main = div("msg-main");
    if (this.editing && this.editing.id === message.id) {
      main.append(this.renderEditor(message));
    } else {
      const files = messageFiles(message.files);
      if (files) main.append(files);
      const bubble = div("msg-bubble");
      bubble.textContent = message.content;
      main.append(bubble);
      const actions = div("msg-actions");
      actions.append(
        ...this.branchSwitcher(message),
        actionButton("msg-edit", "Edit message", ICONS.edit, { needsIdle: true, busy: this.isBusy }),
        actionButton("msg-copy", "Copy message", ICONS.copy),
      );
      main.append(actions);
    }
    article.append(main);
    return article;
  }

  renderEditor(message) {
    const form = document.createElement("form");
    form.className = "edit-form";
    form.dataset.id = message.id;
    const area = document.createElement("textarea");
    area.value = this.editing.draft ?? message.content;
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
        this.editing = null;
        this.renderThread();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submitEdit(message.id, area.value);
    });
    cancel.addEventListener("click", () => {
      this.editing = null;
      this.renderThread();
    });
    return form;
  }

  renderAssistant(message) {
    const article = document.createElement("article");
    article.className = "msg msg-assistant";
    article.dataset.id = message.id;
    article.dataset.role = "assistant";
    article.setAttribute("aria-label", "Answer");
    article.classList.toggle("is-generating", Boolean(message.is_generating));
    // Screen readers wait for the finished answer instead of hearing every frame.
    article.setAttribute("aria-busy", String(Boolean(message.is_generating)));
    const main = div("msg-main");
    const meta = div("msg-meta");
    const label = document.createElement("span");
    label.className = "msg-model";
    label.dataset.model = message.model || "";
    label.textContent = this.modelLabel(message.model);
    meta.append(label);
    const body = div("msg-body markdown");
    this.fillBody(body, message);
    main.append(meta, ...toolBlocks(message.tool_calls), body);

    if (message.error) main.append(this.errorBox(message.error, message.id));

    const actions = div("msg-actions");
    const canContinue =
      !message.is_generating &&
      !message.error &&
      (message.finish_reason === "length" || Boolean(message.interrupted));
    actions.append(...this.branchSwitcher(message));
    if (!message.is_generating) {
      actions.append(
        scoreButton("msg-vote-up", "Good answer", ICONS.thumbUp, message.score === 1),
        scoreButton("msg-vote-down", "Bad answer", ICONS.thumbDown, message.score === -1),
        actionButton("msg-copy", "Copy answer", ICONS.copy),
        actionButton("msg-regenerate", "Regenerate answer", ICONS.regenerate, {
          needsIdle: true,
          busy: this.isBusy,
        }),
      );
      if (canContinue) {
        const button = actionButton("msg-continue", "Continue answer", ICONS.continue, {
          needsIdle: true,
          busy: this.isBusy,
        });
        button.append(textSpan("Continue"));
        actions.append(button);
      }
    }
    main.append(actions);
    article.append(main);
    return article;
  }

  fillBody(body, message) {
    const content = message.content || "";
    if (!content && message.is_generating) {
      forgetRendered(body);
      body.innerHTML = '<span class="typing" aria-label="Writing"><i></i><i></i><i></i></span>';
      return;
    }
    renderAnswer(body, content);
  }

  errorBox(text, assistantId) {
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
    retry.disabled = this.isBusy;
    retry.innerHTML = ICONS.retry;
    retry.append(textSpan("Retry"));
    box.append(icon, words, retry);
    return box;
  }

  renderLooseError() {
    const article = document.createElement("article");
    article.className = "msg msg-assistant msg-loose-error";
    const main = div("msg-main");
    main.append(this.errorBox(this.looseError, null));
    article.append(main);
    return article;
  }

  branchSwitcher(message) {
    const siblings = this.tree.siblings(message).filter((m) => m.role === message.role);
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

  // --- streaming ----------------------------------------------------------------------------

  /** Queues a body re-render; at most one per animation frame, whatever the token rate. */
  scheduleBody(id) {
    this.dirty.add(id);
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const stick = this.nearBottom();
      for (const dirtyId of this.dirty) {
        const message = this.tree.get(dirtyId);
        const article = this.el.messages.querySelector(`.msg[data-id="${CSS.escape(dirtyId)}"]`);
        if (!message || !article) continue;
        if (!article.classList.contains("is-generating")) {
          article.replaceWith(this.renderMessage(message));
        } else {
          this.fillBody(article.querySelector(".msg-body"), message);
        }
      }
      this.dirty.clear();
      if (stick) this.scrollToBottom();
    });
  }

  nearBottom() {
    const s = this.el.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < STICK_TO_BOTTOM_PX;
  }

  scrollToBottom() {
    const s = this.el.scroller;
    s.scrollTop = s.scrollHeight;
  }

  // --- message actions ----------------------------------------------------------------------

  installMessageActions() {
    this.el.messages.addEventListener("click", async (event) => {
      const button = event.target.closest("button");
      if (!button || button.disabled || !this.el.messages.contains(button)) return;
      const article = button.closest(".msg");
      const id = article?.dataset.id;
      const message = id ? this.tree.get(id) : null;
      if (button.classList.contains("retry-btn")) {
        this.retry(button.dataset.retry || null);
      } else if (!message) {
        return;
      } else if (button.classList.contains("msg-copy")) {
        if (await copyText(message.content || "")) flashCopied(button);
      } else if (button.classList.contains("msg-vote-up") || button.classList.contains("msg-vote-down")) {
        this.vote(message, button.classList.contains("msg-vote-up") ? 1 : -1);
      } else if (button.classList.contains("msg-regenerate")) {
        this.regenerate(message.id);
      } else if (button.classList.contains("msg-continue")) {
        this.continueMessage(message.id);
      } else if (button.classList.contains("msg-edit")) {
        this.editing = { id: message.id, draft: message.content, focus: true };
        this.renderThread();
      } else if (button.classList.contains("branch-prev") || button.classList.contains("branch-next")) {
        const target = this.tree.get(button.dataset.target);
        if (target) {
          this.tree.choose(target);
          this.renderThread();
          const again = this.el.messages.querySelector(
            `.msg[data-id="${CSS.escape(target.id)}"] .${button.classList.contains("branch-prev") ? "branch-prev" : "branch-next"}`,
          );
          if (again && !again.disabled) again.focus();
        }
      }
    });
  }
}

/** A prompt example (or an assistant's starter): a card that sends its prompt. */
function exampleCard(example) {
  const card = document.createElement("button");
  card.type = "button";
  card.className = "example-card";
  card.dataset.prompt = example.prompt;
  const body = document.createElement("span");
  body.className = "example-prompt";
  body.textContent = example.prompt;
  if (example.title) {
    const title = document.createElement("span");
    title.className = "example-title";
    title.textContent = example.title;
    card.append(title);
  }
  card.append(body);
  return card;
}

function div(className) {
  const el = document.createElement("div");
  el.className = className;
  return el;
}

function textSpan(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span;
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
