/* The dashboard's monthly charts, drawn by Chart.js from our own static files.
   Each chart's figures are also in the table under it (and in its export), so
   nothing depends on this script. Print: the button, and charts redrawn to
   the paper's width before printing. */
(function () {
  "use strict";
  var source = document.getElementById("dashboard-charts");
  if (!source || typeof Chart === "undefined") { return; }
  var configs = JSON.parse(source.textContent);
  // The site's blue, then colours that stay apart for colour-blind readers and in grey print.
  var palette = ["#0b4f6c", "#c98a00", "#a4161a", "#1d6b3a", "#6b4fa0", "#3d8fb3", "#8a5a00", "#4a5565", "#d36f8a", "#7fa33b"];
  var charts = [];

  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#1b2430";

  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var config = configs[canvas.dataset.chart];
    if (!config) { return; }
    var bar = config.kind === "bar";
    var datasets = config.series.map(function (series, index) {
      var colour = palette[index % palette.length];
      return {
        label: series.label,
        data: series.data,
        borderColor: colour,
        backgroundColor: bar ? colour : colour + "22",
        borderWidth: 2,
        pointRadius: 2.5,
        tension: 0,
        spanGaps: false
      };
    });
    charts.push(new Chart(canvas, {
      type: bar ? "bar" : "line",
      data: { labels: config.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 14 } } },
        scales: {
          x: { stacked: config.stacked, grid: { display: false } },
          y: { stacked: config.stacked, beginAtZero: true, ticks: { precision: 0 } }
        }
      }
    }));
  });

  function redraw() { charts.forEach(function (chart) { chart.resize(); }); }
  window.addEventListener("beforeprint", redraw);
  window.addEventListener("afterprint", redraw);
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
