// The console's one script: it refreshes the live part of a page (the
// element #live, whose data-src names the page's live endpoint) every
// second, without reloading the page. The endpoint answers the part
// rendered by the server, every value already escaped.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !live.dataset.src) {
    return;
  }
  var src = live.dataset.src;
  var busy = false;
  function stale(on) {
    document.body.classList.toggle("stale", on);
  }
  function tick() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    fetch(src, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401) {
          window.location.assign("/ui/login");
          throw new Error("signed out");
        }
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        return r.json();
      })
      .then(function (d) {
        var doc = new DOMParser().parseFromString(d.html, "text/html");
        live.replaceChildren.apply(live, Array.prototype.slice.call(doc.body.childNodes));
        live.dataset.updated = d.time;
        stale(false);
      })
      .catch(function () {
        stale(true);
      })
      .finally(function () {
        busy = false;
      });
  }
  window.setInterval(tick, 1000);
})();
