"""Plotly's JavaScript, served from the installed plotly package (no CDN on a hospital
network): only the one bundle the pages load, not the rest of the package's data folder (its
4.9 MB widget bundle and sample data sets), which collectstatic would otherwise copy and
compress on every start."""

from __future__ import annotations

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_DIR = Path(plotly.__file__).parent / "package_data"
PLOTLY_BUNDLE = "plotly.min.js"
PREFIX = "vendor/plotly"


class PlotlyFinder(BaseFinder):
    """Finds ``vendor/plotly/plotly.min.js`` in the installed plotly package."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=PLOTLY_DIR)
        self.storage.prefix = PREFIX  # type: ignore[attr-defined]  # as FileSystemFinder does

    def check(self, **kwargs):
        from django.core.checks import Error

        if not (PLOTLY_DIR / PLOTLY_BUNDLE).is_file():
            return [Error(f"{PLOTLY_BUNDLE} is missing from {PLOTLY_DIR}", id="medai.E_PLOTLY")]
        return []

    def find(self, path: str, find_all: bool = False, **kwargs):
        if path != f"{PREFIX}/{PLOTLY_BUNDLE}":
            return []  # as Django's finders answer "not here"
        match = str(PLOTLY_DIR / PLOTLY_BUNDLE)
        return [match] if find_all else match

    def list(self, ignore_patterns):
        yield PLOTLY_BUNDLE, self.storage
