// Markdown -> safe HTML: marked for the syntax, KaTeX for math, highlight.js for code, and
// DOMPurify over the result. Message text reaches the DOM only through renderMarkdown() or
// renderInto().
// Owns the code-block copy button too. Imports only the vendored libraries, never app modules.

import DOMPurify from "../vendor/dompurify/purify.es.mjs";
import hljs from "../vendor/highlight/highlight.min.js";
import katex from "../vendor/katex/katex.mjs";
import { Marked } from "../vendor/marked/marked.esm.js";

export const COPY_LABEL = "Copy";
export const COPIED_LABEL = "Copied";

const escapeHtml = (text) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

// --- math: $...$, $$...$$, \(...\), \[...\] -------------------------------------------------

// NOTE: `$` needs a non-space right after the opener and right before the closer, and no digit
// after the closer, so prices ("$5 and $10") stay text.
const INLINE_MATH = [
  { re: /^\$\$([\s\S]+?)\$\$/, display: true },
  { re: /^\\\[([\s\S]+?)\\\]/, display: true },
  { re: /^\\\(([\s\S]+?)\\\)/, display: false },
  { re: /^\$(?![\s$])((?:\\.|[^\\$\n])*?[^\s\\])\$(?!\d)/, display: false },
  { re: /^\$(?![\s$])([^\\$\n\s])\$(?!\d)/, display: false },
];
const BLOCK_MATH = [
  { re: /^ {0,3}\$\$([\s\S]+?)\$\$[ \t]*(?:\n+|$)/, display: true },
  { re: /^ {0,3}\\\[([\s\S]+?)\\\][ \t]*(?:\n+|$)/, display: true },
];

// While an answer streams it is re-rendered every frame; its finished formulas are not.
const texCache = new Map();
const TEX_CACHE_SIZE = 500;

function renderTex(tex, display) {
  const key = `${display ? "D" : "I"}${tex}`;
  let html = texCache.get(key);
  if (html === undefined) {
    html = katex.renderToString(tex.trim(), {
      displayMode: display,
      throwOnError: false,
      output: "htmlAndMathml",
      strict: "ignore",
    });
    if (texCache.size >= TEX_CACHE_SIZE) texCache.delete(texCache.keys().next().value);
    texCache.set(key, html);
  }
  return html;
}

