// The conversation page's wiring: one open conversation's state (conversation.js) fed by its
// socket, drawn by thread-view.js, written to by composer.js and model-picker.js. Owns the page's
// actions (open, send, edit, regenerate, vote...) and the title bar; the sidebar and settings
// are reached only through the callbacks app.js passes in. app.js is the only module that
// imports this one.

import { patchJSON, postJSON, uploadFile } from "./api.js";
import { Composer } from "./composer.js";
import * as conv from "./conversation.js";
import { unseenNotice } from "./files.js";
import { ModelPicker, renderAssistantChip } from "./model-picker.js";
import { ConversationSocket } from "./socket.js";
import { ThreadView } from "./thread-view.js";
import { ToolsSwitch } from "./tools-panel.js";

export const RECONNECTING_NOTICE = "Connection lost. Reconnecting…";
export const DENIED_NOTICE = "This conversation is not available.";

/**
 * The chat column. Public surface used by app.js: open(id, {push}), newChat({push}),
 * setActiveModel(id), onEvent(event), stop(), lastAnswerText(), conversationId, isBusy.
 */
export class Chat {
  constructor({ models, activeModel, assistant, appName, sidebar, notify, onActiveModelPicked }) {
    this.appName = appName;
    // The assistant of a new chat opened from its page; its conversation comes with the first
    // message, as for any chat.
    this.newChatAssistant = assistant || null;
    this.sidebar = sidebar;
    this.notify = notify;
    this.state = conv.createState();
    this.socket = null;
    this.el = {
      app: document.getElementById("app"),
      title: document.getElementById("conv-title"),
      share: document.getElementById("share-btn"),
      assistant: document.getElementById("assistant-chip"),
    };
    this.picker = new ModelPicker({
      models,
      activeModel,
      onPickActive: (id) => {
        this.setActiveModel(id);
        onActiveModelPicked(id);
      },
      onSwitch: (id) => this.switchModel(id),
      onExample: (prompt) => this.sendText(prompt),
    });
    this.composer = new Composer({
      notify,
      currentModel: () => this.picker.current(),
      onSend: (text) => this.sendText(text),
      onStop: () => this.stop(),
    });
    this.tools = new ToolsSwitch({
      button: document.getElementById("tools-btn"),
      label: document.getElementById("tools-label"),
      currentModel: () => this.picker.current(),
      conversationId: () => this.conversationId,
    });
    this.tools.load();
    this.thread = new ThreadView({
      messages: document.getElementById("messages"),
      scroller: document.getElementById("chat-scroll"),
      empty: document.getElementById("empty-state"),
      read: () => this.state,
      modelLabel: (id) => this.picker.label(id),
      actions: {
        vote: (message, score) => this.vote(message, score),
        regenerate: (id) => this.regenerate(id),
        continueMessage: (id) => this.continueMessage(id),
        retry: (id) => this.retry(id),
        submitEdit: (id, text) => this.submitEdit(id, text),
        choose: (id) => conv.chooseBranch(this.state, id),
        redraw: () => this.renderThread(),
      },
    });
  }

  get conversationId() {
    return this.state.conversationId;
  }

  get isBusy() {
    return this.state.busy;
  }

  // --- models -------------------------------------------------------------------------------

  /** The model for new chats (the settings' active model). */
  setActiveModel(id) {
    if (!this.picker.model(id)) return;
    this.picker.active = id;
    if (!this.conversationId && !this.newChatAssistant) {
      this.picker.selected = id;
      this.renderIntro();
      this.composer.files.recheck();
    }
    this.tools.refresh();
  }

  /** Inside a conversation: the next answer comes from `id`. */
  async switchModel(id) {
    if (!this.picker.model(id) || !this.conversationId) return;
    this.picker.selected = id;
    this.composer.files.recheck();
    this.sayUnseenFiles();
    this.tools.refresh();
    try {
      const updated = await patchJSON(`/api/conversations/${this.conversationId}`, { model: id });
      const { conversation } = this.state;
      if (conversation && updated && updated.id === this.conversationId) {
        conversation.model = updated.model;
      }
    } catch (error) {
      this.notify(error.message, "error");
    }
  }

  /** Says which images of the displayed branch the next answer's model will not see. */
  sayUnseenFiles() {
    const model = this.picker.current();
    const text = unseenNotice(conv.visiblePath(this.state), model, this.picker.label(model.id));
    if (text) {
      this.notify(text, "warn");
      this.isUnseenNoticeShown = true;
    } else if (this.isUnseenNoticeShown) {
      this.notify(null);
      this.isUnseenNoticeShown = false;
    }
  }

