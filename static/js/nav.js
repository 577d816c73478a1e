// The main navigation on a narrow screen (a tablet): the bar shows a Menu button instead of
// wrapping onto several rows; the button opens the sections below the bar. Without this
// script the bar simply wraps (the CSS collapses it only under html.js-nav).

const nav = document.getElementById("mainnav");
const toggle = document.querySelector("[data-nav-toggle]");

if (nav && toggle) {
  document.documentElement.classList.add("js-nav");
  // Unread counts hidden in the closed menu are summed on its button.
  const unread = [...nav.querySelectorAll(":scope > a .nav-badge, :scope > details > summary .nav-badge")]
    .reduce((sum, badge) => sum + (Number(badge.textContent) || 0), 0);
  if (unread) {
    const badge = document.createElement("span");
    badge.className = "nav-badge";
    badge.textContent = String(unread);
    badge.setAttribute("aria-label", `${unread} unread`);
    toggle.append(" ", badge);
  }
  const setOpen = (open) => {
    toggle.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  };
  toggle.addEventListener("click", () => setOpen(toggle.getAttribute("aria-expanded") !== "true"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && nav.classList.contains("open")) {
      setOpen(false);
      toggle.focus();
    }
  });
}
