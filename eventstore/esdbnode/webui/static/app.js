// Refreshes the parts of a page marked data-live (by id) every
// body[data-refresh] seconds, unless the #autorefresh box is unchecked.
// Pages work without it.
(function () {
  'use strict';
  var secs = parseInt(document.body.getAttribute('data-refresh') || '0', 10);
  if (!secs) {
    return;
  }
  var busy = false;
  function enabled() {
    var box = document.getElementById('autorefresh');
    return !box || box.checked;
  }
  function refresh() {
    if (busy || !enabled() || document.hidden) {
      return;
    }
    busy = true;
    fetch(location.href, { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) {
          return;
        }
        var doc = new DOMParser().parseFromString(html, 'text/html');
        document.querySelectorAll('[data-live]').forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (fresh) {
            el.replaceWith(document.importNode(fresh, true));
          }
        });
        document.body.setAttribute('data-refreshed', String(Date.now()));
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  setInterval(refresh, secs * 1000);
})();
