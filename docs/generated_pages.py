"""Pages written at build time from the repository's folders, so that new files join the site by themselves.

- docs/examples/ (git-ignored): one page per script of examples/, and docs/examples/index.md listing them (a
  generated toctree, so that the site builds with -W whatever examples/ holds).
- docs/api/modules/ (git-ignored): one page per layer (models, network, analysis, cli) with an automodule of
  each of its modules.
- docs/api/tables/ (git-ignored, not pages: included by docs/model.md and the guide): the parameter tables,
  written from the declared tables PARAMETER_TABLE and SPIKING_TABLE (models/declared.py), so that the docs
  list exactly the parameters the code checks.

An example's page is its module docstring (reST; the first line is the title), the figure the script wrote into
docs/figures/examples/<script stem>.png when that file exists, and the script itself (literalinclude). The
figures are tracked files drawn by running each example at its full size, so the docs build runs no example.
"""

from __future__ import annotations

import ast
from pathlib import Path

FIGURES = Path("figures") / "examples"  # relative to docs/

INDEX_INTRO = """# Examples

The scripts of the repository's `examples/` folder, each a short script that makes one figure.
Every example runs under the default tests at a small size, so an example that breaks fails CI; the
figures on these pages were drawn by running the examples at their full size.
"""


def page_text(script: Path, docs: Path) -> str:
    docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    title, _, body = docstring.strip().partition("\n")
    title = title.strip().rstrip(".") or script.stem
    body = body.strip("\n")
    if body and set(body.splitlines()[0].strip()) <= set("=-~") and body.splitlines()[0].strip():
        body = body.partition("\n")[2]  # the reST underline of the title
    # the examples' docstrings are reST (Brian2's examples write theirs so): rendered as such
    lines = [f"# {title}", "", "```{eval-rst}", body.strip(), "```", ""]
    figure = FIGURES / f"{script.stem}.png"
    if (docs / figure).exists():
        lines += [f"```{{image}} ../{figure.as_posix()}", f":alt: the figure of {script.name}", "```", ""]
    lines += [
        f"Run it with `python examples/{script.name}`.",
        "",
        f"```{{literalinclude}} ../../examples/{script.name}",
        ":language: python",
        "```",
        "",
    ]
    return "\n".join(lines)


def is_example(script: Path) -> bool:
    # helpers the scripts share (example_utils.py) get no page of their own
    return not script.name.startswith("_") and not script.stem.endswith("utils")


def example_pages(docs: Path) -> dict[Path, str]:
    """docs/examples/<stem>.md for every examples/*.py, and the index."""
    scripts = sorted((docs.parent / "examples").glob("*.py"))
    out = docs / "examples"
    pages = {out / f"{s.stem}.md": page_text(s, docs) for s in scripts if is_example(s)}
    # examples/README.md (title included) introduces them where it exists
    readme = docs.parent / "examples" / "README.md"
    intro = "```{include} ../../examples/README.md\n```\n" if readme.is_file() else INDEX_INTRO
    if pages:
        entries = "\n".join(path.stem for path in sorted(pages))
        index = f"{intro}\n```{{toctree}}\n:maxdepth: 1\n\n{entries}\n```\n"
    else:
        index = intro + "\nThere are no scripts in `examples/` in this checkout.\n"
    pages[out / "index.md"] = index
    return pages


# the layers of the package: (page, folder, package, what the layer holds)
LAYERS = (
    ("models", "models", "astrogate.models", "equations, parameters, the abstract model, baselines"),
    ("network", "network", "astrogate.network", "Brian2 networks and devices"),
    ("analysis", "analysis", "astrogate.analysis", "recall runs, metrics, benchmarks, sweeps, figures"),
    ("cli", "cli", "astrogate.cli", "the command line"),
)
EXTRA_MODULES = {"models": ("astrogate.errors",)}  # modules of the package root documented with a layer


