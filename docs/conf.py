"""Sphinx configuration of astrogate's documentation (make docs: HTML into docs/_build/html)."""

from __future__ import annotations

import sys
from pathlib import Path

import astrogate

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))

import example_pages  # noqa: E402  (docs/example_pages.py: one page per script of examples/)

project = "astrogate"
author = "the astrogate developers"
copyright = "2026, the astrogate developers"
release = version = astrogate.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

# Markdown pages; $...$ and $$...$$ math, amsmath environments, ::: fences, heading anchors
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# numpy-style docstrings
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = f"astrogate {release}"
html_static_path: list[str] = []


def setup(app):
    # pages for the scripts of examples/ are written before Sphinx reads the sources
    app.connect("builder-inited", lambda app: example_pages.write_pages(DOCS))
