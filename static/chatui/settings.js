// The settings dialog (active model, custom system prompt per model, theme, share, export,
// delete all) and the user's settings as the server stores them (GET/PATCH /api/settings).
// Uses api.js, theme.js and markdown.js (copyText); knows nothing of the message view.

import { del, getJSON, patchJSON, postJSON } from "./api.js";
import { copyText } from "./markdown.js";
import { applyTheme, themePreference } from "./theme.js";

export const PROMPT_SAVED = "Saved";
export const LINK_COPIED = "Share link copied to the clipboard.";
export const LINK_READY = "Share link created.";
export const NO_CONVERSATION_TO_SHARE = "Open a conversation to share it.";

/** The user's settings, loaded once and kept in sync with the server. */
export class SettingsStore {
  constructor({ activeModel }) {
    this.data = { active_model: activeModel, custom_prompts: {}, theme: themePreference() };
    this.loading = null; // the first load, which the settings dialog waits for
    this.saving = null; // the latest save, which it waits for too
    this.saves = 0;
  }

  load() {
    this.loading = this.fetchSettings();
    return this.loading;
  }

  /** The settings once the first load and the latest save have answered. */
  async ready() {
    await this.loading;
    await this.saving;
    return this.data;
  }

  async fetchSettings() {
    const saves = this.saves;
    try {
      const data = await getJSON("/api/settings");
      // NOTE: a save made meanwhile answers with newer settings; this older read must not undo it
      if (this.saves === saves) {
        this.data = { ...this.data, ...data, custom_prompts: data.custom_prompts || {} };
      }
    } catch {
      // keep the page's defaults; the next save reports any problem
    }
    return this.data;
  }

  get activeModel() {
    return this.data.active_model;
  }

  customPrompt(modelId) {
    return (this.data.custom_prompts || {})[modelId] || "";
  }

  save(patch) {
    this.saves += 1;
    const saved = patchJSON("/api/settings", patch).then((data) => {
      this.data = { ...this.data, ...data, custom_prompts: data.custom_prompts || {} };
      return this.data;
    });
    this.saving = saved.catch(() => {});
    return saved;
  }
}

/**
 * Creates the share snapshot of a conversation and copies its absolute link. `leafId`, the last
 * message on screen, makes the shared page open on the branch being read.
 */
export async function shareConversation(conversationId, leafId = null) {
  const body = leafId ? { leaf_id: leafId } : {};
  const data = await postJSON(`/api/conversations/${conversationId}/share`, body);
  const url = new URL(data.url || `/r/${data.share_id}`, location.origin).href;
  const copied = await copyText(url);
  return { url, copied };
}

export class SettingsDialog {
  /**
   * @param {object} opts
   * @param {Array} opts.models  listed models
   * @param {SettingsStore} opts.store
   * @param {() => string|null} opts.currentConversation
   * @param {() => string|null} opts.currentLeaf  the last message on screen (what is shared)
   * @param {(id: string) => void} opts.onActiveModel
   * @param {() => void} opts.onDeletedAll
   * @param {(message: string|null, kind?: string) => void} opts.notify
   */
  constructor({ models, store, currentConversation, currentLeaf, onActiveModel, onDeletedAll, notify }) {
    this.models = models;
    this.store = store;
    this.currentConversation = currentConversation;
    this.currentLeaf = currentLeaf;
    this.onActiveModel = onActiveModel;
    this.onDeletedAll = onDeletedAll;
    this.notify = notify;
    this.dialog = document.getElementById("settings-dialog");
    this.modelSelect = document.getElementById("settings-model");
    this.promptModel = document.getElementById("settings-prompt-model");
    this.prompt = document.getElementById("settings-prompt");
    this.promptSave = document.getElementById("settings-prompt-save");
    this.saved = document.getElementById("settings-saved");
    this.shareButton = document.getElementById("settings-share");
    this.shareUrl = document.getElementById("share-url");

    this.modelSelect.replaceChildren(
      ...models.map((m) => {
        const option = document.createElement("option");
        option.value = m.id;
        option.textContent = m.displayName || m.name || m.id;
        return option;
      }),
    );

    document.getElementById("open-settings").addEventListener("click", () => this.open());
    this.modelSelect.addEventListener("change", () => this.pickModel(this.modelSelect.value));
    this.prompt.addEventListener("input", () => {
      this.saved.textContent = "";
    });
    this.promptSave.addEventListener("click", () => this.savePrompt());
    for (const radio of this.dialog.querySelectorAll('input[name="theme"]')) {
      radio.addEventListener("change", () => {
        if (radio.checked) this.setTheme(radio.value);
      });
    }
    this.shareButton.addEventListener("click", () => this.share());
    document.getElementById("delete-all").addEventListener("click", () => this.deleteAll());
  }

  async open() {
    await this.store.ready(); // opened right after the page loads: the stored prompts first
    const active = this.store.activeModel;
    this.modelSelect.value = active;
    this.showPrompt(active);
    for (const radio of this.dialog.querySelectorAll('input[name="theme"]')) {
      radio.checked = radio.value === themePreference();
    }
    this.shareButton.disabled = !this.currentConversation();
    this.shareUrl.hidden = true;
    this.saved.textContent = "";
    this.dialog.showModal();
  }

  showPrompt(modelId) {
    const model = this.models.find((m) => m.id === modelId);
    this.promptModel.textContent = model ? model.displayName || model.name : modelId;
    this.prompt.value = this.store.customPrompt(modelId);
    this.prompt.placeholder = model && model.preprompt
      ? `Default: ${model.preprompt}`
      : "Leave empty to use the model's default";
  }

  async pickModel(modelId) {
    this.showPrompt(modelId);
    try {
      await this.store.save({ active_model: modelId });
      this.onActiveModel(modelId);
    } catch (error) {
      this.notify(error.message, "error");
    }
  }

  async savePrompt() {
    const modelId = this.modelSelect.value;
    const prompts = { ...(this.store.data.custom_prompts || {}), [modelId]: this.prompt.value };
    try {
      await this.store.save({ custom_prompts: prompts });
      this.saved.textContent = PROMPT_SAVED;
    } catch (error) {
      this.saved.textContent = error.message;
    }
  }

  async setTheme(value) {
    applyTheme(value);
    try {
      await this.store.save({ theme: value });
    } catch (error) {
      this.notify(error.message, "error");
    }
  }

  async share() {
    const id = this.currentConversation();
    if (!id) {
      this.notify(NO_CONVERSATION_TO_SHARE, "warn");
      return;
    }
    try {
      const { url, copied } = await shareConversation(id, this.currentLeaf());
      this.shareUrl.value = url;
      this.shareUrl.hidden = false;
      this.shareUrl.select();
      this.notify(copied ? LINK_COPIED : LINK_READY, "ok");
    } catch (error) {
      this.notify(error.message, "error");
    }
  }

  async deleteAll() {
    if (!window.confirm("Delete all your conversations? This cannot be undone.")) return;
    try {
      await del("/api/conversations");
    } catch (error) {
      this.notify(error.message, "error");
      return;
    }
    this.dialog.close();
    this.onDeletedAll();
  }
}
