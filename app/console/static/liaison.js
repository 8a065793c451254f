// The liaison's map: their areas (the base layer without a tile server), grid cells shaded by
// their clues, and a click on a community or grid cell toggles it in the batch form's area
// list (the list stays the form's one source, usable without the map and by keyboard).
(function () {
  "use strict";
  var el = document.getElementById("map");
  var list = document.getElementById("b-area_ids");
  if (!el || !list || !window.L) { return; }
  var tileUrl = el.dataset.tileUrl, crs = tileUrl ? el.dataset.tileCrs : "wgs84";
  var map = L.map(el, { zoomControl: true, keyboard: true }).setView([39.92, 116.46], 12);
  var picked = document.getElementById("picked");
  var layers = {};
  var outlineColours = { district: "#0b3d6b", subdistrict: "#1f6fb2", community: "#2e7d32", grid_cell: "#6b6b6b" };
  var pickable = { community: true, grid_cell: true };

  if (tileUrl) { L.tileLayer(tileUrl, { maxZoom: 19, subdomains: "1234" }).addTo(map); }

  function option(id) { return list.querySelector('option[value="' + id + '"]'); }

  function shade(count) {
    if (!count) { return 0; }
    return Math.min(0.65, 0.15 + 0.1 * Math.log2(1 + count));
  }

  function style(feature) {
    var p = feature.properties, chosen = option(feature.id) && option(feature.id).selected;
    return {
      color: chosen ? "#a4161a" : (outlineColours[p.level] || "#555"),
      weight: chosen ? 4 : (p.level === "grid_cell" ? 1 : 2),
      fill: p.level === "grid_cell" || chosen,
      fillColor: chosen ? "#a4161a" : "#d9480f",
      fillOpacity: chosen ? 0.35 : shade(p.count)
    };
  }

  function announce() {
    var count = Array.prototype.filter.call(list.options, function (o) { return o.selected; }).length;
    picked.textContent = el.dataset.pickedText.replace("{count}", count);
  }

  function restyle() {
    Object.keys(layers).forEach(function (id) { layers[id].setStyle(style(layers[id].feature)); });
    announce();
  }

  fetch(el.dataset.areasUrl + "?crs=" + crs, { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (collection) {
      var outlines = L.geoJSON(collection, {
        style: style,
        onEachFeature: function (f, layer) {
          var p = f.properties, text = p.name;
          if (p.level === "grid_cell") { text += " · " + el.dataset.cluesText.replace("{count}", p.count || 0); }
          layer.bindTooltip(text);
          if (pickable[p.level] && option(f.id)) {
            layers[f.id] = layer;
            layer.on("click", function (e) {
              L.DomEvent.stopPropagation(e);
              var o = option(f.id);
              o.selected = !o.selected;
              restyle();
            });
          }
        }
      }).addTo(map);
      var own = L.featureGroup(outlines.getLayers().filter(function (layer) {
        return layer.feature.properties.inside;
      }));
      var opening = own.getLayers().length ? own : outlines;
      if (opening.getLayers().length) { map.fitBounds(opening.getBounds(), { animate: false, padding: [12, 12] }); }
      // Grid cells are drawn over their communities: a click lands on the finest area.
      Object.keys(layers).forEach(function (id) {
        var layer = layers[id], p = layer.feature.properties, path = layer.getElement();
        if (p.level === "grid_cell") { layer.bringToFront(); }
        if (path) {
          path.setAttribute("data-area-id", id);
          path.setAttribute("data-level", p.level);
          if (p.count !== undefined) { path.setAttribute("data-count", p.count); }
        }
      });
      announce();
    });

  list.addEventListener("change", restyle);
})();