  // --- navigation ---------------------------------------------------------------------------

  /** Shows a stored conversation (its snapshot arrives over the socket). */
  open(id, { push = true } = {}) {
    if (id === this.conversationId && this.socket) return;
    this.reset();
    this.state.conversationId = id;
    if (push) history.pushState({ id }, "", `/conversation/${id}`);
    this.sidebar.setCurrent(id);
    this.el.app.classList.add("is-loading");
    this.el.share.hidden = false;
    this.connect();
    this.render();
  }

  /** An empty chat with the examples and the model picker (or an assistant's intro). */
  newChat({ push = true, keepAssistant = false } = {}) {
    this.reset();
    if (!keepAssistant) this.newChatAssistant = null;
    const path = this.newChatAssistant ? `/?assistant=${this.newChatAssistant.id}` : "/";
    if (push && location.pathname + location.search !== path) history.pushState({}, "", path);
    this.sidebar.setCurrent(null);
    this.el.share.hidden = true;
    this.picker.selected = this.newChatAssistant?.model || this.picker.active;
    this.render();
    this.composer.focus();
  }

  /** The assistant shown: the conversation's, or the new chat's. */
  get assistant() {
    if (this.conversationId) return this.state.conversation?.assistant || null;
    return this.newChatAssistant;
  }

  /** The new chat assistant's starter number `index` (a string from the URL), or null. */
  assistantStarter(index) {
    const starters = this.conversationId ? [] : this.newChatAssistant?.starters || [];
    const number = Number.parseInt(index ?? "", 10);
    return Number.isInteger(number) && starters[number] ? starters[number] : null;
  }

  reset() {
    if (this.socket) this.socket.close();
    this.socket = null;
    this.state = conv.createState();
    this.thread.editing = null;
    this.isUnseenNoticeShown = false;
    this.setBusy(false);
    this.notify(null);
  }

  connect() {
    this.socket = new ConversationSocket(this.conversationId, {
      onMessage: (event) => this.onEvent(event),
      onState: (state) => {
        if (state === "reconnecting") this.notify(RECONNECTING_NOTICE, "warn");
        else if (state === "open") this.notify(null);
        else if (state === "denied") {
          this.el.app.classList.remove("is-loading");
          this.composer.restore(conv.takePending(this.state));
          this.notify(DENIED_NOTICE, "error");
        }
      },
    });
  }

  // --- protocol events ----------------------------------------------------------------------

  /** One server event (or a title from elsewhere on the page): state first, then the view. */
  onEvent(event) {
    if (event?.type === "notice") this.notify(event.message, "info"); // e.g. older turns left out
    const change = conv.apply(this.state, event);
    // NOTE: read before anything is redrawn: was the reader following the end?
    const stick = change.scroll === "stick" && this.thread.nearBottom();
    if (change.redraw === "all") {
      this.picker.selected = this.state.conversation.model || this.picker.selected;
    }
    if (change.busy !== undefined) this.setBusy(change.busy);
    if (change.redraw === "all") this.el.app.classList.remove("is-loading");
    this.composer.restore(change.restore);
    if (change.redraw === "all") this.render();
    else if (change.redraw === "thread") this.renderThread();
    else if (change.redraw === "message") this.thread.refreshMessage(change.id);
    else if (change.redraw === "body") this.thread.scheduleBody(change.id);
    else if (change.redraw === "title") this.renderTitle();
    if (change.scroll === "always" || stick) this.thread.scrollToBottom();
    if (change.bump) {
      const { title } = this.state.conversation;
      const entry = { id: this.conversationId, title, updated_at: new Date().toISOString() };
      this.sidebar.upsert(entry, { bump: true });
    }
    if (change.title) this.sidebar.setTitle(change.title.id, change.title.title);
  }

  // --- sending ------------------------------------------------------------------------------

