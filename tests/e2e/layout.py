"""Page layout checks at desk and tablet widths (issue #19: nothing looks unfinished)."""

from __future__ import annotations

from tests.e2e.browser import screenshot_dir

WIDTHS = (1280, 768)

#: The page's horizontal overflow and the top bar's height (px) and rows of navigation.
MEASURE = """() => {
  const bar = document.querySelector("header.topbar");
  const nav = document.querySelector("nav.mainnav");
  const shown = nav ? [...nav.children].filter((e) => e.getClientRects().length) : [];
  const tops = new Set(shown.map((e) => Math.round(e.getBoundingClientRect().top)));
  const wide = [...document.querySelectorAll("main *")].filter(
    (e) => e.getBoundingClientRect().right > window.innerWidth + 1
      && !e.closest(".table-scroll, .chart, [data-viewer], .js-plotly-plot")
  ).slice(0, 5).map((e) => e.tagName + "." + e.className);
  return {
    scroll: document.scrollingElement.scrollWidth,
    inner: window.innerWidth,
    bar: bar ? Math.round(bar.getBoundingClientRect().height) : 0,
    navRows: tops.size,
    wide,
  };
}"""

#: The highest top bar allowed: one row of navigation (a menu button at tablet width).
MAX_BAR_PX = 64


def check_widths(page, name: str, *, ready: str | None = None) -> None:
    """Screenshot the page open in ``page`` at each of WIDTHS (tablet-<name>-<width>.png) and
    assert it never scrolls sideways (tables scroll inside their wrappers) and that the top
    bar stays one row; the viewport is then restored. ``ready``: a selector to wait for after
    each resize."""
    shots = screenshot_dir()
    before = page.viewport_size
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 1024})
        if ready:
            page.wait_for_selector(ready, state="attached")
        # Charts redraw on resize, which takes more than a moment on a busy machine (a CI run
        # measured a design-run page mid-redraw at 1155 px): measured until it fits, 10 s at most.
        page.wait_for_timeout(150)
        measured = page.evaluate(MEASURE)
        for _ in range(50):
            if measured["scroll"] <= measured["inner"]:
                break
            page.wait_for_timeout(200)
            measured = page.evaluate(MEASURE)
        page.screenshot(path=shots / f"tablet-{name}-{width}.png", full_page=True)
        assert measured["scroll"] <= measured["inner"], (name, width, measured)
        assert measured["bar"] <= MAX_BAR_PX, (name, width, measured)
        assert measured["navRows"] <= 1, (name, width, measured)
    page.set_viewport_size(before)
