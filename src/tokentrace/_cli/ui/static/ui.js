// tokentrace dashboard: load each section of the page from the server, a few at a time in the
// page's order, then the filters' choices; apply a filter as soon as it is picked; and load the
// sections again when the ledger changes (the server's /stamp tells), keeping open runs open.
(function () {
  "use strict";
  var body = document.body;
  var main = document.getElementById("content");
  var form = document.getElementById("filters");
  var query = body.dataset.query || "";
  var workers = Math.max(1, parseInt(body.dataset.workers || "2", 10));
  form.querySelectorAll("select").forEach(function (select) {
    select.addEventListener("change", function () { form.submit(); });
  });

  function url(path, at) {
    // "at" makes a span back from now (since=7d) count from one moment for the whole page.
    return path + "?" + (query ? query + "&" : "") + "at=" + at;
  }

  function fill(slot, at) {
    return fetch(url("/section/" + slot.dataset.section, at)).then(function (response) {
      return response.text().then(function (text) {
        if (response.ok) {
          slot.innerHTML = text;
        } else {
          var note = document.createElement("p");
          note.className = "note error";
          note.textContent = text;
          slot.replaceChildren(note);
        }
      });
    });
  }

  function choices(at) {
    return fetch(url("/choices", at)).then(function (response) {
      return response.ok ? response.json() : {};
    }).then(function (values) {
      Object.keys(values).forEach(function (dim) {
        var select = form.querySelector('select[name="' + dim + '"]');
        if (!select) { return; }
        var current = select.value;
        var options = [new Option("all", "")];
        values[dim].forEach(function (value) {
          options.push(new Option(value, value, false, value === current));
        });
        select.replaceChildren.apply(select, options);
      });
    });
  }

  function load() {
    var at = String(Date.now()) + "000000";
    var open = Array.prototype.map.call(
      main.querySelectorAll("details.run[open]"), function (d) { return d.dataset.taskId; });
    var queue = Array.prototype.slice.call(main.querySelectorAll(".slot"));
    main.setAttribute("aria-busy", "true");
    function next() {
      var slot = queue.shift();
      return slot ? fill(slot, at).catch(function () { /* shown as not loaded */ }).then(next) : null;
    }
    var running = [];
    for (var i = 0; i < workers; i++) { running.push(next()); }
    return Promise.all(running).then(function () { return choices(at); }).catch(function () {})
      .then(function () {
        open.forEach(function (id) {
          var run = main.querySelector('details.run[data-task-id="' + CSS.escape(id) + '"]');
          if (run) { run.open = true; }
        });
        document.getElementById("updated").textContent =
          new Date().toISOString().slice(0, 19).replace("T", " ") + " UTC";
        main.setAttribute("aria-busy", "false");
      });
  }

  var seconds = parseFloat(body.dataset.refresh || "0");
  var stamp = body.dataset.stamp || null;
  function poll() {
    fetch("/stamp").then(function (response) { return response.text(); }).then(function (now) {
      var changed = stamp !== null && now !== stamp;
      stamp = now;
      return changed ? load() : null;
    }).catch(function () { /* the server stopped: try again later */ })
      .then(function () { setTimeout(poll, seconds * 1000); });
  }
  load().then(function () { if (seconds > 0) { setTimeout(poll, seconds * 1000); } });
})();