  async sendText(raw) {
    const text = (raw || "").trim();
    if (!text || this.isBusy) return;
    // A message that depends on a refused file waits until the user decides (remove the
    // file or pick a model that takes it); recheck says why again.
    if (this.composer.files.refusalFor(this.picker.current())) {
      this.composer.files.recheck();
      return;
    }
    this.composer.clear();
    this.setBusy(true); // also guards against a second send while the conversation is created
    if (!this.conversationId && !(await this.createConversation(text))) return;
    const attachments = [];
    try {
      for (const { file, link } of this.composer.files.files) {
        const url = `/api/conversations/${this.conversationId}/attachments`;
        const uploaded = link
          ? await postJSON(`${url}/url`, { url: link }) // fetched by the server
          : await uploadFile(url, file);
        if (uploaded.notice) this.notify(uploaded.notice, "info"); // a document cut to fit
        attachments.push(uploaded.id);
      }
    } catch (error) {
      this.sendFailed(error, text);
      return;
    }
    this.composer.files.clear();
    const parentId = conv.sendParentId(this.state);
    conv.beginSend(this.state, text);
    this.socket.send({
      type: "send",
      content: text,
      parent_id: parentId,
      model: this.picker.selected,
      attachments,
      tools: this.tools.enabled,
    });
    if (this.isUnseenNoticeShown) this.notify(null); // said once; the user went on
    this.isUnseenNoticeShown = false;
    this.thread.scrollToBottom();
  }

  /** A new chat's first send: creates the conversation and opens it; false if that failed. */
  async createConversation(text) {
    // The server applies the user's custom system prompt for this model (or its preprompt).
    const model = this.picker.selected || this.picker.active;
    const body = this.newChatAssistant ? { assistant: this.newChatAssistant.id } : { model };
    let created;
    try {
      created = await postJSON("/api/conversations", body);
    } catch (error) {
      this.sendFailed(error, text);
      return false;
    }
    this.newChatAssistant = null;
    this.tools.adopt(created.id);
    this.open(created.id);
    this.state.conversation = created;
    const { id, title, updated_at } = created;
    const entry = { id, title, model: created.model, updated_at, is_generating: true };
    this.sidebar.upsert(entry, { bump: true });
    this.setBusy(true);
    return true;
  }

  /** A send that failed before reaching the socket: say why, give the text back. */
  sendFailed(error, text) {
    this.notify(error.message, "error");
    this.setBusy(false);
    this.state.pendingSend = null;
    this.composer.restore(text);
  }

  /** chat-ui's score: thumbs up or down on an answer; the same thumb again takes it back. */
  async vote(message, score) {
    const next = message.score === score ? 0 : score;
    const url = `/api/conversations/${this.conversationId}/messages/${message.id}/score`;
    try {
      const saved = await postJSON(url, { score: next });
      message.score = saved.score;
      this.thread.refreshMessage(message.id);
    } catch (error) {
      this.notify(error.message, "error");
    }
  }

  /** The id of the last message on screen (null in an empty chat): what a share shows. */
  shownLeafId() {
    return conv.visiblePath(this.state).at(-1)?.id ?? null;
  }

  /** The text of the last answer on the displayed branch ("" when there is none). */
  lastAnswerText() {
    return conv.lastAnswerText(this.state);
  }

  stop() {
    if (this.socket) this.socket.send({ type: "stop" });
  }

  regenerate(messageId) {
    if (!this.socket || this.isBusy) return;
    conv.clearErrors(this.state, messageId);
    this.setBusy(true);
    this.socket.send({ type: "regenerate", message_id: messageId, tools: this.tools.enabled });
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
    this.thread.editing = null;
    this.setBusy(true);
    this.socket.send({ type: "edit", message_id: messageId, content: text, tools: this.tools.enabled });
    this.renderThread();
  }

  /** Retry after an error: a new answer under the failed turn's user message. */
  retry(assistantId) {
    const userId = conv.retryUserId(this.state, assistantId);
    if (userId) {
      this.regenerate(userId);
    } else if (this.composer.text.trim()) {
      this.state.looseError = null;
      this.sendText(this.composer.text);
    }
  }

  setBusy(busy) {
    this.state.busy = busy;
    this.composer.setBusy(busy);
    this.el.app.classList.toggle("is-generating", busy);
    if (this.conversationId) this.sidebar.setGenerating(this.conversationId, busy);
    this.thread.setBusy(busy);
  }

  // --- rendering ----------------------------------------------------------------------------

  render() {
    this.renderTitle();
    this.renderIntro();
    this.renderThread();
    this.composer.files.recheck(); // the model may have changed with the conversation
  }

  renderIntro() {
    const { assistant } = this;
    this.picker.renderIntro({ inConversation: Boolean(this.conversationId), assistant });
  }

  renderThread() {
    this.picker.sync(Boolean(this.conversationId));
    this.tools.refresh();
    this.thread.render();
  }

  renderTitle() {
    renderAssistantChip(this.el.assistant, this.assistant);
    const title = this.state.conversation?.title || (this.conversationId ? "" : this.appName);
    this.el.title.textContent = title || this.appName;
    document.title = this.conversationId && title ? `${title} - ${this.appName}` : this.appName;
  }
}
