"""One documentation page per script of examples/, written into docs/examples/ (git-ignored) at build time.

docs/examples/index.md lists them (a generated toctree, so that the site builds with -W whatever
examples/ holds).

A page is the script's module docstring (its first line is the title), the figure the script wrote into
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
    lines = [f"# {title}", "", body.strip(), ""]
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


def write_pages(docs: Path) -> list[Path]:
    """Write docs/examples/<stem>.md for every examples/*.py and the index; remove pages whose script is gone."""
    scripts = sorted((docs.parent / "examples").glob("*.py"))
    out = docs / "examples"
    out.mkdir(exist_ok=True)
    wanted = {out / f"{s.stem}.md": page_text(s, docs) for s in scripts if not s.name.startswith("_")}
    if wanted:
        entries = "\n".join(path.stem for path in sorted(wanted))
        index = f"{INDEX_INTRO}\n```{{toctree}}\n:maxdepth: 1\n\n{entries}\n```\n"
    else:
        index = INDEX_INTRO + "\nThere are no scripts in `examples/` in this checkout.\n"
    wanted[out / "index.md"] = index
    for stale in set(out.glob("*.md")) - set(wanted):
        stale.unlink()
    for path, text in wanted.items():
        # rewrite only on change, so that Sphinx does not re-read unchanged pages
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return sorted(wanted)
