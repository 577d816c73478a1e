// Scan viewer: the frame as a Plotly heatmap (window/level done by zmin/zmax on a grey
// scale), the model's Grad-CAM heat-map as a second, fadeable trace; zoom and pan by Plotly.

const root = document.querySelector("[data-viewer]");

function control(name) {
  return root.querySelector(`[data-control="${name}"]`);
}

function frameUrl(index) {
  return root.dataset.frameUrl.replace(/\/frames\/\d+\/$/, `/frames/${index}/`);
}

const state = { frame: null, window: null };
const HEAT = [[0, "rgba(255,0,0,0)"], [0.25, "rgba(255,0,0,0)"], [0.5, "rgba(255,40,0,0.55)"],
  [0.75, "rgba(255,140,0,0.8)"], [1, "rgba(255,255,0,0.95)"]];

function greyScale(invert) {
  return invert ? [[0, "#fff"], [1, "#000"]] : [[0, "#000"], [1, "#fff"]];
}

function range(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of values) for (const v of row) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo, hi];
}

function imageTrace(frame) {
  if (frame.is_color) {
    const hi = Math.max(255, frame.window.center + frame.window.width / 2);
    return { type: "image", z: frame.values, zmin: [0, 0, 0], zmax: [hi, hi, hi], hoverinfo: "skip" };
  }
  const { center, width } = state.window;
  return {
    type: "heatmap", z: frame.values, colorscale: greyScale(frame.invert),
    zmin: center - width / 2, zmax: center + width / 2, showscale: false,
    hovertemplate: "x %{x}, y %{y}: %{z}<extra></extra>",
  };
}

function heatTrace(frame) {
  const toggle = control("heatmap");
  return {
    // Transparent where the model paid no attention, through red to yellow where it did.
    type: "heatmap", z: frame.heatmap, zmin: 0, zmax: 1, colorscale: HEAT, showscale: false,
    opacity: parseFloat(control("opacity")?.value ?? 0.7), hoverinfo: "skip",
    visible: toggle ? toggle.checked : true,
  };
}

function draw() {
  const frame = state.frame;
  const traces = [imageTrace(frame)];
  if (frame.heatmap) traces.push(heatTrace(frame));
  const layout = {
    margin: { l: 10, r: 10, t: 10, b: 10 }, height: Math.min(640, Math.max(360, window.innerWidth * 0.45)),
    xaxis: { visible: false, constrain: "domain" },
    yaxis: { visible: false, autorange: "reversed", scaleanchor: "x", constrain: "domain" },
    dragmode: "pan", plot_bgcolor: "#000", paper_bgcolor: "#0d1114",
  };
  window.Plotly.react(root.querySelector("[data-viewer-plot]"), traces, layout,
    { responsive: true, displaylogo: false, scrollZoom: true });
}

function setupWindowControls(frame) {
  const level = control("level");
  const width = control("width");
  if (!level || frame.is_color) return;
  const [lo, hi] = range(frame.values);
  const span = Math.max(1, hi - lo);
  level.min = lo; level.max = hi; level.value = state.window.center;
  width.min = 1; width.max = span * 2; width.value = state.window.width;
}

async function load(index) {
  const response = await fetch(frameUrl(index), { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const frame = await response.json();
  state.frame = frame;
  if (!state.window) state.window = { ...frame.window };
  setupWindowControls(frame);
  const out = root.querySelector('[data-output="frame"]');
  if (out) out.textContent = String(index + 1);
  draw();
  root.dataset.loaded = String(index);
}

if (root) {
  control("frame")?.addEventListener("input", (e) => load(parseInt(e.target.value, 10)));
  control("level")?.addEventListener("input", (e) => { state.window.center = parseFloat(e.target.value); draw(); });
  control("width")?.addEventListener("input", (e) => { state.window.width = Math.max(1, parseFloat(e.target.value)); draw(); });
  control("reset")?.addEventListener("click", () => { state.window = { ...state.frame.window }; setupWindowControls(state.frame); draw(); });
  control("heatmap")?.addEventListener("change", draw);
  control("opacity")?.addEventListener("input", draw);
  load(parseInt(root.dataset.keyFrame || "0", 10));
}
