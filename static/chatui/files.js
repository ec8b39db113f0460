// Files attached to messages: the composer's pending files (paperclip, drag and drop, paste,
// or a URL the server fetches on send), the first check of what the chosen model can take (the
// paperclip offers only that, as chat-ui does with `multimodalAcceptedMimetypes`), and the chips
// and thumbnails that show a message's files. A refused file stays as a red chip and holds the
// message back until the user removes it or picks a model that takes it. The server checks
// everything again, by content; this only spares a round trip. Imports icons.js only.

import { ICONS } from "./icons.js";

export const IMAGES_NOT_SUPPORTED = "{model} does not accept images. Pick a model that does, or remove {name}.";
export const IMAGE_TYPE_REFUSED = "{model} does not accept {mime} images ({name}).";
export const TOO_MANY_FILES = "At most {limit} files can be attached to one message.";
export const FILES_NOT_SEEN = "{model} will not see the images of this conversation: {names}.";
const MAX_FILES = 5;
// What the paperclip offers besides images: text, whatever its extension (read by content).
const TEXT_TYPES = [
  "text/*",
  "application/json",
  ...".md .markdown .txt .py .js .mjs .ts .tsx .jsx .json .csv .tsv .yaml .yml .toml .ini .cfg"
    .split(" "),
  ...".xml .html .css .sql .sh .rs .go .java .kt .c .h .cpp .hpp .cs .rb .php .swift .r .tex .log"
    .split(" "),
  // documents the server reads as text (chatui/documents.py)
  ...".pdf .docx .pptx .xlsx .htm".split(" "),
];

const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_, key) => values[key] ?? "");

function mimeAccepted(mime, patterns) {
  return (patterns || ["image/*"]).some((pattern) => {
    const [type, sub] = pattern.trim().toLowerCase().split("/");
    const [mimeType, mimeSub] = mime.toLowerCase().split("/");
    return (type === "*" || type === mimeType) && (sub === "*" || sub === mimeSub);
  });
}

/** "" when `model` can take `file`, else a readable reason (images only; text goes to all). */
export function refusal(file, model) {
  if (!file.type.startsWith("image/") || !model) return "";
  const label = model.displayName || model.name || model.id;
  if (!model.multimodal) return fill(IMAGES_NOT_SUPPORTED, { model: label, name: file.name });
  if (!mimeAccepted(file.type, model.multimodalAcceptedMimetypes)) {
    return fill(IMAGE_TYPE_REFUSED, { model: label, mime: file.type, name: file.name });
  }
  return "";
}

/** The paperclip's `accept`: text always, images only in the types `model` takes. */
export function acceptFor(model) {
  const images = model?.multimodal ? model.multimodalAcceptedMimetypes || ["image/*"] : [];
  return [...images, ...TEXT_TYPES].join(",");
}

/** The images of `messages` that `model` refuses ("" names when it sees them all). */
export function unseenImages(messages, model) {
  const names = [];
  for (const message of messages) {
    for (const file of message.files || []) {
      const asFile = { type: file.mime || "", name: file.name };
      if (file.kind === "image" && refusal(asFile, model)) names.push(file.name);
    }
  }
  return names;
}

/** The notice that `model` (shown as `label`) will not see images of `messages` ("" if none). */
export function unseenNotice(messages, model, label) {
  const names = unseenImages(messages, model);
  if (!names.length) return "";
  return FILES_NOT_SEEN.replace("{model}", label).replace("{names}", names.join(", "));
}