def layer_modules(root: Path, folder: str, package: str) -> list[str]:
    """The layer's modules, and a sub-package (a folder with __init__.py, e.g. analysis/speed/) then its modules."""
    modules = []
    for path in sorted((root / folder).iterdir()):
        if path.suffix == ".py" and not path.stem.startswith("_"):
            modules.append(f"{package}.{path.stem}")
        elif path.is_dir() and (path / "__init__.py").is_file():
            modules += [f"{package}.{path.name}", *layer_modules(root, f"{folder}/{path.name}", f"{package}.{path.name}")]
    return modules


def module_pages(docs: Path) -> dict[Path, str]:
    """docs/api/modules/<layer>.md: an automodule of every module of each layer's folder."""
    out = docs / "api" / "modules"
    pages = {}
    for page, folder, package, what in LAYERS:
        lines = [f"# {package}: {what}", "",
                 "The names that `astrogate` exports are documented once, on the [API reference](../index.md)"
                 " page, as `astrogate.NAME`.", ""]
        for module in (*EXTRA_MODULES.get(page, ()), *layer_modules(docs.parent, folder, package)):
            lines += [f"## `{module}`", "", "```{eval-rst}", f".. automodule:: {module}", "```", ""]
        pages[out / f"{page}.md"] = "\n".join(lines)
    return pages


def documented_modules(docs: Path) -> list[str]:
    """Every module the module pages document with automodule."""
    return [module for page, folder, package, _ in LAYERS
            for module in (*EXTRA_MODULES.get(page, ()), *layer_modules(docs.parent, folder, package))]


def import_errors(docs: Path) -> list[str]:
    """'what: error' for every documented module that does not import and every public name of astrogate
    that does not resolve (the API reference page documents each as astrogate.NAME)."""
    import importlib

    errors = []
    for module in ("astrogate", *documented_modules(docs)):
        try:
            importlib.import_module(module)
        except Exception as exc:  # any failure leaves its part of the API reference empty
            errors.append(f"{module}: {type(exc).__name__}: {exc}")
    if not errors:
        import astrogate

        for name in astrogate.__all__:
            try:
                getattr(astrogate, name)
            except Exception as exc:
                errors.append(f"astrogate.{name}: {type(exc).__name__}: {exc}")
    return errors


def write(pages: dict[Path, str], folder: Path) -> None:
    """Write `pages` into `folder`, removing the pages there that are no longer wanted."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in set(folder.glob("*.md")) - set(pages):
        stale.unlink()
    for path, text in pages.items():
        # rewrite only on change, so that Sphinx does not re-read unchanged pages
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def markdown_table(table) -> str:
    """A declared table as Markdown: name (and command-line option), default, values, meaning, the paper's."""
    with_paper = any(spec.paper for spec in table)
    lines = ["| name | option | default | values | meaning |" + (" paper |" if with_paper else ""),
             "|---|---|---|---|---|" + ("---|" if with_paper else "")]
    for spec in table:
        values = {"choice": " or ".join(spec.choices), "similarity": "quadratic, linear, power:n",
                  "count": "whole number >= 1", "seed": "whole number >= 0"}.get(spec.kind, "")
        if spec.kind == "number":
            values = {"> 0": "> 0", ">= 0": ">= 0", "": "any"}[spec.bounds] + (f" {spec.unit}" if spec.unit else "")
        paper = ", ".join(part for part in (spec.paper, spec.equation) if part)
        option = f"`{spec.flag}`" if spec.option else ""
        lines.append(f"| `{spec.name}` | {option} | {spec.default_words} | {values} | {spec.meaning} |"
                     + (f" {paper} |" if with_paper else ""))
    return "\n".join(lines) + "\n"


def parameter_tables(docs: Path) -> dict[Path, str]:
    from astrogate.models.parameters import PARAMETER_TABLE
    from astrogate.models.spiking_equations import SPIKING_TABLE

    out = docs / "api" / "tables"
    return {out / "parameters.md": markdown_table(PARAMETER_TABLE),
            out / "spiking_parameters.md": markdown_table(SPIKING_TABLE)}


def write_pages(docs: Path) -> None:
    write(example_pages(docs), docs / "examples")
    write(module_pages(docs), docs / "api" / "modules")
    write(parameter_tables(docs), docs / "api" / "tables")
