// Monitoring board: replaces the table body with fresh rows from data-rows-url every
// data-refresh-ms. X-MedAI-Poll tells the server this is not user activity (idle sign-out).

const table = document.querySelector("[data-board]");

function setStatus(text) {
  const status = document.querySelector("[data-board-status]");
  if (status) status.textContent = text;
}

// A keyboard user's place survives a refresh: the focused link of a patient's row is focused
// again in the new rows (else focus would fall back to the page's start, WCAG 2.4.3).
const FOCUSABLE = "a[href], button, input, select, textarea, [tabindex]";

function focusedPlace(body) {
  const active = document.activeElement;
  const row = active && body.contains(active) ? active.closest("tr[data-patient]") : null;
  if (!row) return null;
  return { patient: row.dataset.patient, index: [...row.querySelectorAll(FOCUSABLE)].indexOf(active) };
}

function restoreFocus(body, place) {
  if (!place) return;
  const row = body.querySelector(`tr[data-patient="${CSS.escape(place.patient)}"]`);
  const targets = row ? [...row.querySelectorAll(FOCUSABLE)] : [];
  const target = targets[Math.min(place.index, targets.length - 1)];
  if (target) target.focus({ preventScroll: true });
}

async function refresh(body, url) {
  try {
    const response = await fetch(url, {
      headers: { Accept: "text/html", "X-MedAI-Poll": "1" },
      credentials: "same-origin",
      redirect: "manual",
    });
    if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
      setStatus("Signed out — sign in again to follow the board.");
      return false;
    }
    if (!response.ok) throw new Error(`status ${response.status}`);
    const html = await response.text();
    const focus = focusedPlace(body);
    body.innerHTML = html;
    restoreFocus(body, focus);
    setStatus(`Updated ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    setStatus("Connection lost; retrying…");
  }
  return true;
}

if (table) {
  const body = table.querySelector("[data-board-body]");
  const period = Number(table.dataset.refreshMs) || 10000;
  const loop = async () => {
    if (await refresh(body, table.dataset.rowsUrl)) setTimeout(loop, period);
  };
  setTimeout(loop, period);
}
