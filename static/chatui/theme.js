// Light / dark / system theme: the <html data-theme> attribute, the code-highlight stylesheet,
// and the localStorage copy that theme-boot.js reads before first paint.
// Owns no network calls (settings.js saves the preference on the server).

const STORAGE_KEY = "chatui-theme";
export const THEMES = ["light", "dark", "system"];
const systemDark = window.matchMedia("(prefers-color-scheme: dark)");

/** The stored preference: "light", "dark" or "system". */
export function themePreference() {
  const pref = document.documentElement.dataset.themePref;
  return THEMES.includes(pref) ? pref : "system";
}

function resolve(pref) {
  if (pref === "system") return systemDark.matches ? "dark" : "light";
  return pref;
}

function paint(pref) {
  const theme = resolve(pref);
  const root = document.documentElement;
  root.dataset.themePref = pref;
  root.dataset.theme = theme;
  const light = document.getElementById("hljs-light");
  const dark = document.getElementById("hljs-dark");
  if (light && dark) {
    light.media = theme === "dark" ? "not all" : "all";
    dark.media = theme === "dark" ? "all" : "not all";
  }
}

/** Applies and remembers a preference (unknown values fall back to "system"). */
export function applyTheme(pref) {
  const value = THEMES.includes(pref) ? pref : "system";
  try {
    localStorage.setItem(STORAGE_KEY, value);
  } catch {
    // storage blocked: the theme still applies for this page
  }
  paint(value);
}

systemDark.addEventListener("change", () => paint(themePreference()));
