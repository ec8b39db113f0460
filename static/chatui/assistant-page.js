// An assistant's page (/assistant/<id>): the Copy button beside its share link. Imports
// markdown.js only (the page's one copy helper and its "Copied" flash). The button is served
// disabled and enabled here, so a click before this module has run is never silently lost.

import { copyText, flashCopied } from "./markdown.js";

for (const button of document.querySelectorAll("[data-copy]")) {
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.copy);
    if (field && (await copyText(field.value))) flashCopied(button);
  });
  button.disabled = false;
}
