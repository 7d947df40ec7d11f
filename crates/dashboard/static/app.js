// Keeps the page current: the server says when something it shows changed (server-sent
// events from watches made with the signed-in user's token), and the page fetches its main
// content again. Without this script every page still works; it is just not live.
"use strict";
(function () {
  const main = document.querySelector("main[data-live]");
  if (!main || !window.EventSource) return;
  let busy = false, again = false;
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const url = new URL(main.dataset.live, window.location.origin);
      url.searchParams.set("fragment", "1");
      const response = await fetch(url, { credentials: "same-origin" });
      if (response.redirected || response.status === 401) { window.location = "/login"; return; }
      if (response.ok) { main.innerHTML = await response.text(); main.dataset.refreshed = String(Date.now()); }
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }
  const live = new URL("/live", window.location.origin);
  const namespace = new URL(main.dataset.live, window.location.origin).searchParams.get("namespace");
  if (namespace) live.searchParams.set("namespace", namespace);
  const events = new EventSource(live);
  events.addEventListener("change", refresh);
})();
