"""Sphinx configuration of astrogate's documentation (make docs: HTML into docs/_build/html)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

import astrogate

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))

import generated_pages  # noqa: E402  (docs/generated_pages.py: example and module pages)
import page_checks  # noqa: E402  (docs/page_checks.py: control characters and math of the built pages)

project = "astrogate"
author = "the astrogate developers"
copyright = "2026, the astrogate developers"
release = version = astrogate.__version__

extensions = [
    "myst_nb",  # MyST Markdown pages (it brings myst_parser) and the tutorials, executed at every build
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

# Markdown pages, and text notebooks (front matter `file_format: mystnb`); $...$ and $$...$$ math, amsmath
# environments, ::: fences, heading anchors
source_suffix = {".md": "myst-nb"}
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
# api/tables: the generated parameter tables, included by pages (docs/generated_pages.py), not pages themselves
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "api/tables", "jupyter_execute"]
# the tutorials run at every build (CI's included): a cell that raises fails the build; they take about half a
# minute on 2 cores
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 600
nb_merge_streams = True
# docstrings write `name` for code: reST's single backticks render as code, not italics
default_role = "literal"

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

# MathJax from the installed package (the docs extra), copied next to the pages: math renders offline
MATHJAX_FILES = ("tex-chtml.js", "output/chtml/fonts/woff-v2")  # what tex-chtml loads, relative to es5/
mathjax_path = "mathjax/tex-chtml.js"  # relative to _static/




def _skip_public_names(app, what, name, obj, skip, options):
    # a public name is documented once, as astrogate.NAME (docs/api/index.md), not again under its module:
    # two entries would make every reference to it (type hints included) ambiguous
    if what == "module" and name in astrogate.__all__ and getattr(astrogate, name, None) is obj:
        return True
    return None


def _escape_bars(app, what, name, obj, options, lines):
    # docstrings write |x| for absolute values and norms; reST would read |...| as a substitution
    lines[:] = [line.replace("|", r"\|") for line in lines]


def _separate_lists(app, what, name, obj, options, lines):
    # docstrings start "- item" lists right under a sentence and end them without a blank line, as Markdown
    # allows; reST needs the blank lines
    out, list_indent = [], None
    for line in lines:
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if not stripped:
            list_indent = None
        elif stripped.startswith("- ") and list_indent is None:
            if out and out[-1].strip():
                out.append("")
            list_indent = indent
        elif list_indent is not None and indent <= list_indent and not stripped.startswith("- "):
            out.append("")
            list_indent = None
        out.append(line)
    lines[:] = out


def _require_importable(app):
    # autodoc only warns when it cannot import what it documents, and a build without -W then gives an empty
    # API reference and exits 0 (a Python started in a folder that shadows the package, say): any import
    # error stops the build here, with the module and the error named
    errors = generated_pages.import_errors(DOCS)
    if errors:
        raise ExtensionError(f"the API reference cannot be built from astrogate at {astrogate.__file__}: "
                             + "; ".join(errors))


def _check_pages(app, exception):
    # runs after _copy_mathjax (registered after it): control characters and math MathJax rejects fail the build
    if exception is not None or app.builder.format != "html":
        return
    try:
        problems = page_checks.check_pages(Path(app.outdir))
    except RuntimeError as exc:  # no Node.js: a warning, an error under -W (make docs)
        logging.getLogger(__name__).warning(f"the pages were not checked: {exc}")
        return
    if problems:
        raise ExtensionError(f"{len(problems)} problem(s) in the built pages:\n" + "\n".join(problems))


def _copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    es5 = page_checks.mathjax_es5()
    target = Path(app.outdir) / "_static" / "mathjax"
    for name in MATHJAX_FILES:
        source, copy = es5 / name, target / name
        if source.is_dir():
            shutil.copytree(source, copy, dirs_exist_ok=True)
        else:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)


def setup(app):
    # pages for the scripts of examples/ and the modules are written before Sphinx reads the sources
    app.connect("builder-inited", lambda app: generated_pages.write_pages(DOCS))
    app.connect("builder-inited", _require_importable)
    # before napoleon (priority 500) turns numpy sections into reST
    app.connect("autodoc-process-docstring", _escape_bars, priority=400)
    app.connect("autodoc-process-docstring", _separate_lists, priority=400)
    app.connect("autodoc-skip-member", _skip_public_names)
    app.connect("build-finished", _copy_mathjax)
    app.connect("build-finished", _check_pages)
