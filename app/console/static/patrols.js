// The patrols page's map and list: volunteers on patrol who share their location, asked again
// every few seconds (no reload). Positions come in the base map's system (?crs=).
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) { return; }
  var tileUrl = el.dataset.tileUrl, crs = tileUrl ? el.dataset.tileCrs : "wgs84";
  var map = L.map(el, { keyboard: true }).setView([39.92, 116.46], 13);
  var people = L.layerGroup().addTo(map);
  if (tileUrl) { L.tileLayer(tileUrl, { maxZoom: 19, subdomains: "1234" }).addTo(map); }

  fetch(el.dataset.areasUrl + "?crs=" + crs, { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (collection) {
      var outlines = L.geoJSON(collection, {
        style: function (f) {
          return { color: f.properties.inside ? "#2e7d32" : "#6b6b6b", weight: f.properties.level === "grid_cell" ? 1 : 2, fill: false };
        },
        onEachFeature: function (f, layer) { layer.bindTooltip(f.properties.name); }
      }).addTo(map);
      outlines.bringToBack();
      var own = L.featureGroup(outlines.getLayers().filter(function (l) { return l.feature.properties.inside; }));
      var opening = own.getLayers().length ? own : outlines;
      if (opening.getLayers().length) { map.fitBounds(opening.getBounds(), { animate: false, padding: [12, 12] }); }
    });

  function cell(text) { var td = document.createElement("td"); td.textContent = text; return td; }

  // Drawn again only when the answer changed: rows replaced every few seconds would take a
  // screen reader's place, a selection and an open tooltip away for nothing.
  var drawn = null;
  function render(answer) {
    var key = JSON.stringify(answer);
    if (key === drawn) { return; }
    drawn = key;
    people.clearLayers();
    var body = document.querySelector("#on-patrol tbody");
    var rows = answer.items.map(function (p) {
      if (p.lon !== null && p.lat !== null) {
        L.circleMarker([p.lat, p.lon], { radius: 8, color: "#0b4f8a", weight: 2, fillOpacity: 0.7 })
          .bindTooltip(p.name + " · " + p.last_fix_at).addTo(people);
      }
      var row = document.createElement("tr");
      row.dataset.patrolId = p.id;
      [p.name, p.kind, p.started_at, p.last_fix_at || el.dataset.noneText].forEach(function (t) { row.appendChild(cell(t)); });
      return row;
    });
    if (!rows.length) {
      var row = document.createElement("tr"), td = cell(el.dataset.nobodyText);
      row.className = "empty"; td.colSpan = 4; row.appendChild(td); rows.push(row);
    }
    body.replaceChildren.apply(body, rows);
    var others = document.getElementById("others"), text = el.dataset.othersText.replace("{n}", answer.others);
    if (others.textContent !== text) { others.textContent = text; }
  }

  function load() {
    return fetch(el.dataset.patrolsUrl + "?crs=" + crs, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) { if (answer) { render(answer); } })
      .catch(function () {});
  }
  load().then(function () { setInterval(load, 1000 * el.dataset.pollSeconds); });
})();
