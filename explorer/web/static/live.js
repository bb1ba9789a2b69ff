// Live updates: the server sends an event per indexed block on /live (Server-Sent Events); the page then
// fetches its own URL with the X-Partial header and swaps in the new <main> content, without reloading.
(function () {
  "use strict";
  var src = document.body.getAttribute("data-live");
  var badge = document.getElementById("live");
  if (!src || !window.EventSource) { return; }
  var main = document.getElementById("main");
  var busy = false, again = false, lastHeight = 0, timer = null;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.pathname + location.search, { headers: { "X-Partial": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && !document.activeElement.closest("#main form")) {
          main.innerHTML = html;
          document.dispatchEvent(new CustomEvent("spare:updated", { detail: { height: lastHeight } }));
        }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; setTimeout(refresh, 500); }
      });
  }
  var es = new EventSource(src);
  es.addEventListener("hello", function () { badge.textContent = "live"; badge.className = "live on"; });
  es.addEventListener("block", function (e) {
    try { lastHeight = JSON.parse(e.data).height; } catch (err) { return; }
    badge.textContent = "live · block " + lastHeight;
    badge.className = "live on";
    if (!timer) { timer = setTimeout(function () { timer = null; refresh(); }, 700); } // at most one refresh per 0.7 s
  });
  es.onerror = function () { badge.textContent = "reconnecting…"; badge.className = "live"; };
})();
