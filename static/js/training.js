// Live training curves: each progress report carries the figure of the epochs so far
// (built on the server by diagnosis.charts); redraw it without reloading the page.

const holder = document.querySelector("[data-live-chart]");
const chart = holder && document.querySelector(`.chart[data-figure="${holder.dataset.liveChart}"]`);

if (chart) {
  holder.addEventListener("job:progress", (event) => {
    const figure = (event.detail.live || {}).figure;
    if (!figure || !window.Plotly) return;
    window.Plotly.react(chart, figure.data, figure.layout, { responsive: true, displaylogo: false });
  });
}
