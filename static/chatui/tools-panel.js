// Tools on the page: the switch by the input (shown only when the model has tools; on or off
// per conversation, remembered in this browser) and the settings' Tools section (servers and
// tools turned on and off, the user's own MCP servers), over GET/PATCH /api/tools.
// Uses api.js only; knows nothing of the thread or the socket.

import { getJSON, patchJSON } from "./api.js";

export const NO_TOOLS = "No tools are available.";
export const TOOLS_ON = "Tools on: the model may call {n} tools. Click to turn them off here.";
export const TOOLS_OFF = "Tools off in this conversation. Click to turn them on.";
const OFF_KEY = "chatui.tools-off";

function offSet() {
  try {
    return new Set(JSON.parse(localStorage.getItem(OFF_KEY) || "[]"));
  } catch {
    return new Set();
  }
}

/** The switch by the input. `enabled` is what the next send asks for. */
export class ToolsSwitch {
  constructor({ button, label, currentModel, conversationId }) {
    this.button = button;
    this.label = label;
    this.currentModel = currentModel;
    this.conversationId = conversationId;
    this.numTools = null; // unknown until /api/tools answers
    this.pendingOff = false; // a new chat's choice, before it has an id
    button.addEventListener("click", () => this.toggle());
  }

  get key() {
    return this.conversationId() || "";
  }

  get enabled() {
    return this.key ? !offSet().has(this.key) : !this.pendingOff;
  }

  async load() {
    try {
      const data = await getJSON("/api/tools");
      this.numTools = data.tools.filter((tool) => tool.enabled).length;
    } catch {
      this.numTools = null;
    }
    this.refresh();
  }

  toggle() {
    const off = offSet();
    if (!this.key) {
      this.pendingOff = !this.pendingOff;
    } else if (off.has(this.key)) {
      off.delete(this.key);
    } else {
      off.add(this.key);
    }
    localStorage.setItem(OFF_KEY, JSON.stringify([...off].slice(-500)));
    this.refresh();
  }

  /** A new chat's choice goes with it once it has an id. */
  adopt(conversationId) {
    if (this.pendingOff && conversationId) {
      const off = offSet();
      off.add(conversationId);
      localStorage.setItem(OFF_KEY, JSON.stringify([...off].slice(-500)));
    }
    this.pendingOff = false;
  }

  refresh() {
    const model = this.currentModel();
    const hasTools = Boolean(model && (model.tools || model.supportsTools));
    this.button.hidden = !hasTools;
    if (!hasTools) return;
    const on = this.enabled && this.numTools !== 0;
    this.button.setAttribute("aria-pressed", String(on));
    this.button.classList.toggle("is-on", on);
    this.button.disabled = this.numTools === 0;
    const title =
      this.numTools === 0 ? NO_TOOLS : on ? TOOLS_ON.replace("{n}", this.numTools ?? "its") : TOOLS_OFF;
    this.button.title = title;
    this.button.setAttribute("aria-label", title);
    const off = this.numTools === 0 ? "No tools" : "Tools off";
    this.label.textContent = on ? `Tools (${this.numTools ?? "on"})` : off;
  }
}

function checkbox(text, checked, onChange) {
  const label = document.createElement("label");
  label.className = "tools-check";
  const input = document.createElement("input");
  input.type = "checkbox";
  input.checked = checked;
  input.addEventListener("change", () => onChange(input.checked));
  label.append(input, document.createTextNode(` ${text}`));
  return label;
}

/** The settings' Tools section, drawn into `container` each time the dialog opens. */
export class ToolSettings {
  constructor({ container, notify, onChange }) {
    this.container = container;
    this.notify = notify;
    this.onChange = onChange;
    this.data = null;
  }

  async open() {
    try {
      this.data = await getJSON("/api/tools");
    } catch (error) {
      this.container.textContent = error.message;
      return;
    }
    this.draw();
  }

  async save(patch) {
    try {
      this.data = await patchJSON("/api/tools", patch);
      this.draw();
      this.onChange();
    } catch (error) {
      this.notify(error.message, "error");
      this.draw();
    }
  }

  setDisabled(key, off) {
    const disabled = new Set(this.data.disabled);
    if (off) disabled.add(key);
    else disabled.delete(key);
    this.save({ disabled: [...disabled] });
  }

  draw() {
    const { servers, tools } = this.data;
    this.container.replaceChildren();
    for (const server of servers) {
      const group = document.createElement("fieldset");
      group.className = "tools-server";
      group.dataset.server = server.name;
      const legend = document.createElement("legend");
      legend.append(
        checkbox(server.name === "builtin" ? "Built-in tools" : server.name, server.enabled, (on) =>
          this.setDisabled(`server:${server.name}`, !on),
        ),
      );
      group.append(legend);
      for (const tool of tools.filter((t) => t.source === server.name)) {
        const row = checkbox(tool.name, tool.enabled, (on) => this.setDisabled(tool.key, !on));
        row.title = tool.description || "";
        group.append(row);
      }
      if (server.enabled && server.num_tools === 0) {
        const none = document.createElement("p");
        none.className = "tools-none";
        none.textContent = "No tools listed (the server may be unreachable).";
        group.append(none);
      }
      if (server.is_user) group.append(this.removeButton(server.name));
      this.container.append(group);
    }
    if (this.data.allow_user_servers) this.container.append(this.addForm());
  }

  mine() {
    return this.data.servers.filter((s) => s.is_user).map(({ name, url }) => ({ name, url }));
  }

  removeButton(name) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "btn";
    button.textContent = `Remove ${name}`;
    button.addEventListener("click", () =>
      this.save({ servers: this.mine().filter((s) => s.name !== name) }),
    );
    return button;
  }

  addForm() {
    const form = document.createElement("form");
    form.className = "tools-add";
    form.innerHTML =
      '<input name="name" placeholder="Name" aria-label="Server name" required maxlength="64">' +
      '<input name="url" type="url" placeholder="https://example.com/mcp" aria-label="Server URL" required>' +
      '<button type="submit" class="btn">Add server</button>';
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = form.elements.name.value.trim();
      const url = form.elements.url.value.trim();
      this.save({ servers: [...this.mine(), { name, url }] });
    });
    return form;
  }
}
