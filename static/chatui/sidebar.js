// The conversation list: date groups, server-side search, inline rename, delete, and the
// "answer being written" marks. Talks to the JSON API through api.js; never touches a socket
// (chat.js tells it about live changes through setGenerating / setTitle / upsert).

import { ApiError, del, getJSON, patchJSON } from "./api.js";
import { ICONS, iconButton } from "./icons.js";

export const SEARCH_DEBOUNCE_MS = 250;
const POLL_MS = 4000;
export const NO_CONVERSATIONS = "No conversations yet.";
export const NO_MATCHES = "No matching conversations.";

const DAY_MS = 24 * 60 * 60 * 1000;

/** chat-ui's groups: the last day, the last week, the last month, older. */
export function groupOf(updatedAt, now = new Date()) {
  const time = new Date(updatedAt).getTime();
  if (time > now.getTime() - DAY_MS) return "Today";
  if (time > now.getTime() - 7 * DAY_MS) return "This week";
  const monthAgo = new Date(now);
  monthAgo.setMonth(monthAgo.getMonth() - 1);
  if (time > monthAgo.getTime()) return "This month";
  return "Older";
}
const GROUPS = ["Today", "This week", "This month", "Older"];

export class Sidebar {
  /**
   * @param {object} opts
   * @param {(id: string) => void} opts.onOpen  a conversation was picked
   * @param {(id: string) => void} opts.onDeleted  a conversation was deleted
   * @param {(message: string) => void} opts.onError  readable failure text
   */
  constructor({ onOpen, onDeleted, onError }) {
    this.list = document.getElementById("conv-list");
    this.search = document.getElementById("conv-search");
    this.onOpen = onOpen;
    this.onDeleted = onDeleted;
    this.onError = onError;
    this.conversations = [];
    this.currentId = null;
    this.query = "";
    this.editingId = null;
    this.searchTimer = null;
    this.pollTimer = null;
    this.requestSeq = 0;

    this.search.addEventListener("input", () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => {
        this.query = this.search.value.trim();
        this.refresh();
      }, SEARCH_DEBOUNCE_MS);
    });
    this.list.addEventListener("click", (event) => this.onClick(event));
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) this.refresh();
    });
  }

  /** Reloads the list from the server (with the current search). */
  async refresh() {
    const seq = ++this.requestSeq;
    const path = this.query
      ? `/api/conversations?q=${encodeURIComponent(this.query)}`
      : "/api/conversations";
    try {
      const data = await getJSON(path);
      if (seq !== this.requestSeq) return; // a newer search answered first
      this.conversations = data.conversations || [];
      this.render();
    } catch (error) {
      if (error instanceof ApiError && error.status !== 0) this.onError(error.message);
    }
    this.schedulePoll();
  }

  // Other tabs' answers finish without telling this page: re-check while any is running.
  schedulePoll() {
    clearTimeout(this.pollTimer);
    const running = this.conversations.some((c) => c.is_generating && c.id !== this.currentId);
    if (running) this.pollTimer = setTimeout(() => this.refresh(), POLL_MS);
  }

  setCurrent(id) {
    this.currentId = id;
    for (const item of this.list.querySelectorAll(".conv-item")) {
      const active = item.dataset.id === id;
      item.classList.toggle("is-active", active);
      const link = item.querySelector(".conv-link");
      if (link) {
        if (active) link.setAttribute("aria-current", "page");
        else link.removeAttribute("aria-current");
      }
    }
  }

  /** Adds or updates one conversation (moved to the top when `bump` is set). */
  upsert(conversation, { bump = false } = {}) {
    const index = this.conversations.findIndex((c) => c.id === conversation.id);
    if (index >= 0) {
      const merged = { ...this.conversations[index], ...conversation };
      this.conversations.splice(index, 1);
      if (bump) this.conversations.unshift(merged);
      else this.conversations.splice(index, 0, merged);
    } else if (!this.query) {
      this.conversations.unshift(conversation);
    }
    this.render();
  }

  setTitle(id, title) {
    const conversation = this.conversations.find((c) => c.id === id);
    if (!conversation) return;
    conversation.title = title;
    const item = this.itemFor(id);
    const span = item && item.querySelector(".conv-title");
    if (span) span.textContent = title;
  }

  setGenerating(id, generating) {
    const conversation = this.conversations.find((c) => c.id === id);
    if (conversation) conversation.is_generating = generating;
    const item = this.itemFor(id);
    if (item) item.classList.toggle("is-generating", generating);
    this.schedulePoll();
  }

  itemFor(id) {
    return this.list.querySelector(`.conv-item[data-id="${CSS.escape(id)}"]`);
  }

  render() {
    if (this.editingId) return; // never yank the rename box from under the user
    this.list.replaceChildren();
    if (this.conversations.length === 0) {
      const empty = document.createElement("p");
      empty.className = "conv-empty";
      empty.textContent = this.query ? NO_MATCHES : NO_CONVERSATIONS;
      this.list.append(empty);
      return;
    }
    const now = new Date();
    const groups = new Map(GROUPS.map((name) => [name, []]));
    for (const conversation of this.conversations) {
      groups.get(groupOf(conversation.updated_at, now)).push(conversation);
    }
    for (const [name, items] of groups) {
      if (items.length === 0) continue;
      const section = document.createElement("section");
      section.className = "conv-group";
      const heading = document.createElement("h2");
      heading.className = "conv-group-title";
      heading.textContent = name;
      const list = document.createElement("ul");
      list.setAttribute("role", "list");
      for (const conversation of items) list.append(this.renderItem(conversation));
      section.append(heading, list);
      this.list.append(section);
    }
  }

  renderItem(conversation) {
    const item = document.createElement("li");
    item.className = "conv-item";
    item.dataset.id = conversation.id;
    item.classList.toggle("is-active", conversation.id === this.currentId);
    item.classList.toggle("is-generating", Boolean(conversation.is_generating));

    const link = document.createElement("a");
    link.className = "conv-link";
    link.href = `/conversation/${conversation.id}`;
    if (conversation.id === this.currentId) link.setAttribute("aria-current", "page");
    const title = document.createElement("span");
    title.className = "conv-title";
    title.textContent = conversation.title || "Untitled";
    const dot = document.createElement("span");
    dot.className = "generating-dot";
    dot.title = "Answer being written";
    dot.setAttribute("aria-label", "Answer being written");
    link.append(title, dot);

    const actions = document.createElement("div");
    actions.className = "conv-actions";
    actions.append(
      iconButton("conv-rename", "Rename conversation", ICONS.edit),
      iconButton("conv-delete", "Delete conversation", ICONS.trash),
    );
    item.append(link, actions);
    return item;
  }

  onClick(event) {
    const item = event.target.closest(".conv-item");
    if (!item) return;
    const id = item.dataset.id;
    if (event.target.closest(".conv-rename")) {
      this.startRename(item, id);
    } else if (event.target.closest(".conv-delete")) {
      this.deleteConversation(id);
    } else if (event.target.closest(".conv-link")) {
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      this.onOpen(id);
    }
  }

  startRename(item, id) {
    const conversation = this.conversations.find((c) => c.id === id);
    const link = item.querySelector(".conv-link");
    const input = document.createElement("input");
    input.type = "text";
    input.className = "conv-rename-input";
    input.maxLength = 100;
    input.value = conversation ? conversation.title : "";
    input.setAttribute("aria-label", "Conversation title");
    link.replaceWith(input);
    item.classList.add("is-editing");
    this.editingId = id;
    input.focus();
    input.select();

    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      this.editingId = null;
      const title = input.value.trim();
      if (save && conversation && title && title !== conversation.title) {
        try {
          const updated = await patchJSON(`/api/conversations/${id}`, { title });
          conversation.title = updated.title ?? title;
          document.dispatchEvent(
            new CustomEvent("chatui:title", { detail: { id, title: conversation.title } }),
          );
        } catch (error) {
          this.onError(error.message);
        }
      }
      this.render();
      this.itemFor(id)?.querySelector(".conv-rename")?.focus();
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        finish(true);
      } else if (event.key === "Escape") {
        event.preventDefault();
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
  }

  async deleteConversation(id) {
    const conversation = this.conversations.find((c) => c.id === id);
    const title = conversation ? conversation.title : "this conversation";
    if (!window.confirm(`Delete "${title}"? This cannot be undone.`)) return;
    try {
      await del(`/api/conversations/${id}`);
    } catch (error) {
      this.onError(error.message);
      return;
    }
    this.conversations = this.conversations.filter((c) => c.id !== id);
    this.render();
    this.onDeleted(id);
  }
}
