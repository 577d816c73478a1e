// Draws every Plotly figure embedded with json_script: <div class="chart" data-figure="ID">.
// Plotly itself is loaded from the installed plotly package (static/vendor/plotly).
// A chart with nothing to draw yet has no figure: its element is hidden and a sentence
// (<p data-chart-empty="ID">) stands in; showFigure swaps them when a live update brings one.
// Live pages (training.js, drugs.js) send the figure as a "chart:figure" event on the chart
// element rather than importing this module: with hashed static names an import would load
// a second copy of it.

export const CONFIG = { responsive: true, displaylogo: false };

export function showFigure(element, figure) {
  if (!element || !figure || !window.Plotly) return;
  const traces = figure.data || [];
  if (!traces.length) return; // keep the waiting sentence rather than draw empty axes
  const empty = document.querySelector(`[data-chart-empty="${element.dataset.figure}"]`);
  if (empty) empty.hidden = true;
  element.hidden = false;
  window.Plotly.react(element, traces, figure.layout || {}, { ...CONFIG, ...(figure.config || {}) });
}

export function drawChart(element) {
  const source = document.getElementById(element.dataset.figure);
  if (!source) return;
  showFigure(element, JSON.parse(source.textContent));
}

export function drawAll(root = document) {
  root.querySelectorAll(".chart[data-figure]").forEach(drawChart);
}

document.addEventListener("chart:figure", (event) => {
  if (event.target instanceof Element) showFigure(event.target, event.detail);
});

drawAll();