const mathExtension = {
  extensions: [
    {
      name: "blockMath",
      level: "block",
      start(src) {
        const match = src.match(/^ {0,3}(?:\$\$|\\\[)/m);
        return match ? match.index : undefined;
      },
      tokenizer(src) {
        for (const { re, display } of BLOCK_MATH) {
          const match = re.exec(src);
          if (match) return { type: "blockMath", raw: match[0], text: match[1], display };
        }
        return undefined;
      },
      renderer: (token) => `<div class="math-block">${renderTex(token.text, token.display)}</div>\n`,
    },
    {
      name: "inlineMath",
      level: "inline",
      start(src) {
        const match = src.match(/\$|\\\(|\\\[/);
        return match ? match.index : undefined;
      },
      tokenizer(src) {
        for (const { re, display } of INLINE_MATH) {
          const match = re.exec(src);
          if (match) return { type: "inlineMath", raw: match[0], text: match[1], display };
        }
        return undefined;
      },
      renderer: (token) => renderTex(token.text, token.display),
    },
  ],
};

// --- code blocks ----------------------------------------------------------------------------

// Highlighting is the costly part of a re-render; while an answer streams, every earlier block
// is unchanged, so a small cache keeps each frame cheap.
const highlightCache = new Map();
const HIGHLIGHT_CACHE_SIZE = 200;

function highlight(code, language) {
  const key = `${language}\u0000${code}`;
  const cached = highlightCache.get(key);
  if (cached !== undefined) return cached;
  let html;
  if (language && hljs.getLanguage(language)) {
    html = hljs.highlight(code, { language, ignoreIllegals: true }).value;
  } else if (code.length < 20000) {
    html = hljs.highlightAuto(code).value;
  } else {
    html = escapeHtml(code);
  }
  if (highlightCache.size >= HIGHLIGHT_CACHE_SIZE) {
    highlightCache.delete(highlightCache.keys().next().value);
  }
  highlightCache.set(key, html);
  return html;
}

const marked = new Marked(
  { gfm: true, breaks: false },
  mathExtension,
  {
    renderer: {
      code({ text, lang }) {
        const language = ((lang || "").match(/^\S*/) || [""])[0].toLowerCase();
        const label = escapeHtml(language || "text");
        return (
          `<div class="code-block"><div class="code-head"><span class="code-lang">${label}</span>` +
          `<button type="button" class="copy-code" aria-label="Copy code">${COPY_LABEL}</button></div>` +
          `<pre><code class="hljs language-${label}">${highlight(text, language)}</code></pre></div>\n`
        );
      },
      // Raw HTML in a message is shown as text, never interpreted.
      html({ text }) {
        return escapeHtml(text);
      },
    },
  },
);

// --- sanitising -----------------------------------------------------------------------------

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

const PURIFY_OPTIONS = { ADD_ATTR: ["target"], FORBID_TAGS: ["style", "form", "textarea"] };

// Sanitising is the costly step (KaTeX and highlighted code make large HTML), so a message is
// rendered block by block (marked's top-level tokens) and each block's safe HTML is cached by its
// source: while an answer streams, only its last block is new work in each frame.
const blockCache = new Map();
const BLOCK_CACHE_SIZE = 1000;

function renderBlock(token, links) {
  const cached = blockCache.get(token.raw);
  if (cached !== undefined) return cached;
  const tokens = [token];
  tokens.links = links;
  let html;
  try {
    html = marked.parser(tokens);
  } catch {
    html = `<p>${escapeHtml(token.raw)}</p>`;
  }
  html = DOMPurify.sanitize(html, PURIFY_OPTIONS);
  if (blockCache.size >= BLOCK_CACHE_SIZE) blockCache.delete(blockCache.keys().next().value);
  blockCache.set(token.raw, html);
  return html;
}

/** The message as a list of `{key, html}` blocks, each sanitised. */
function renderBlocks(text) {
  let tokens;
  try {
    tokens = marked.lexer(text || "");
  } catch {
    return [{ key: text, html: DOMPurify.sanitize(`<p>${escapeHtml(text || "")}</p>`) }];
  }
  return tokens
    .filter((token) => token.type !== "space")
    .map((token) => ({ key: token.raw, html: renderBlock(token, tokens.links) }));
}

/** Markdown (with math and code) to sanitised HTML, safe for innerHTML. */
export function renderMarkdown(text) {
  return renderBlocks(text)
    .map((block) => block.html)
    .join("");
}

// element -> [{key, nodes}] : which DOM nodes show which block.
const rendered = new WeakMap();

function toNodes(html) {
  const template = document.createElement("template");
  template.innerHTML = html; // already sanitised
  return [...template.content.childNodes];
}

/**
 * Shows `text` as Markdown in `element`, touching only the blocks that changed since the last
 * call on the same element (the unchanged start of a streaming answer stays in place).
 */
export function renderInto(element, text) {
  const blocks = renderBlocks(text);
  let state = rendered.get(element);
  if (!state) {
    element.replaceChildren();
    state = [];
  }
  let same = 0;
  while (same < state.length && same < blocks.length && state[same].key === blocks[same].key) {
    same += 1;
  }
  for (const stale of state.slice(same)) for (const node of stale.nodes) node.remove();
  const next = state.slice(0, same);
  for (const block of blocks.slice(same)) {
    const nodes = toNodes(block.html);
    element.append(...nodes);
    next.push({ key: block.key, nodes });
  }
  rendered.set(element, next);
}

/** Forgets what renderInto put in `element` (call before replacing its content otherwise). */
export function forgetRendered(element) {
  rendered.delete(element);
}

/** Sanitises an HTML string (for anything not produced by renderMarkdown). */
export const sanitize = (html) => DOMPurify.sanitize(html, PURIFY_OPTIONS);

// --- copying --------------------------------------------------------------------------------

/** Copies text to the clipboard, with a fallback where the async API is unavailable. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

/** Briefly shows "Copied" on a button (its text, or its title for icon buttons). */
export function flashCopied(button) {
  button.classList.add("is-copied");
  const hadText = button.dataset.label === undefined && button.textContent.trim() === COPY_LABEL;
  if (hadText) button.textContent = COPIED_LABEL;
  setTimeout(() => {
    button.classList.remove("is-copied");
    if (hadText) button.textContent = COPY_LABEL;
  }, 1500);
}

/** Wires every code-block copy button under `root` (one delegated listener). */
export function installCodeCopy(root) {
  root.addEventListener("click", async (event) => {
    const button = event.target.closest(".copy-code");
    if (!button || !root.contains(button)) return;
    const code = button.closest(".code-block")?.querySelector("pre code");
    if (!code) return;
    if (await copyText(code.textContent)) flashCopied(button);
  });
}
