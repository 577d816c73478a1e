// Drug-design run page. While the run trains, each new epoch (a new stage in the job's
// progress) fetches the run's live data: the curves so far and the latest epoch's molecules,
// drawn without reloading the page. When it is done, a click on a generated point of the
// chemical-space map opens that molecule.

const live = document.querySelector("[data-live-run]");

function drawFigure(id, figure) {
  // null until the first epoch: the "not started yet" sentence stays. charts.js draws it.
  const element = document.querySelector(`.chart[data-figure="${id}"]`);
  if (element && figure) element.dispatchEvent(new CustomEvent("chart:figure", { detail: figure, bubbles: true }));
}

function renderSample(holder, smilesList) {
  const base = holder.dataset.structureUrl;
  const cards = smilesList.map((smiles) => {
    const figure = document.createElement("figure");
    figure.className = "mol-card";
    const img = document.createElement("img");
    img.className = "structure";
    img.width = 180;
    img.height = 140;
    img.alt = `Structure of ${smiles}`;
    img.src = `${base}?${new URLSearchParams({ smiles, w: "180", h: "140" })}`;
    const caption = document.createElement("figcaption");
    const code = document.createElement("code");
    code.textContent = smiles;
    caption.append(code);
    figure.append(img, caption);
    return figure;
  });
  if (cards.length) holder.replaceChildren(...cards);
}

async function refresh(root) {
  let data;
  try {
    const response = await fetch(root.dataset.liveUrl, {
      headers: { Accept: "application/json", "X-MedAI-Poll": "1" },
      credentials: "same-origin",
    });
    if (!response.ok) return;
    data = await response.json();
  } catch (err) {
    return; // the progress poller reports lost connections
  }
  Object.entries(data.figures || {}).forEach(([id, figure]) => drawFigure(id, figure));
  const sample = root.querySelector("[data-live-sample]");
  if (sample && data.sample && data.sample.length) renderSample(sample, data.sample);
  const warning = root.querySelector("[data-collapse-warning]");
  if (warning) warning.hidden = !data.collapse;
}

if (live) {
  let lastStage = null;
  live.addEventListener("job:progress", (event) => {
    const stage = event.detail.stage || "";
    if (stage === lastStage) return;
    lastStage = stage;
    refresh(live);
  });
}

const space = document.querySelector("[data-open-molecule] .chart[data-figure='chemical-space']");
if (space) {
  const template = space.closest("[data-open-molecule]").dataset.openMolecule;
  const attach = () => {
    if (typeof space.on !== "function") return false;
    space.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      if (point && point.customdata != null) {
        window.location.href = template.replace("/0/", `/${point.customdata}/`);
      }
    });
    return true;
  };
  // charts.js draws after this module may run; wait until Plotly has set the element up.
  if (!attach()) {
    const timer = setInterval(() => attach() && clearInterval(timer), 200);
    setTimeout(() => clearInterval(timer), 10000);
  }
}
