// Monitoring board: replaces the table body with fresh rows from data-rows-url every
// data-refresh-ms. X-MedAI-Poll tells the server this is not user activity (idle sign-out).

const table = document.querySelector("[data-board]");

function setStatus(text) {
  const status = document.querySelector("[data-board-status]");
  if (status) status.textContent = text;
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
    body.innerHTML = await response.text();
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
