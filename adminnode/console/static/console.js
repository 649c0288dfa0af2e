// The console's one script: it refreshes the live part of a page (the
// element #live, whose data-src names the page's live endpoint) every
// second, without reloading the page. The endpoint answers the part
// rendered by the server, every value already escaped, or 304 when it is
// the one shown (the ETag of the last answer is sent back).
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !live.dataset.src) {
    return;
  }
  var src = live.dataset.src;
  var busy = false;
  var etag = "";
  function stale(on) {
    document.body.classList.toggle("stale", on);
  }
  function tick() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    var headers = { "Accept": "application/json" };
    if (etag) {
      headers["If-None-Match"] = etag;
    }
    fetch(src, { credentials: "same-origin", cache: "no-store", headers: headers })
      .then(function (r) {
        if (r.status === 304) {
          return null;
        }
        if (r.status === 401) {
          window.location.assign("/ui/login");
          throw new Error("signed out");
        }
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        etag = r.headers.get("ETag") || "";
        return r.json();
      })
      .then(function (d) {
        stale(false);
        if (!d) {
          return;
        }
        var doc = new DOMParser().parseFromString(d.html, "text/html");
        live.replaceChildren.apply(live, Array.prototype.slice.call(doc.body.childNodes));
        live.dataset.updated = d.time;
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
