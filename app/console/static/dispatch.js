// The dispatch form's map and reach: a click on the map (or typed coordinates) places the
// task's point (whoever is asked: around it, in an area or a team), the circle its radius, and every change asks the server how many
// volunteers would be asked (a count only). Coordinates are in the base map's system, which
// the form sends as coord_system, so the point is where the tiles draw it.
(function () {
  "use strict";
  var form = document.getElementById("dispatch-form");
  if (!form) { return; }
  var lon = document.getElementById("d-lon"), lat = document.getElementById("d-lat");
  var radius = document.getElementById("d-radius"), reach = document.getElementById("reach");

  function mode() {
    var checked = form.querySelector("input[name=mode]:checked");
    return checked ? checked.value : "radius";
  }

  function showMode() {
    Array.prototype.forEach.call(form.querySelectorAll("fieldset[data-mode]"), function (set) {
      set.hidden = set.dataset.mode !== mode();
    });
  }

  var timer = null, asked = 0;
  function askReach() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var params = new URLSearchParams(new FormData(form));
      params.delete("csrf_token");
      var mine = ++asked;
      fetch(form.dataset.reachUrl + "?" + params.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (answer) { if (mine === asked) { reach.textContent = answer.text; } })
        .catch(function () {});
    }, 300);
  }

  var el = document.getElementById("map"), map = null, marker = null, circle = null;
  function placed() {
    var x = parseFloat(lon.value), y = parseFloat(lat.value);
    return isFinite(x) && isFinite(y) ? [y, x] : null;
  }
  function drawPoint() {
    if (!map) { return; }
    var at = placed();
    if (marker) { map.removeLayer(marker); marker = null; }
    if (circle) { map.removeLayer(circle); circle = null; }
    if (!at) { return; }
    marker = L.circleMarker(at, { radius: 6, color: "#a4161a", weight: 2, fillOpacity: 0.9 }).addTo(map);
    var metres = parseInt(radius.value, 10) || 500;
    circle = L.circle(at, { radius: metres, color: "#a4161a", weight: 2, fillOpacity: 0.08 }).addTo(map);
  }

  if (el && window.L) {
    var tileUrl = el.dataset.tileUrl, crs = tileUrl ? el.dataset.tileCrs : "wgs84";
    map = L.map(el, { keyboard: true }).setView([39.92, 116.46], 13);
    if (tileUrl) { L.tileLayer(tileUrl, { maxZoom: 19, subdomains: "1234" }).addTo(map); }
    document.getElementById("d-crs").value = crs;
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
        var at = placed();
        if (at) {
          map.setView(at, 15, { animate: false });
        } else {
          var own = L.featureGroup(outlines.getLayers().filter(function (l) { return l.feature.properties.inside; }));
          var opening = own.getLayers().length ? own : outlines;
          if (opening.getLayers().length) { map.fitBounds(opening.getBounds(), { animate: false, padding: [12, 12] }); }
        }
        drawPoint();
      });
    map.on("click", function (event) {
      lon.value = event.latlng.lng.toFixed(6);
      lat.value = event.latlng.lat.toFixed(6);
      drawPoint();
      askReach();
    });
  }

  form.addEventListener("change", function () { showMode(); drawPoint(); askReach(); });
  form.addEventListener("input", function () { drawPoint(); askReach(); });
  showMode();
  askReach();
})();
