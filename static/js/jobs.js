// Live job progress: every [data-job-progress] element polls its status URL once a second
// while the job runs, shows percent, stage and elapsed time, and stops when it finishes.
// The X-MedAI-Poll header tells the server this is not user activity (idle sign-out).

const POLL_MS = 1000;

function formatElapsed(seconds) {
  if (seconds == null) return "";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  if (h) return `${h} h ${m % 60} min elapsed`;
  if (m) return `${m} min ${s % 60} s elapsed`;
  return `${s} s elapsed`;
}

function field(root, name) {
  return root.querySelector(`[data-field="${name}"]`);
}

function render(root, job) {
  root.className = root.className.replace(/\bstatus-\w+/, "") + ` status-${job.status}`;
  field(root, "status").textContent = job.status_display;
  const bar = field(root, "bar");
  bar.value = job.progress;
  field(root, "percent").textContent = `${Math.round(job.progress)}%`;
  field(root, "stage").textContent = job.stage || "";
  root.dataset.elapsed = job.elapsed_seconds ?? "";
  root.dataset.ticking = job.finished ? "" : "1";
  root.dataset.tickBase = String(Date.now());
  field(root, "elapsed").textContent = formatElapsed(job.elapsed_seconds);
  // Queue position and ETA (or why it waits, e.g. no GPU worker online) until it finishes.
  const estimate = field(root, "estimate");
  if (estimate) {
    const text = (job.estimate && job.estimate.text) || "";
    estimate.textContent = text;
    estimate.hidden = !text;
    estimate.classList.toggle("job-waiting", Boolean(job.estimate && job.estimate.waiting_reason));
  }
  const error = field(root, "error");
  error.hidden = !job.error;
  error.textContent = job.error || "";
  const result = field(root, "result");
  result.hidden = job.status !== "succeeded";
  field(root, "summary").textContent = job.result_summary || "Finished.";
  const link = field(root, "result-link");
  if (job.result_url) {
    link.href = job.result_url;
    link.hidden = false;
  }
  if (job.finished) {
    const cancel = root.querySelector("form[data-cancel]");
    // A keyboard user who pressed Cancel keeps their place: on the job's title, not the page start.
    if (cancel && cancel.contains(document.activeElement)) root.querySelector(".job-title").focus();
    if (cancel) cancel.remove();
  }
}

async function poll(root) {
  let job;
  try {
    const response = await fetch(root.dataset.statusUrl, {
      headers: { Accept: "application/json", "X-MedAI-Poll": "1" },
      credentials: "same-origin",
      redirect: "manual",
    });
    if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
      field(root, "stage").textContent = "Signed out — sign in again to follow this job.";
      return;
    }
    if (!response.ok) throw new Error(`status ${response.status}`);
    job = await response.json();
  } catch (err) {
    field(root, "stage").textContent = "Connection lost; retrying…";
    setTimeout(() => poll(root), POLL_MS * 3);
    return;
  }
  const wasRunning = root.dataset.finished !== "1";
  render(root, job);
  root.dispatchEvent(new CustomEvent("job:progress", { bubbles: true, detail: job }));
  if (job.finished) {
    root.dataset.finished = "1";
    if (wasRunning && job.status === "succeeded" && root.dataset.onSuccess === "reload") {
      window.location.reload();
    }
    root.dispatchEvent(new CustomEvent("job:finished", { bubbles: true, detail: job }));
    return;
  }
  setTimeout(() => poll(root), POLL_MS);
}

function tick() {
  document.querySelectorAll("[data-job-progress][data-ticking='1']").forEach((root) => {
    const base = parseFloat(root.dataset.elapsed);
    if (Number.isNaN(base)) return;
    const extra = (Date.now() - Number(root.dataset.tickBase)) / 1000;
    field(root, "elapsed").textContent = formatElapsed(base + extra);
  });
}

async function cancel(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const root = form.closest("[data-job-progress]");
  const button = form.querySelector("button");
  button.disabled = true;
  const response = await fetch(form.action, {
    method: "POST",
    body: new FormData(form),
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  if (response.ok) render(root, await response.json());
  else button.disabled = false;
}

export function watch(root) {
  if (root.dataset.finished === "1") {
    const seconds = parseFloat(root.dataset.elapsed);
    field(root, "elapsed").textContent = Number.isNaN(seconds) ? "" : formatElapsed(seconds);
    return;
  }
  const cancelForm = root.querySelector("form[data-cancel]");
  if (cancelForm) cancelForm.addEventListener("submit", cancel);
  poll(root);
}

document.querySelectorAll("[data-job-progress]").forEach(watch);
setInterval(tick, 250);
