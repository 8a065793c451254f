// The organisations page's map: each community of the staff member's areas coloured by how far
// it is from the targets, with the gap written on it (colour is never the only cue). Outlines
// come from /console/areas.geojson in the base map's coordinate system, joined by id.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) { return; }
  var tileUrl = el.dataset.tileUrl, crs = tileUrl ? el.dataset.tileCrs : "wgs84";
  var map = L.map(el, { keyboard: true, zoomSnap: 0.25 }).setView([39.92, 116.46], 12);
  var FILL = { short: "#c8372d", brand: "#fdb863", met: "#8fc98f" };
  if (tileUrl) { L.tileLayer(tileUrl, { maxZoom: 19, subdomains: "1234" }).addTo(map); }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.json();
    });
  }
  function classOf(t) {
    if (t.short_by > 0) { return "short"; }
    return t.brand_short_by > 0 ? "brand" : "met";
  }
  function labelOf(t) {
    var kind = classOf(t);
    if (kind === "short") { return "−" + t.short_by; }
    return kind === "brand" ? "B−" + t.brand_short_by : "✓";
  }

  Promise.all([getJSON(el.dataset.areasUrl + "?crs=" + crs), getJSON(el.dataset.targetsUrl)])
    .then(function (answers) {
      var areas = answers[0], targets = {};
      answers[1].items.forEach(function (t) { targets[t.community_id] = t; });
      var communities = L.featureGroup();
      var labelled = answers[1].items.length <= 250;
      L.geoJSON(areas, {
        filter: function (f) { return f.properties.level !== "grid_cell"; },
        style: function (f) {
          var t = targets[f.id];
          if (f.properties.level !== "community" || !t) {
            return { color: "#1f6fb2", weight: 1, fill: false, interactive: false };
          }
          var kind = classOf(t);
          return { color: "#333", weight: 2, dashArray: kind === "met" ? null : "6 4",
                   fillColor: FILL[kind], fillOpacity: 0.7 };
        },
        onEachFeature: function (f, shape) {
          var t = targets[f.id];
          if (f.properties.level !== "community" || !t) { return; }
          shape.bindPopup(el.dataset.shortText.replace("{name}", t.name)
            .replace("{organisations}", t.organisations).replace("{target}", t.target)
            .replace("{brand}", t.brand_organisations).replace("{brand_target}", t.brand_target));
          if (labelled) {
            shape.bindTooltip(labelOf(t), { permanent: true, direction: "center", className: "cell-label" });
          }
          communities.addLayer(shape);
        }
      }).addTo(map);
      if (communities.getLayers().length) {
        map.fitBounds(communities.getBounds(), { animate: false, padding: [12, 12] });
      }
      el.dataset.communitiesDrawn = String(communities.getLayers().length);
    });
})();
