// A task's live view: its figures and the volunteers who took it, asked again every few
// seconds (no reload), as the triage queue asks for new tips.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) { return; }
  var shown = document.querySelectorAll("#task-volunteers tbody tr:not(.empty)").length;
  var volunteersDrawn = null;

  function set(id, value) {
    var node = document.getElementById(id);
    if (node && node.textContent !== String(value)) { node.textContent = value; }
  }

  function render(state) {
    set("task-status", state.status_label);
    var etag = document.querySelector("#cancel-form input[name=etag]");
    if (etag) { etag.value = state.etag; }
    set("f-recipients", state.recipients);
    set("f-sent", state.sent);
    set("f-received", state.received);
    set("f-accepted", state.accepted);
    set("f-arrived", state.responses.arrived);
    set("f-completed", state.completed);
    set("f-declined", state.responses.declined);
    document.getElementById("f-withheld").hidden = !state.withheld;
    // The rows are made again only when they changed (a screen reader's place and a selection
    // stay while nothing moves).
    var key = JSON.stringify(state.volunteers);
    if (key === volunteersDrawn) { return; }
    volunteersDrawn = key;
    var body = document.querySelector("#task-volunteers tbody");
    var rows = state.volunteers.map(function (v) {
      var row = document.createElement("tr");
      [v.name, v.response, v.accepted_at, v.arrived_at, v.completed_at].forEach(function (text) {
        var cell = document.createElement("td");
        cell.textContent = text;
        row.appendChild(cell);
      });
      return row;
    });
    if (!rows.length) {
      var row = document.createElement("tr"), cell = document.createElement("td");
      row.className = "empty"; cell.colSpan = 5; cell.textContent = live.dataset.nobodyText;
      row.appendChild(cell); rows.push(row);
    }
    body.replaceChildren.apply(body, rows);
    if (state.volunteers.length !== shown) {
      shown = state.volunteers.length;
      set("live-note", live.dataset.tookText.replace("{n}", shown));
    }
  }

  function poll() {
    fetch(live.dataset.liveUrl, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) { if (state) { render(state); } })
      .catch(function () {});
  }
  setInterval(poll, 1000 * live.dataset.pollSeconds);
})();
