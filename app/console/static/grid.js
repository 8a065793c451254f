// The grid page's map: cells coloured by clues, by risk against patrols or by coverage gaps
// (each with its legend and the figure written on the cell, so colour is never the only cue);
// hotspots outlined; a cell's series on click (or from the table's buttons, by keyboard).
// Layers are asked for in the base map's coordinate system (?crs=), as on the triage queue.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) { return; }
  var tileUrl = el.dataset.tileUrl, crs = tileUrl ? el.dataset.tileCrs : "wgs84";
  var texts = document.getElementById("series-texts").dataset;
  var map = L.map(el, { keyboard: true, zoomSnap: 0.25 }).setView([39.92, 116.46], 12);
  var cellsLayer = null, layer = "tips";
  var COUNT_BREAKS = [1, 3, 6, 11, 21];
  // Sequential, light to dark (each step distinguishable in greyscale too).
  var COUNT_COLOURS = ["#f7f7f7", "#fee8a6", "#fdb863", "#f07c3e", "#c8372d", "#7f0f1e"];
  var RISK = { high: "#c8372d", even: "#f2e6c9", low: "#3b75af", none: "#f7f7f7" };
  var GAPS = { gap: "#e08a1e", ok: "#cfe8cf" };

  if (tileUrl) { L.tileLayer(tileUrl, { maxZoom: 19, subdomains: "1234" }).addTo(map); }

  function sep(url) { return url.indexOf("?") >= 0 ? "&" : "?"; }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.json();
    });
  }

  // The offline base layer: the area outlines, under the cells.
  getJSON(el.dataset.areasUrl + "?crs=" + crs).then(function (collection) {
    L.geoJSON(collection, {
      interactive: false,
      style: function (f) {
        return { color: f.properties.level === "community" ? "#2e7d32" : "#1f6fb2",
                 weight: f.properties.level === "grid_cell" ? 0.5 : 2, fill: false };
      }
    }).addTo(map).bringToBack();
  });

  function countClass(n) {
    var i = 0;
    while (i < COUNT_BREAKS.length && n >= COUNT_BREAKS[i]) { i += 1; }
    return i;
  }
  function riskClass(p) {
    if (p.gap === null) { return "none"; }
    if (p.gap > 0.05) { return "high"; }
    return p.gap < -0.05 ? "low" : "even";
  }
  function fillOf(p) {
    if (layer === "risk") { return RISK[riskClass(p)]; }
    if (layer === "gaps") { return p.unwatched ? GAPS.gap : GAPS.ok; }
    return COUNT_COLOURS[countClass(p.total)];
  }
  function labelOf(p) {
    var mark = p.hotspot ? "▲" : "";
    if (layer === "risk") {
      return p.gap === null ? mark : mark + (p.gap > 0 ? "+" : "") + Math.round(p.gap * 100);
    }
    if (layer === "gaps") {
      if (!p.unwatched) { return mark + "✓"; }
      return mark + (p.hours_unwatched === null ? texts.never
        : texts.hours.replace("{hours}", Math.round(p.hours_unwatched)));
    }
    return mark + p.total;
  }
  function styleOf(feature) {
    var p = feature.properties;
    return {
      color: p.hotspot ? "#000" : "#555",
      weight: p.hotspot ? 4 : 1,
      dashArray: layer === "gaps" && p.unwatched ? "6 4" : null,
      fillColor: fillOf(p),
      fillOpacity: 0.75
    };
  }

  function draw() {
    if (!cellsLayer) { return; }
    var labelled = cellsLayer.getLayers().length <= 250;
    cellsLayer.eachLayer(function (shape) {
      shape.setStyle(styleOf(shape.feature));
      var text = labelOf(shape.feature.properties);
      shape.unbindTooltip();
      var name = shape.feature.properties.name || shape.feature.properties.cell_id;
      if (labelled && text) {
        shape.bindTooltip(text, { permanent: true, direction: "center", className: "cell-label" });
      } else {
        shape.bindTooltip(name);
      }
    });
    ["tips", "risk", "gaps"].forEach(function (name) {
      document.getElementById("legend-" + name).hidden = name !== layer;
    });
  }

  getJSON(el.dataset.cellsUrl + sep(el.dataset.cellsUrl) + "crs=" + crs).then(function (collection) {
    cellsLayer = L.geoJSON(collection, {
      style: styleOf,
      onEachFeature: function (f, shape) {
        shape.on("click", function () {
          showSeries(f.properties.cell_id, f.properties.name || f.properties.cell_id);
        });
      }
    }).addTo(map);
    cellsLayer.eachLayer(function (shape) {
      shape.getElement().setAttribute("data-cell-id", shape.feature.properties.cell_id);
    });
    draw();
    if (cellsLayer.getLayers().length) {
      map.fitBounds(cellsLayer.getBounds(), { animate: false, padding: [12, 12] });
    }
    el.dataset.cellsDrawn = String(cellsLayer.getLayers().length);
  });

  document.querySelectorAll('#colour-by input[name="layer"]').forEach(function (input) {
    input.addEventListener("change", function () { layer = input.value; draw(); });
  });

  // A cell's series: bars (SVG) and the figures as a table.
  var SVG = "http://www.w3.org/2000/svg";
  function text(x, y, anchor, content) {
    var label = document.createElementNS(SVG, "text");
    label.setAttribute("x", String(x));
    label.setAttribute("y", String(y));
    label.setAttribute("text-anchor", anchor);
    label.setAttribute("font-size", "12");
    label.setAttribute("fill", "#1a1a1a");
    label.textContent = content;
    document.getElementById("series-chart").appendChild(label);
  }
  function showSeries(cellId, name) {
    var panel = document.getElementById("series");
    var title = document.getElementById("series-title");
    var chart = document.getElementById("series-chart");
    var body = document.querySelector("#series-table tbody");
    getJSON(el.dataset.seriesUrl.replace("CELL", encodeURIComponent(cellId))).then(function (series) {
      var interval = series.interval === "week" ? texts.week : texts.day;
      title.textContent = texts.title.replace("{cell}", name).replace("{interval}", interval);
      document.getElementById("series-caption").textContent = title.textContent;
      while (chart.firstChild) { chart.removeChild(chart.firstChild); }
      while (body.firstChild) { body.removeChild(body.firstChild); }
      var most = Math.max.apply(null, series.points.map(function (p) { return p.count; }).concat([1]));
      var width = 400 / Math.max(series.points.length, 1);
      series.points.forEach(function (point, i) {
        var height = 105 * point.count / most;
        var bar = document.createElementNS(SVG, "rect");
        bar.setAttribute("x", String(i * width + width * 0.1));
        bar.setAttribute("width", String(width * 0.8));
        bar.setAttribute("y", String(130 - height));
        bar.setAttribute("height", String(Math.max(height, point.count ? 1 : 0)));
        bar.setAttribute("fill", "#0b4f8a");
        var tip = document.createElementNS(SVG, "title");
        tip.textContent = point.start + ": " + point.count;
        bar.appendChild(tip);
        chart.appendChild(bar);
        var row = document.createElement("tr");
        [point.start, String(point.count)].forEach(function (text) {
          var cell = document.createElement("td");
          cell.textContent = text;
          row.appendChild(cell);
        });
        body.appendChild(row);
      });
      var axis = document.createElementNS(SVG, "line");
      axis.setAttribute("x1", "0"); axis.setAttribute("x2", "400");
      axis.setAttribute("y1", "130"); axis.setAttribute("y2", "130");
      axis.setAttribute("stroke", "#4a4a4a");
      chart.appendChild(axis);
      var points = series.points;
      if (points.length) {
        text(2, 14, "start", texts.most.replace("{count}", most));
        text(0, 146, "start", points[0].start);
        text(400, 146, "end", points[points.length - 1].start);
      }
      panel.hidden = false;
      panel.dataset.cellId = cellId;
    }).catch(function () {
      title.textContent = texts.failed;
      panel.hidden = false;
    });
  }

  document.querySelectorAll(".series-button").forEach(function (button) {
    button.addEventListener("click", function () {
      showSeries(button.dataset.cell, button.dataset.name);
    });
  });
})();
