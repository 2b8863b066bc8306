"""What the examples share: the size switch and where each one writes its figure.

Environment variables:

ASTROGATE_EXAMPLE_SIZE
    ``full`` (default) or ``small``. ``small`` shrinks N, K, durations and grids so that an example runs in
    seconds; the tests (tests/test_examples.py) run every example at this size.
ASTROGATE_EXAMPLE_OUT
    A folder for the figures (created if missing). By default full-size figures go to docs/figures/examples/
    of the checkout (the figures the documentation shows) and small ones to examples/figures/ (not tracked).
"""

import os
from pathlib import Path

SIZES = ("full", "small")
HERE = Path(__file__).resolve().parent
DOCS_FIGURES = HERE.parent / "docs" / "figures" / "examples"
SCRATCH_FIGURES = HERE / "figures"


def example_size() -> str:
    """The size asked for by ASTROGATE_EXAMPLE_SIZE (default: full)."""
    size = os.environ.get("ASTROGATE_EXAMPLE_SIZE", "full")
    if size not in SIZES:
        raise SystemExit(f"ASTROGATE_EXAMPLE_SIZE must be one of {', '.join(SIZES)}, got {size!r}")
    return size


def figure_path(name: str, size: str) -> Path:
    """Where the figure `name` of an example run at `size` goes."""
    folder = os.environ.get("ASTROGATE_EXAMPLE_OUT")
    if folder:
        folder = Path(folder)
    elif size == "full" and DOCS_FIGURES.parent.is_dir():
        folder = DOCS_FIGURES
    else:
        folder = SCRATCH_FIGURES
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.png"


def save_figure(figure, name: str, size: str) -> Path:
    """Write the figure as a PNG (100 dpi: small files, sharp enough for the documentation)."""
    path = figure_path(name, size)
    figure.savefig(path, dpi=100)
    print(f"figure: {path}")
    return path
