// Entry point of the chat page: reads the data the template embeds, builds the sidebar, the chat
// view and the settings dialog, and wires them together (routing, notices, the phone drawer).
// The only module that knows all the others; none of them imports it.

import { getJSON } from "./api.js";
import { Chat } from "./chat.js";
import { copyText } from "./markdown.js";
import { SettingsDialog, SettingsStore, shareConversation } from "./settings.js";
import { ToolSettings } from "./tools-panel.js";
import { COPIED_LAST_ANSWER, NOTHING_TO_COPY, installShortcuts } from "./shortcuts.js";
import { Sidebar } from "./sidebar.js";
import { applyTheme } from "./theme.js";
import { TokensPanel } from "./tokens.js";

const NOTICE_MS = 6000;
const CONVERSATION_PATH = /^\/conversation\/([^/]+)\/?$/;

/** The models the template embedded (a list, `{models: [...]}` or a JSON string of either). */
function embeddedModels() {
  const node = document.getElementById("models-data");
  if (!node) return [];
  try {
    let data = JSON.parse(node.textContent);
    if (typeof data === "string") data = JSON.parse(data);
    if (data && Array.isArray(data.models)) data = data.models;
    return Array.isArray(data) ? data.filter((m) => !m.unlisted) : [];
  } catch {
    return [];
  }
}

/** The assistant a new chat starts with (`/?assistant=<id>`), or null. */
function embeddedAssistant() {
  const node = document.getElementById("assistant-data");
  try {
    const data = node ? JSON.parse(node.textContent) : null;
    return data && typeof data === "object" && data.id ? data : null;
  } catch {
    return null;
  }
}

function makeNotifier() {
  const notice = document.getElementById("notice");
  let timer = null;
  // `sticky`: the notice stays until its sender clears it (it holds while it applies).
  return (message, kind = "info", { sticky = false } = {}) => {
    clearTimeout(timer);
    if (!message) {
      notice.hidden = true;
      notice.textContent = "";
      return;
    }
    notice.textContent = message;
    notice.dataset.kind = kind;
    notice.hidden = false;
    if (kind !== "warn" && !sticky) timer = setTimeout(() => (notice.hidden = true), NOTICE_MS);
  };
}

/** The off-canvas sidebar on narrow screens (hamburger, backdrop, Escape). */
function installDrawer() {
  const app = document.getElementById("app");
  const toggle = document.getElementById("menu-toggle");
  const backdrop = document.getElementById("sidebar-backdrop");
  const close = document.getElementById("sidebar-close");
  const setOpen = (open) => {
    app.classList.toggle("sidebar-open", open);
    toggle.setAttribute("aria-expanded", String(open));
    backdrop.hidden = !open;
    if (open) document.getElementById("new-chat").focus();
  };
  toggle.addEventListener("click", () => setOpen(!app.classList.contains("sidebar-open")));
  backdrop.addEventListener("click", () => setOpen(false));
  close.addEventListener("click", () => {
    setOpen(false);
    toggle.focus();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && app.classList.contains("sidebar-open")) {
      setOpen(false);
      toggle.focus();
    }
  });
  return () => setOpen(false);
}

/** The models and the active one: embedded in the page, else asked of the API. */
async function loadModels(root, notify) {
  let models = embeddedModels();
  let activeModel = root.dataset.activeModel;
  if (models.length === 0) {
    try {
      const data = await getJSON("/api/models");
      models = data.models || [];
      activeModel = activeModel || data.active_model;
    } catch (error) {
      notify(error.message, "error");
    }
  }
  if (!models.some((m) => m.id === activeModel) && models.length) activeModel = models[0].id;
  return { models, activeModel };
}

