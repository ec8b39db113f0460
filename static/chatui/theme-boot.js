// Applies the saved theme before first paint, so a dark page never flashes white.
// A classic (non-module) script on purpose: it must run synchronously in <head>.
// theme.js owns every later change; both agree on the "chatui-theme" localStorage key.
(function () {
  var pref = "system";
  try {
    pref = localStorage.getItem("chatui-theme") || "system";
  } catch (e) {
    /* storage blocked: follow the system */
  }
  var dark =
    pref === "dark" ||
    (pref !== "light" && window.matchMedia("(prefers-color-scheme: dark)").matches);
  var root = document.documentElement;
  root.dataset.themePref = pref;
  root.dataset.theme = dark ? "dark" : "light";
  var light = document.getElementById("hljs-light");
  var darkSheet = document.getElementById("hljs-dark");
  if (light && darkSheet) {
    light.media = dark ? "not all" : "all";
    darkSheet.media = dark ? "all" : "not all";
  }
})();
