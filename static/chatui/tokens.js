// The settings' personal API tokens (logged-in users only): create one (its secret shown
// once), list them with their last use, revoke one. GET/POST /api/tokens, DELETE
// /api/tokens/<id>. Uses api.js and dom.js; knows nothing of the rest of the page.

import { del, getJSON, postJSON } from "./api.js";
import { textSpan } from "./dom.js";

export const NO_TOKENS = "No tokens yet.";
export const NEVER_USED = "never used";
export const REVOKE_CONFIRM = "Revoke this token? Scripts using it stop working at once.";

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export class TokensPanel {
  /** @param {{notify: (message: string|null, kind?: string) => void}} opts */
  constructor({ notify }) {
    this.notify = notify;
    this.form = document.getElementById("token-form");
    this.name = document.getElementById("token-name");
    this.created = document.getElementById("token-new");
    this.secret = document.getElementById("token-secret");
    this.list = document.getElementById("token-list");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    document.getElementById("open-settings").addEventListener("click", () => this.load());
    // The secret leaves the page with the dialog: it is shown once.
    document.getElementById("settings-dialog").addEventListener("close", () => this.forget());
  }

  forget() {
    this.created.hidden = true;
    this.secret.value = "";
  }

  async load() {
    this.forget();
    try {
      const data = await getJSON("/api/tokens");
      this.render(data.tokens || []);
    } catch (error) {
      this.notify(error.message, "error");
    }
  }

  async create() {
    try {
      const token = await postJSON("/api/tokens", { name: this.name.value });
      this.name.value = "";
      this.secret.value = token.token;
      this.created.hidden = false;
      this.secret.select();
      const data = await getJSON("/api/tokens");
      this.render(data.tokens || []);
    } catch (error) {
      this.notify(error.message, "error");
    }
  }

  async revoke(token) {
    if (!window.confirm(REVOKE_CONFIRM)) return;
    try {
      await del(`/api/tokens/${token.id}`);
      const data = await getJSON("/api/tokens");
      this.render(data.tokens || []);
    } catch (error) {
      this.notify(error.message, "error");
    }
  }

  render(tokens) {
    if (!tokens.length) {
      const empty = document.createElement("li");
      empty.className = "token-empty";
      empty.textContent = NO_TOKENS;
      this.list.replaceChildren(empty);
      return;
    }
    this.list.replaceChildren(...tokens.map((token) => this.item(token)));
  }

  item(token) {
    const li = document.createElement("li");
    li.className = token.revoked_at ? "token-item is-revoked" : "token-item";
    li.dataset.tokenId = String(token.id);
    const name = textSpan(token.name);
    name.className = "token-item-name";
    const used = token.last_used_at ? `last used ${when(token.last_used_at)}` : NEVER_USED;
    const state = token.revoked_at ? `revoked ${when(token.revoked_at)}` : used;
    const meta = textSpan(`${token.prefix}… · created ${when(token.created_at)} · ${state}`);
    meta.className = "token-item-meta";
    li.append(name, meta);
    if (!token.revoked_at) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-danger token-revoke";
      button.textContent = "Revoke";
      button.setAttribute("aria-label", `Revoke ${token.name}`);
      button.addEventListener("click", () => this.revoke(token));
      li.append(button);
    }
    return li;
  }
}
