// Live training curves: each progress report carries the figure of the epochs so far
// (built on the server by diagnosis.charts; null before the first epoch); charts.js redraws
// it without reloading the page, replacing the "not started yet" sentence.

const holder = document.querySelector("[data-live-chart]");
const chart = holder && document.querySelector(`.chart[data-figure="${holder.dataset.liveChart}"]`);

if (chart) {
  holder.addEventListener("job:progress", (event) => {
    const figure = (event.detail.live || {}).figure;
    if (figure) chart.dispatchEvent(new CustomEvent("chart:figure", { detail: figure, bubbles: true }));
  });
}
