// tokentrace dashboard: apply a filter as soon as it is picked, and redraw the numbers when the
// ledger changes (the server's /stamp tells), keeping the runs that were open.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  form.querySelectorAll("select").forEach(function (select) {
    select.addEventListener("change", function () { form.submit(); });
  });
  var seconds = parseFloat(document.body.dataset.refresh || "0");
  if (!(seconds > 0)) { return; }
  var query = document.body.dataset.query || "";
  var stamp = document.body.dataset.stamp || null;
  function redraw() {
    var open = Array.prototype.map.call(
      document.querySelectorAll("details.run[open]"), function (d) { return d.dataset.taskId; });
    return fetch("/content?" + query).then(function (response) {
      if (!response.ok) { return; }
      return response.text().then(function (html) {
        document.getElementById("content").innerHTML = html;
        open.forEach(function (id) {
          var run = document.querySelector('details.run[data-task-id="' + CSS.escape(id) + '"]');
          if (run) { run.open = true; }
        });
        document.getElementById("updated").textContent =
          new Date().toISOString().slice(0, 19).replace("T", " ") + " UTC";
      });
    });
  }
  function poll() {
    fetch("/stamp").then(function (response) { return response.text(); }).then(function (now) {
      var changed = stamp !== null && now !== stamp;
      stamp = now;
      return changed ? redraw() : null;
    }).catch(function () { /* the server stopped: try again later */ })
      .then(function () { setTimeout(poll, seconds * 1000); });
  }
  poll();
})();
