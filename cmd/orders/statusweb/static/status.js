// Refreshes the [data-live] parts of the status page (by id) every
// body[data-refresh-ms] milliseconds. Without JavaScript a <noscript> meta
// refresh reloads the page instead.
(function () {
  'use strict';
  var ms = parseInt(document.body.getAttribute('data-refresh-ms') || '0', 10);
  if (!ms) {
    return;
  }
  var busy = false;
  function refresh() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    fetch(location.pathname, { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        document.querySelectorAll('[data-live]').forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (fresh) {
            el.replaceWith(document.importNode(fresh, true));
          }
        });
        document.title = doc.title;
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  setInterval(refresh, ms);
})();
