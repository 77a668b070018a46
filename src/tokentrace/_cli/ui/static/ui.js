// tokentrace dashboard: load each section of the page from the server as it comes into view
// (the first screen at once), a few at a time, the most telling first; then the filters'
// choices. Apply a filter as soon as it is picked, and load the sections again when the ledger
// changes (the server's /stamp tells), keeping open runs open.
(function () {
  "use strict";
  var body = document.body;
  var main = document.getElementById("content");
  var form = document.getElementById("filters");
  var query = body.dataset.query || "";
  var workers = Math.max(1, parseInt(body.dataset.workers || "2", 10));
  var slots = Array.prototype.slice.call(main.querySelectorAll(".slot"));
  var waiting = [];
  var active = 0;
  var at = now();
  var choicesDone = false;

  form.querySelectorAll("select").forEach(function (select) {
    select.addEventListener("change", function () { form.submit(); });
  });

  function now() { return String(Date.now()) + "000000"; }

  function url(path) {
    // "at" makes a span back from now (since=7d) count from one moment for the whole page.
    return path + "?" + (query ? query + "&" : "") + "at=" + at;
  }

  function busy() {
    main.setAttribute("aria-busy", active || waiting.length || !choicesDone ? "true" : "false");
  }

  function fill(slot) {
    return fetch(url("/section/" + slot.dataset.section)).then(function (response) {
      return response.text().then(function (text) {
        var open = Array.prototype.map.call(
          slot.querySelectorAll("details.run[open]"), function (d) { return d.dataset.taskId; });
        if (response.ok) {
          slot.innerHTML = text;
        } else {
          var note = document.createElement("p");
          note.className = "note error";
          note.textContent = text;
          slot.replaceChildren(note);
        }
        open.forEach(function (id) {
          var run = slot.querySelector('details.run[data-task-id="' + CSS.escape(id) + '"]');
          if (run) { run.open = true; }
        });
      });
    });
  }

  function choices() {
    return fetch(url("/choices")).then(function (response) {
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

  function next() {
    waiting.sort(function (a, b) { return a.dataset.rank - b.dataset.rank; });
    while (active < workers && waiting.length) {
      var slot = waiting.shift();
      active += 1;
      slot.dataset.state = "loading";
      fill(slot).catch(function () { /* left as it was */ }).then(function (done) {
        return function () {
          if (done.dataset.state === "loading") { done.dataset.state = "done"; }
          active -= 1;
          next();
        };
      }(slot));
    }
    if (!active && !waiting.length) {
      document.getElementById("updated").textContent =
        new Date().toISOString().slice(0, 19).replace("T", " ") + " UTC";
      if (!choicesDone) {
        choices().catch(function () {}).then(function () { choicesDone = true; busy(); });
      }
    }
    busy();
  }

  function ask(slot) {
    if (slot.dataset.state === "waiting") { return; }
    slot.dataset.state = "waiting";
    waiting.push(slot);
    next();
  }

  // A section is asked for when it comes into the window; all at once where that cannot tell.
  if ("IntersectionObserver" in window) {
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting && !entry.target.dataset.state) { ask(entry.target); }
      });
    });
    slots.forEach(function (slot) { seen.observe(slot); });
  } else {
    slots.forEach(ask);
  }
  busy();

  var seconds = parseFloat(body.dataset.refresh || "0");
  var stamp = body.dataset.stamp || null;
  function poll() {
    fetch("/stamp").then(function (response) { return response.text(); }).then(function (latest) {
      var changed = stamp !== null && latest !== stamp;
      stamp = latest;
      if (changed) {
        // Load again what has been loaded; what has not comes when it is in view, as before.
        at = now();
        choicesDone = false;
        slots.forEach(function (slot) { if (slot.dataset.state) { ask(slot); } });
        next();
      }
    }).catch(function () { /* the server stopped: try again later */ })
      .then(function () { setTimeout(poll, seconds * 1000); });
  }
  if (seconds > 0) { setTimeout(poll, seconds * 1000); }
})();
