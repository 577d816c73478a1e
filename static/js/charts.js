// Draws every Plotly figure embedded with json_script: <div class="chart" data-figure="ID">.
// Plotly itself is loaded from the installed plotly package (static/vendor/plotly).
// A chart with nothing to draw yet has no figure: its element is hidden and a sentence
// (<p data-chart-empty="ID">) stands in; showFigure swaps them when a live update brings one.
// Live pages (training.js, drugs.js) send the figure as a "chart:figure" event on the chart
// element rather than importing this module: with hashed static names an import would load
// a second copy of it. A live figure carries its text alternative ("alt": the summary
// sentence and data table the server derived from it, medai_site.core.charts.live_figure);
// this module puts them under the chart so they never describe an older figure. A page that
// draws its own figure (vitals.js) sends just the alternative as a "chart:alternative" event.

export const CONFIG = { responsive: true, displaylogo: false };

function cell(tag, text, scope) {
  const element = document.createElement(tag);
  element.textContent = text;
  if (scope) element.scope = scope;
  return element;
}

// The <figure data-chart-alt> around a chart element: its summary sentence and data table.
export function showAlternative(element, alternative) {
  const holder = element && element.closest("[data-chart-alt]");
  if (!holder) return;
  const summary = holder.querySelector("[data-chart-summary]");
  const details = holder.querySelector("[data-chart-table]");
  if (!alternative) {
    // A figure without its alternative: say so rather than describe the previous one.
    if (summary) summary.textContent = "Updating: the chart has changed since this description.";
    if (details) details.hidden = true;
    return;
  }
  if (summary) summary.textContent = alternative.summary || "";
  const table = details && details.querySelector("table");
  if (!table) return;
  const data = alternative.table;
  details.hidden = !data;
  if (!data) return;
  table.querySelector("caption").textContent = data.caption;
  const head = document.createElement("tr");
  data.columns.forEach((name) => head.append(cell("th", name, "col")));
  table.querySelector("thead").replaceChildren(head);
  const rows = data.rows.map((values) => {
    const row = document.createElement("tr");
    values.forEach((value, i) => {
      const c = i === 0 ? cell("th", value, "row") : cell("td", value);
      if (i > 0) c.className = "num";
      row.append(c);
    });
    return row;
  });
  table.querySelector("tbody").replaceChildren(...rows);
}

export function showFigure(element, figure, live = false) {
  if (!element || !figure || !window.Plotly) return;
  const traces = figure.data || [];
  if (!traces.length) return; // keep the waiting sentence rather than draw empty axes
  const empty = document.querySelector(`[data-chart-empty="${element.dataset.figure}"]`);
  if (empty) empty.hidden = true;
  element.hidden = false;
  if (live) showAlternative(element, figure.alt);
  window.Plotly.react(element, traces, figure.layout || {}, { ...CONFIG, ...(figure.config || {}) });
}

export function drawChart(element) {
  const source = document.getElementById(element.dataset.figure);
  if (!source) return;
  // The page already holds this figure's sentence and table (rendered by the server).
  showFigure(element, JSON.parse(source.textContent));
}

export function drawAll(root = document) {
  root.querySelectorAll(".chart[data-figure]").forEach(drawChart);
}

document.addEventListener("chart:figure", (event) => {
  if (event.target instanceof Element) showFigure(event.target, event.detail, true);
});

document.addEventListener("chart:alternative", (event) => {
  if (event.target instanceof Element) showAlternative(event.target, event.detail);
});

drawAll();
