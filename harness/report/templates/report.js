// The report's only script: a hover readout on the charts and a marker for tests that the
// charts were drawn. It reads numbers from data-series attributes and never builds HTML
// from data: text goes in through textContent only.
(function () {
  "use strict";
  var charts = document.querySelectorAll("svg.chart");
  var drawn = 0;
  function nearest(points, t) {
    var best = null;
    for (var i = 0; i < points.length; i++) {
      if (points[i][1] === null) { continue; }
      if (best === null || Math.abs(points[i][0] - t) < Math.abs(best[0] - t)) { best = points[i]; }
    }
    return best;
  }
  function fmt(v) {
    return Math.abs(v) >= 100 ? v.toFixed(0) : (Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2));
  }
  Array.prototype.forEach.call(charts, function (svg) {
    if (svg.querySelector("polyline, circle, text.empty")) { drawn += 1; }
    var series = JSON.parse(svg.getAttribute("data-series") || "[]");
    var left = Number(svg.getAttribute("data-left"));
    var width = Number(svg.getAttribute("data-width"));
    var tmax = Number(svg.getAttribute("data-tmax"));
    var unit = svg.getAttribute("data-unit") || "";
    var cursor = svg.querySelector(".cursor");
    var readout = svg.querySelector(".readout");
    svg.addEventListener("mousemove", function (ev) {
      var box = svg.getBoundingClientRect();
      var x = (ev.clientX - box.left) * (svg.viewBox.baseVal.width / box.width);
      var t = Math.max(0, Math.min(tmax, (x - left) / width * tmax));
      var parts = ["t=" + t.toFixed(1) + "s"];
      series.forEach(function (s) {
        var p = nearest(s[1], t);
        if (p !== null) { parts.push(s[0] + " " + fmt(p[1])); }
      });
      cursor.setAttribute("x1", x); cursor.setAttribute("x2", x);
      readout.textContent = parts.join("  ") + " " + unit;
    });
    svg.addEventListener("mouseleave", function () {
      cursor.setAttribute("x1", -10); cursor.setAttribute("x2", -10);
      readout.textContent = "";
    });
  });
  var data = document.getElementById("chaos-results");
  if (data) { window.chaosResults = JSON.parse(data.textContent); }
  document.body.setAttribute("data-charts-drawn", String(drawn));
}());
