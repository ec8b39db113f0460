// Two tiny element factories the view modules share. No imports, no state.

/** A <div> with `className`. */
export function div(className) {
  const el = document.createElement("div");
  el.className = className;
  return el;
}

/** A <span> holding `text` as text (never markup). */
export function textSpan(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span;
}
