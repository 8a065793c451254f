// The triage queue's map and its new tips, without reloading the page.
// Layers are asked for in the base map's coordinate system (?crs=), so they line up with
// GCJ-02 tiles (AMap, Tencent) as with WGS-84 ones (Tianditu); without tiles, the outlines of
// the staff member's areas are the base layer (works offline).
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) { return; }
  var tileUrl = el.dataset.tileUrl, crs = tileUrl ? el.dataset.tileCrs : "wgs84";
  var map = L.map(el, { zoomControl: true, keyboard: true }).setView([39.92, 116.46], 12);
  var tipsLayer = L.layerGroup().addTo(map);
  var known = {};
  var colours = { district: "#0b3d6b", subdistrict: "#1f6fb2", community: "#2e7d32", grid_cell: "#8a8a8a" };

  if (tileUrl) {
    L.tileLayer(tileUrl, { maxZoom: 19, subdomains: "1234" }).addTo(map);
  }

  function sep(url) { return url.indexOf("?") >= 0 ? "&" : "?"; }

  fetch(el.dataset.areasUrl + "?crs=" + crs, { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (collection) {
      var outlines = L.geoJSON(collection, {
        style: function (f) {
          var level = f.properties.level;
          return { color: colours[level] || "#555", weight: level === "grid_cell" ? 1 : 2, fill: false };
        },
        onEachFeature: function (f, layer) { layer.bindTooltip(f.properties.name); }
      }).addTo(map);
      outlines.bringToBack();
      var own = L.featureGroup(outlines.getLayers().filter(function (layer) {
        return layer.feature.properties.inside;
      }));
      var opening = own.getLayers().length ? own : outlines;
      if (opening.getLayers().length) { map.fitBounds(opening.getBounds(), { animate: false, padding: [12, 12] }); }
    });

  function addTip(item) {
    known[item.id] = true;
    if (item.lon === null || item.lat === null) { return; }
    var marker = L.circleMarker([item.lat, item.lon], {
      radius: 7, color: "#a4161a", weight: 2, fillOpacity: 0.6
    });
    var link = document.createElement("a");
    link.href = item.url;
    link.textContent = item.category + " · " + item.status_label + " · " + item.created_at;
    marker.bindPopup(link);
    marker.addTo(tipsLayer);
  }

  function addRow(item) {
    var body = document.querySelector("#tip-list tbody");
    if (!body) { return; }
    var row = document.createElement("tr");
    row.dataset.tipId = item.id;
    var cells = [item.created_at, item.category, item.status_label, item.priority_label,
                 (item.description || "").slice(0, 60)];
    cells.forEach(function (text, i) {
      var cell = document.createElement("td");
      if (i === 0) {
        var a = document.createElement("a");
        a.href = item.url; a.textContent = text; cell.appendChild(a);
      } else { cell.textContent = text; }
      row.appendChild(cell);
    });
    body.insertBefore(row, body.firstChild);
  }

  function load(first) {
    return fetch(el.dataset.tipsUrl + sep(el.dataset.tipsUrl) + "crs=" + crs, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { items: [] }; })
      .then(function (page) {
        var fresh = page.items.filter(function (item) { return !known[item.id]; });
        fresh.slice().reverse().forEach(function (item) {
          addTip(item);
          if (!first && !document.querySelector('tr[data-tip-id="' + item.id + '"]')) { addRow(item); }
        });
        if (!first && fresh.length) {
          var note = document.getElementById("new-tips");
          note.textContent = el.dataset.newTipsText.replace("{count}", fresh.length);
          note.hidden = false;
        }
      });
  }

  var onFirstPage = !/[?&]page=(?!1(&|$))/.test(location.search);
  load(true).then(function () {
    if (onFirstPage) { setInterval(function () { load(false); }, 1000 * el.dataset.pollSeconds); }
  });
})();
