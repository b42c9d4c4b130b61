// The reports' charts (Chart.js from /static/vendor): each <canvas> reads its figures from the
// <script type="application/json"> next to it; no inline script (Content-Security-Policy).
"use strict";

(function () {
  const SAFE_COLOR = /^#[0-9a-fA-F]{6}$/;
  const locale = document.documentElement.lang === "en" ? "en-US" : "ru-RU";

  function read(id) {
    const el = document.getElementById(id);
    if (!el) { return null; }
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  function number(value) { return new Intl.NumberFormat(locale).format(value); }

  // A funnel: each stage's bar centred on the same axis (a floating bar from -n/2 to n/2), its
  // count written on it.
  const countLabels = {
    id: "countLabels",
    afterDatasetsDraw: function (chart) {
      const ctx = chart.ctx;
      const meta = chart.getDatasetMeta(0);
      ctx.save();
      ctx.font = "600 12px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      meta.data.forEach(function (bar, i) {
        const value = chart.data.datasets[0].counts[i];
        const wide = Math.abs(bar.width || 0) > 36;
        ctx.fillStyle = wide ? "#1b2230" : "#475467";
        ctx.fillText(number(value), wide ? bar.getCenterPoint().x : bar.x + 18, bar.y);
      });
      ctx.restore();
    },
  };

  function funnel(canvas, data) {
    const colors = data.colors.map(function (c) { return SAFE_COLOR.test(c) ? c : "#2457d6"; });
    const widest = Math.max.apply(null, data.values.concat([1]));
    return new window.Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets: [{
        label: data.series, counts: data.values, backgroundColor: colors, borderRadius: 4,
        barPercentage: 0.92, categoryPercentage: 0.92,
        data: data.values.map(function (v) { return [-v / 2, v / 2]; }),
      }] },
      options: {
        indexAxis: "y", responsive: true, maintainAspectRatio: false, animation: false, locale: locale,
        plugins: { legend: { display: false },
                   tooltip: { callbacks: { label: function (ctx) {
                     return data.series + ": " + number(data.values[ctx.dataIndex]);
                   } } } },
        scales: { x: { display: false, min: -widest / 2, max: widest / 2 },
                  y: { grid: { display: false }, border: { display: false }, ticks: { autoSkip: false } } },
      },
      plugins: [countLabels],
    });
  }

  function compare(canvas, data) {
    return new window.Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets: [
        { label: data.series[0], data: data.current, backgroundColor: "#2457d6", borderRadius: 3 },
        { label: data.series[1], data: data.previous, backgroundColor: "#b8c4dc", borderRadius: 3 },
      ] },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, locale: locale,
        plugins: { legend: { position: "bottom" } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-color]").forEach(function (el) {
      if (SAFE_COLOR.test(el.dataset.color)) { el.style.backgroundColor = el.dataset.color; }
    });
    if (!window.Chart) { return; }  // without the vendor file the tables still say everything
    const pairs = [["funnel-chart", "funnel-data", funnel], ["widgets-chart", "widgets-data", compare]];
    pairs.forEach(function (pair) {
      const canvas = document.getElementById(pair[0]);
      const data = read(pair[1]);
      if (canvas && data) {
        pair[2](canvas, data);
        canvas.dataset.rendered = "true";
      }
    });
  });
})();
