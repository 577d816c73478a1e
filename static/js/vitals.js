// Vital-sign time series: fetches a server-built, down-sampled Plotly figure for the chosen
// range, and re-fetches finer data for the visible range after a zoom (plotly_relayout).
// Times are the site's wall-clock time without offset, as the server sends and expects them.

const CONFIG = { responsive: true, displaylogo: false };

const root = document.querySelector("[data-vitals]");

function plotlyDate(value) {
  // Plotly reports ranges as "2026-01-31 08:00:00.123"; the server wants ISO 8601.
  return String(value).replace(" ", "T").replace(/\.\d+$/, "");
}

function setStatus(text) {
  root.querySelector("[data-vitals-status]").textContent = text;
}

let request = 0;
let drawing = false;

// What the server drew a range from when it is too long for every reading (see board.py).
const LEVELS = { minute: "each minute's lowest and highest", hour: "each hour's lowest and highest" };

async function load(start, end, range) {
  const mine = ++request;
  const url = new URL(root.dataset.url, window.location.href);
  url.searchParams.set("points", root.dataset.points || "1500");
  if (range) url.searchParams.set("range", range);
  if (start) url.searchParams.set("start", start);
  if (end) url.searchParams.set("end", end);
  setStatus("Loading…");
  let payload;
  try {
    const response = await fetch(url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      redirect: "manual",
    });
    if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
      setStatus("Signed out — sign in again to see the chart.");
      return;
    }
    payload = await response.json();
    if (!response.ok) {
      setStatus(payload.error || `Could not load data (status ${response.status}).`);
      return;
    }
  } catch (err) {
    setStatus("Connection lost; choose a range to retry.");
    return;
  }
  if (mine !== request || !window.Plotly) return; // a newer request superseded this one
  const chart = root.querySelector(".chart[data-figure]");
  const figure = payload.figure;
  const waiting = root.querySelector("[data-chart-empty]");
  if (waiting) waiting.hidden = true;
  chart.hidden = false;
  // charts.js puts the figure's summary sentence and data table under the chart.
  chart.dispatchEvent(new CustomEvent("chart:alternative", { detail: figure.alt, bubbles: true }));
  drawing = true;
  try {
    await window.Plotly.react(chart, figure.data, figure.layout, { ...CONFIG, ...figure.config });
  } finally {
    drawing = false;
  }
  const counts = Object.values(payload.series).map((s) => s.n_in);
  const total = Math.max(0, ...counts);
  setStatus(
    `${payload.start.replace("T", " ").slice(0, 16)} – ${payload.end.replace("T", " ").slice(0, 16)}` +
      ` · ${total.toLocaleString()} observation sets, at most ${payload.points} points per series` +
      (LEVELS[payload.level] ? ` (${LEVELS[payload.level]}; zoom in for finer data)` : ""),
  );
  if (!chart.dataset.bound) {
    chart.dataset.bound = "1";
    chart.on("plotly_relayout", (event) => {
      if (drawing) return;
      const x0 = event["xaxis.range[0]"];
      const x1 = event["xaxis.range[1]"];
      if (x0 !== undefined && x1 !== undefined) {
        load(plotlyDate(x0), plotlyDate(x1));
      } else if (event["xaxis.autorange"]) {
        selectRange(root.dataset.range);
      }
    });
  }
}

function selectRange(key) {
  root.dataset.range = key;
  document.querySelectorAll("button[data-range]").forEach((button) => {
    const on = button.dataset.range === key;
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.classList.toggle("btn-quiet", !on);
  });
  load(null, null, key); // the server's clock anchors the range (the browser's may differ)
}

if (root) {
  document.querySelectorAll("button[data-range]").forEach((button) => {
    button.addEventListener("click", () => selectRange(button.dataset.range));
  });
  selectRange(root.dataset.range || "24h");
}
