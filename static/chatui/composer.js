// The message composer (chat-ui's ChatInput): the prompt box that grows with its text, Enter to
// send, the send and stop buttons, and the files attached to the next message. Says what the
// user asked for through `onSend(text)` / `onStop()`; knows nothing of sockets, the message
// tree or the API. Imports files.js only.

import { PendingFiles } from "./files.js";

const COMPOSER_MAX_PX = 240;

export class Composer {
  /** `currentModel()`: the model the next message goes to (what files it may carry). */
  constructor({ notify, currentModel, onSend, onStop }) {
    this.el = {
      form: document.getElementById("composer"),
      prompt: document.getElementById("prompt"),
      send: document.getElementById("send-btn"),
      stop: document.getElementById("stop-btn"),
    };
    this.busy = false;
    this.files = new PendingFiles({
      container: document.getElementById("pending-files"),
      input: document.getElementById("file-input"),
      attach: document.getElementById("attach-btn"),
      linkDialog: {
        button: document.getElementById("attach-url-btn"),
        dialog: document.getElementById("url-dialog"),
      },
      dropZone: document.getElementById("main"),
      prompt: this.el.prompt,
      notify,
      currentModel,
      onChange: () => this.updateSendState(),
    });
    const { form, prompt, stop } = this.el;
    prompt.addEventListener("input", () => this.autosize());
    prompt.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        if (!this.busy) form.requestSubmit();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      onSend(prompt.value);
    });
    stop.addEventListener("click", () => onStop());
    this.autosize();
  }

  /** The prompt's text as typed. */
  get text() {
    return this.el.prompt.value;
  }

  /** Empties the prompt (the text is on its way). */
  clear() {
    this.el.prompt.value = "";
    this.autosize();
  }

  /** Gives back text that never became a message, unless the user already typed a new one. */
  restore(text) {
    if (text === null || text === undefined) return;
    if (!this.el.prompt.value.trim()) {
      this.el.prompt.value = text;
      this.autosize();
    }
  }

  focus() {
    this.el.prompt.focus();
  }

  /** While an answer runs, Stop replaces Send. */
  setBusy(busy) {
    this.busy = busy;
    this.el.send.hidden = busy;
    this.el.stop.hidden = !busy;
    this.updateSendState();
  }

  autosize() {
    const { prompt } = this.el;
    prompt.style.height = "auto";
    prompt.style.height = `${Math.min(prompt.scrollHeight, COMPOSER_MAX_PX)}px`;
    prompt.style.overflowY = prompt.scrollHeight > COMPOSER_MAX_PX ? "auto" : "hidden";
    this.updateSendState();
  }

  updateSendState() {
    this.el.send.disabled = this.busy || !this.el.prompt.value.trim();
  }
}
