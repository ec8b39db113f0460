// The models (chat-ui's ModelSwitch): the picker of a new chat (the settings' active model) and
// the switch inside a conversation, the intro of the empty chat (the model's or assistant's
// name, description, link and example prompts). Holds which model the next answer comes from;
// says what the user picked through callbacks. Must not import chat.js, the API or the socket.

import { textSpan } from "./dom.js";

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

export const MODEL_LABEL = "Current model";
export const ASSISTANT_LABEL = "Assistant";

/** An assistant's avatar: its image, or its initial on a coloured disc. */
export function assistantAvatar(assistant) {
  let avatar;
  if (assistant.avatar_url) {
    avatar = document.createElement("img");
    avatar.src = assistant.avatar_url;
    avatar.alt = "";
  } else {
    avatar = document.createElement("span");
    avatar.textContent = (assistant.name || "?").slice(0, 1).toUpperCase();
    avatar.classList.add("assistant-avatar-letter");
  }
  avatar.classList.add("assistant-avatar");
  return avatar;
}

/** The assistant a conversation runs, in `chip` next to its title (a link to its page). */
export function renderAssistantChip(chip, assistant) {
  chip.hidden = !assistant;
  if (!assistant) return;
  chip.href = assistant.url;
  chip.title = `Assistant: ${assistant.name}`;
  chip.replaceChildren(assistantAvatar(assistant), textSpan(assistant.name));
}

export class ModelPicker {
  /**
   * `onPickActive(id)`: the new chat's picker changed; `onSwitch(id)`: the conversation's
   * switch changed; `onExample(prompt)`: an example card was clicked.
   */
  constructor({ models, activeModel, onPickActive, onSwitch, onExample }) {
    this.models = models;
    this.active = activeModel; // the model for new chats
    this.selected = activeModel; // the model the next answer comes from
    this.el = {
      empty: document.getElementById("empty-state"),
      select: document.getElementById("model-select"),
      picker: document.getElementById("model-picker"),
      name: document.getElementById("model-name"),
      desc: document.getElementById("model-desc"),
      link: document.getElementById("model-link"),
      examples: document.getElementById("examples"),
      label: document.getElementById("model-card-label"),
      avatar: document.getElementById("intro-avatar"),
      assistantModel: document.getElementById("assistant-model"),
      assistantModelName: document.getElementById("assistant-model-name"),
    };
    this.fill(this.el.select);
    this.fill(this.el.picker);
    this.el.picker.addEventListener("change", () => onPickActive(this.el.picker.value));
    this.el.select.addEventListener("change", () => onSwitch(this.el.select.value));
    this.el.examples.addEventListener("click", (event) => {
      const card = event.target.closest(".example-card");
      if (card) onExample(card.dataset.prompt);
    });
  }

  model(id) {
    return this.models.find((m) => m.id === id) || null;
  }

  /** The model the next message goes to. */
  current() {
    return this.model(this.selected || this.active);
  }

  label(id) {
    const model = this.model(id);
    return model ? model.displayName || model.name || model.id : id || "";
  }

  fill(select) {
    select.replaceChildren(
      ...this.models.map((m) => {
        const option = document.createElement("option");
        option.value = m.id;
        option.textContent = m.displayName || m.name || m.id;
        return option;
      }),
    );
  }

  /** A single model leaves nothing to pick: its name and link show instead of a picker. */
  get isSingle() {
    return this.models.length === 1;
  }

  /** The switch shows inside a conversation only, set to the model of the next answer. */
  sync(inConversation) {
    this.el.select.closest(".model-switch").hidden = !inConversation || this.isSingle;
    this.el.select.value = this.selected;
  }

  /** The empty chat's intro: an assistant's, or the selected model's. */
  renderIntro({ inConversation, assistant }) {
    const model = this.model(this.selected) || this.models[0];
    this.el.picker.value = this.active;
    // An assistant runs its own model: nothing to pick then, as with a single model.
    this.el.picker.closest(".model-picker").hidden = this.isSingle || Boolean(assistant);
    this.sync(inConversation);
    this.el.empty.classList.toggle("has-assistant", Boolean(assistant));
    this.el.label.textContent = assistant ? ASSISTANT_LABEL : MODEL_LABEL;
    this.el.avatar.hidden = !assistant;
    this.el.assistantModel.hidden = !assistant;
    if (assistant) {
      // An assistant's chat: its avatar, name, description and model; its starters as examples.
      this.el.avatar.replaceChildren(assistantAvatar(assistant));
      this.el.name.textContent = assistant.name;
      this.el.desc.textContent = assistant.description || "";
      this.el.assistantModelName.textContent = this.label(assistant.model);
      this.el.link.hidden = true;
      const starters = (assistant.starters || []).map((prompt) => ({ title: "", prompt }));
      this.el.examples.replaceChildren(...starters.map(exampleCard));
      return;
    }
    if (!model) return;
    this.el.name.textContent = model.displayName || model.name;
    this.el.desc.textContent = model.description || "";
    if (model.websiteUrl && /^https?:\/\//.test(model.websiteUrl)) {
      this.el.link.href = model.websiteUrl;
      this.el.link.hidden = false;
    } else {
      this.el.link.hidden = true;
    }
    this.el.examples.replaceChildren(...(model.promptExamples || []).map(exampleCard));
  }
}