/** The sidebar, the chat column and the settings dialog, each told about the others. */
function buildViews({ root, models, activeModel, store, notify, closeDrawer }) {
  let chat = null;
  const sidebar = new Sidebar({
    onOpen: (id) => {
      chat.open(id);
      closeDrawer();
    },
    onDeleted: (id) => {
      if (chat.conversationId === id) chat.newChat();
    },
    onError: (message) => notify(message, "error"),
  });
  chat = new Chat({
    models,
    activeModel,
    assistant: embeddedAssistant(),
    appName: root.dataset.appName || document.title,
    sidebar,
    notify,
    onActiveModelPicked: (modelId) => {
      store.save({ active_model: modelId }).catch((error) => notify(error.message, "error"));
    },
  });
  new SettingsDialog({
    models,
    store,
    currentConversation: () => chat.conversationId,
    currentLeaf: () => chat.shownLeafId(),
    onActiveModel: (modelId) => chat.setActiveModel(modelId),
    onDeletedAll: () => {
      chat.newChat();
      sidebar.refresh();
    },
    notify,
  });
  if (document.getElementById("token-form")) new TokensPanel({ notify });
  const toolSettings = new ToolSettings({
    container: document.getElementById("settings-tools"),
    notify,
    onChange: () => chat.tools.load(),
  });
  document.getElementById("open-settings").addEventListener("click", () => toolSettings.open());
  return { chat, sidebar };
}

/** The keyboard shortcuts (shortcuts.js) acting on the chat. */
function installChatShortcuts(chat, notify, closeDrawer) {
  installShortcuts({
    newChat: () => {
      chat.newChat();
      closeDrawer();
    },
    focusInput: () => document.getElementById("prompt").focus(),
    stop: () => {
      if (!chat.isBusy || !chat.conversationId) return false;
      chat.stop();
      return true;
    },
    copyLast: async () => {
      const text = chat.lastAnswerText();
      if (!text) notify(NOTHING_TO_COPY, "info");
      else if (await copyText(text)) notify(COPIED_LAST_ANSWER, "ok");
    },
  });
}

/** The header's and sidebar's buttons: new chat, home, share; titles set elsewhere. */
function installButtons(chat, notify, closeDrawer) {
  document.getElementById("new-chat").addEventListener("click", () => {
    chat.newChat();
    closeDrawer();
  });
  document.querySelector('[data-nav="home"]').addEventListener("click", (event) => {
    if (event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    chat.newChat();
    closeDrawer();
  });
  document.getElementById("share-btn").addEventListener("click", async () => {
    if (!chat.conversationId) return;
    try {
      const { url, copied } = await shareConversation(chat.conversationId, chat.shownLeafId());
      notify(copied ? `Share link copied: ${url}` : `Share link: ${url}`, "ok");
    } catch (error) {
      notify(error.message, "error");
    }
  });
  document.addEventListener("chatui:title", (event) => {
    chat.onEvent({ type: "title", conversation_id: event.detail.id, title: event.detail.title });
  });
}

/** The URL decides what the chat shows, at load and on Back / Forward. */
function installRouting(root, chat) {
  const route = (push) => {
    const match = location.pathname.match(CONVERSATION_PATH);
    if (match) chat.open(decodeURIComponent(match[1]), { push });
    else chat.newChat({ push, keepAssistant: true });
  };
  window.addEventListener("popstate", () => route(false));
  const initial = root.dataset.conversationId;
  if (initial) chat.open(initial, { push: false });
  else route(false);
  // An assistant's starter picked on its page (`&starter=<n>`) is sent once, then dropped
  // from the address so a reload does not send it again.
  const params = new URLSearchParams(location.search);
  const starter = chat.assistantStarter(params.get("starter"));
  if (starter !== null) {
    params.delete("starter");
    history.replaceState(history.state, "", `/?${params}`);
    chat.sendText(starter);
  }
}

/** The stored settings, once loaded: the theme and the model for new chats. */
async function applySettings(store, chat, activeModel) {
  const settings = await store.load();
  if (settings.theme) applyTheme(settings.theme);
  if (settings.active_model && settings.active_model !== activeModel) {
    chat.setActiveModel(settings.active_model);
  }
}

async function main() {
  const root = document.getElementById("app");
  const notify = makeNotifier();
  const { models, activeModel } = await loadModels(root, notify);
  const store = new SettingsStore({ activeModel });
  const closeDrawer = installDrawer();
  const { chat, sidebar } = buildViews({ root, models, activeModel, store, notify, closeDrawer });
  installChatShortcuts(chat, notify, closeDrawer);
  installButtons(chat, notify, closeDrawer);
  installRouting(root, chat);
  sidebar.refresh();
  await applySettings(store, chat, activeModel);
  root.dataset.ready = "true";
}

main();
