/* Draws every figure embedded by registry.web.charts.render: a <script type="application/json"
   class="plotly-figure" data-target="ID"> holding {data, layout}, drawn into the element #ID.
   A heatmap cell or a marker whose customdata is a local link ("/runs/7") opens it when clicked. */
(function () {
  "use strict";
  function draw() {
    if (typeof Plotly === "undefined") { return; }
    var nodes = document.querySelectorAll("script.plotly-figure");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      var target = document.getElementById(node.getAttribute("data-target"));
      if (!target) { continue; }
      var fig;
      try { fig = JSON.parse(node.textContent); } catch (e) { continue; }
      Plotly.newPlot(target, fig.data || [], fig.layout || {},
                     {responsive: true, displaylogo: false, displayModeBar: false});
      target.setAttribute("data-drawn", "1");
      target.on("plotly_click", function (ev) {
        var p = ev && ev.points && ev.points[0];
        var link = p && p.customdata;
        if (typeof link === "string" && link.charAt(0) === "/" && link.charAt(1) !== "/") {
          window.location.assign(link);
        }
      });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