function humanSize(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} B`;
}

/** One file as a chip: a thumbnail for an image, an icon and the name for a text file. */
export function fileChip({ name, kind, size, url, refused = "" }, { onRemove = null } = {}) {
  const chip = document.createElement(url && !onRemove ? "a" : "div");
  chip.className = `file-chip file-kind-${kind}`;
  chip.classList.toggle("is-refused", Boolean(refused));
  chip.title = refused || name;
  if (url && !onRemove) {
    chip.href = url;
    chip.target = "_blank";
    chip.rel = "noopener";
  }
  if (kind === "image" && url) {
    const img = document.createElement("img");
    img.src = url;
    img.alt = name;
    img.className = "file-thumb";
    chip.append(img);
  } else {
    const icon = document.createElement("span");
    icon.className = "file-icon";
    icon.innerHTML = ICONS.file;
    chip.append(icon);
  }
  const label = document.createElement("span");
  label.className = "file-name";
  label.textContent = name;
  const meta = document.createElement("span");
  meta.className = "file-size";
  meta.textContent = size ? humanSize(size) : "";
  const text = document.createElement("span");
  text.className = "file-text";
  text.append(label, meta);
  chip.append(text);
  if (onRemove) {
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "icon-btn file-remove";
    remove.setAttribute("aria-label", `Remove ${name}`);
    remove.innerHTML = ICONS.close;
    remove.addEventListener("click", onRemove);
    chip.append(remove);
  }
  return chip;
}

/** A message's stored files (`message.files`), or null when it has none. */
export function messageFiles(files) {
  if (!files || !files.length) return null;
  const row = document.createElement("div");
  row.className = "msg-files";
  row.append(...files.map((file) => fileChip(file)));
  return row;
}

/** The "Add from URL" dialog: `dialog.button` opens it; `onLink(url)` gets what is added. */
function installLinkDialog({ button, dialog }, onLink) {
  const input = dialog.querySelector("input[type=url]");
  button.addEventListener("click", () => {
    input.value = "";
    dialog.showModal();
  });
  dialog.querySelector("[data-cancel]").addEventListener("click", () => dialog.close());
  dialog.querySelector("form").addEventListener("submit", () => {
    if (input.value.trim()) onLink(input.value.trim());
  });
}

/** The composer's pending files (and links). `onChange` runs after each change. */
export class PendingFiles {
  constructor({ container, input, dropZone, prompt, attach, linkDialog, notify, currentModel, onChange }) {
    this.files = []; // {file, url, refused: "" or why the model refuses it} or {link, refused: ""}
    this.input = input;
    this.isNoticeShown = false; // a refusal is on screen: it goes once nothing is refused
    this.container = container;
    this.notify = notify;
    this.currentModel = currentModel;
    this.onChange = onChange;
    attach.addEventListener("click", () => input.click());
    if (linkDialog) installLinkDialog(linkDialog, (link) => this.addLink(link));
    input.addEventListener("change", () => {
      this.add([...input.files]);
      input.value = "";
    });
    dropZone.addEventListener("dragover", (event) => {
      if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
      event.preventDefault();
      dropZone.classList.add("is-dropping");
    });
    dropZone.addEventListener("dragleave", () => dropZone.classList.remove("is-dropping"));
    dropZone.addEventListener("drop", (event) => {
      dropZone.classList.remove("is-dropping");
      if (!event.dataTransfer?.files?.length) return;
      event.preventDefault();
      this.add([...event.dataTransfer.files]);
    });
    prompt.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files || [])];
      if (!files.length) return;
      event.preventDefault();
      this.add(files);
    });
  }

  add(files) {
    for (const file of files) {
      if (this.files.length >= MAX_FILES) {
        this.notify(fill(TOO_MANY_FILES, { limit: MAX_FILES }), "error");
        break;
      }
      const url = file.type.startsWith("image/") ? URL.createObjectURL(file) : null;
      this.files.push({ file, url, refused: "" });
    }
    this.recheck();
  }

  /**
   * Checks every pending file against the model the message goes to (after a file is added
   * or removed, or the model changes): the paperclip offers what it takes, a refused file is
   * marked and said, and the notice goes once nothing is refused any more.
   */
  recheck() {
    const model = this.currentModel();
    this.input.accept = acceptFor(model);
    for (const entry of this.files) entry.refused = entry.file ? refusal(entry.file, model) : "";
    const reason = this.refusalFor(model);
    if (reason) {
      this.notify(reason, "error", { sticky: true });
      this.isNoticeShown = true;
    } else if (this.isNoticeShown) {
      this.notify(null);
      this.isNoticeShown = false;
    }
    this.render();
  }

  /** A page or file by URL, fetched by the server when the message is sent. */
  addLink(link) {
    if (this.files.length >= MAX_FILES) {
      this.notify(fill(TOO_MANY_FILES, { limit: MAX_FILES }), "error");
      return;
    }
    this.files.push({ link, refused: "" });
    this.recheck();
  }

  /** Checks again against the model the message goes to; "" when every file may go. */
  refusalFor(model) {
    for (const { file } of this.files) {
      if (!file) continue;
      const reason = refusal(file, model);
      if (reason) return reason;
    }
    return "";
  }

  clear() {
    for (const { url } of this.files) if (url) URL.revokeObjectURL(url);
    this.files = [];
    this.recheck();
  }

  render() {
    this.container.hidden = this.files.length === 0;
    this.container.replaceChildren(
      ...this.files.map((entry, index) =>
        fileChip(
          entry.link
            ? { name: entry.link, kind: "link", size: 0, url: null }
            : {
                name: entry.file.name,
                kind: entry.url ? "image" : "text",
                size: entry.file.size,
                url: entry.url,
                refused: entry.refused,
              },
          {
            onRemove: () => {
              if (entry.url) URL.revokeObjectURL(entry.url);
              this.files.splice(index, 1);
              this.recheck();
            },
          },
        ),
      ),
    );
    this.onChange();
  }
}
