// Draws every Plotly figure embedded with json_script: <div class="chart" data-figure="ID">.
// Plotly itself is loaded from the installed plotly package (static/vendor/plotly).

const CONFIG = { responsive: true, displaylogo: false };

export function drawChart(element) {
  const source = document.getElementById(element.dataset.figure);
  if (!source || !window.Plotly) return;
  const figure = JSON.parse(source.textContent);
  window.Plotly.react(element, figure.data || [], figure.layout || {}, { ...CONFIG, ...(figure.config || {}) });
}

export function drawAll(root = document) {
  root.querySelectorAll(".chart[data-figure]").forEach(drawChart);
}

drawAll();
