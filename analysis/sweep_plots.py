"""Figures of a sweep: heatmaps (phase diagrams) over two axes and line plots, faceted by a third axis.

Axes beyond the plotted ones and the facet are averaged over (seeds, typically). Missing and
failed points are NaN and left blank. Wherever the load K/N is an axis, the classical Hopfield
capacity K/N = 0.138 is drawn in.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from astrogate.analysis.io import prepare_output, save_figure  # noqa: E402
from astrogate.errors import InputError  # noqa: E402

CLASSICAL_CAPACITY = 0.138  # K/N of the classical Hopfield network (Amit, Gutfreund & Sompolinsky 1985)
LABELS = {
    "load": "load K/N", "tau_ratio": r"$\tau_g / \tau_u$", "beta": r"$\beta$", "correlation": "pattern correlation",
    "flip": "cue flips", "mask": "cue mask", "tau_g": r"$\tau_g$ (ms)", "tau_u": r"$\tau_u$ (ms)",
    "nearest_accuracy": "nearest-memory accuracy (nearest memory = target)", "exact_match": "exact retrieval rate",
    "final_overlap": "final overlap with target", "converged": "converged share", "t_converged": "t converged (ms)",
    "T": "temperature $T$", "tau_p": r"$\tau_p$ (ms)", "tau_x": r"$\tau_x$ (ms)", "sigma": r"$\sigma$",
    "soft_hamming_error": "soft Hamming error (eq. 13)", "hamming_error": "Hamming error (eq. 15)",
    "perplexity": "perplexity of the gains (eq. 14)", "convergence_time": "convergence time (ms)",
}
# metrics that are not shares in [0, 1] (their colour scale is their own range)
UNBOUNDED = ("t_converged", "run_seconds", "soft_hamming_error", "hamming_error", "perplexity", "convergence_time")


REPLICATES = "seed"  # an axis of replicates: averaged over, never a facet


def choose_axes(dataset, x: str | None = None, y: str | None = None) -> tuple[str, str | None, str | None]:
    """(x, y, facet): by default the first axes in the spec's order, seeds last."""
    dims = sorted(dataset.dims, key=lambda d: d == REPLICATES)  # stable: keeps the spec's order otherwise
    if not dims:
        raise InputError("this sweep has no axes (a single point): nothing to plot against")
    for name in (x, y):
        if name is not None and name not in dims:
            raise InputError(f"{name!r} is not an axis of this sweep; its axes are {', '.join(dims)}")
    if x is not None and x == y:
        raise InputError(f"--x and --y are both {x!r}: choose two different axes ({', '.join(dims)})")
    rest = [d for d in dims if d not in (x, y)]
    x = x or rest.pop(0)
    if y is None and rest:
        y = rest.pop(0)
    facets = [d for d in rest if d != REPLICATES]
    return x, y, facets[0] if facets else None


def plot_sweep(dataset, out_dir: str | Path, metrics=None, x: str | None = None, y: str | None = None) -> list[Path]:
    """Heatmaps (with two or more axes) and line plots of each metric; returns the files written."""
    metrics = list(metrics or [m for m in dataset.data_vars if m not in ("status", "error")])
    for metric in metrics:
        if metric not in dataset.data_vars:
            raise InputError(f"metric {metric!r} was not recorded; recorded: "
                             f"{', '.join(m for m in dataset.data_vars if m not in ('status', 'error'))}")
    x, y, facet = choose_axes(dataset, x, y)
    keep = [d for d in (x, y, facet) if d]
    reduced = dataset[metrics].mean(dim=[d for d in dataset.dims if d not in keep], skipna=True)
    done = int((dataset["status"] == "ok").sum())
    note = "" if done == dataset["status"].size else f" (partial: {done}/{dataset['status'].size} points)"
    paths = []
    suffix = "_".join(d for d in (x, y) if d)  # other choices of axes do not overwrite these figures
    for metric in metrics:
        for kind in ("heatmap", "lines") if y is not None else ("lines",):
            paths.append(_figure(reduced[metric], x, y, facet, kind, Path(out_dir) / f"{kind}_{metric}_{suffix}.png",
                                 dataset.attrs.get("name", ""), note))
    return paths


def _figure(values, x, y, facet, kind, path, title, note) -> Path:
    path = prepare_output(path, "plot")
    n_panels = values.sizes[facet] if facet else 1
    fig, axes = plt.subplots(1, n_panels, figsize=(4.2 * n_panels + 1.2, 3.8), squeeze=False)
    for i, ax in enumerate(axes[0]):
        panel = values.isel({facet: i}) if facet else values
        image = _heatmap(ax, panel, x, y) if kind == "heatmap" else _lines(ax, panel, x, y)
        if facet:
            value = values[facet].values[i] if facet in values.indexes else None
            ax.set_title(f"{_label(facet)}: {_ticks(values, facet)[i]}{_capacity_note(facet, value)}", fontsize=9)
    if kind == "heatmap":
        fig.colorbar(image, ax=axes[0].tolist(), label=_label(values.name))
    elif y:
        axes[0][-1].legend(fontsize=7, title=_label(y), title_fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(f"{title}: {_label(values.name)}{note}", fontsize=10)
    save_figure(fig, path, dpi=110, bbox_inches="tight")
    return path


def _ticks(data, dim) -> list[str]:
    """Labels along an axis: its values, or for zipped fields their values joined ("tau_u=5, tau_g=10")."""
    if dim in data.indexes:
        return [_fmt(v) for v in data[dim].values]
    zipped = [name for name, coord in data.coords.items() if coord.dims == (dim,)]
    return [", ".join(f"{name}={_fmt(data[name].values[i])}" for name in zipped) for i in range(data.sizes[dim])]


def _numeric(data, dim):
    """The axis's values if it has one numeric coordinate, else None (zipped axes: positions)."""
    if dim in data.indexes and np.issubdtype(data[dim].dtype, np.number):
        return np.asarray(data[dim].values, float)
    return None


def _heatmap(ax, panel, x, y):
    data = panel.transpose(y, x).values
    n_x, n_y = panel.sizes[x], panel.sizes[y]
    # cells centred on index positions, so that log grids look even
    image = ax.imshow(data, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest",
                      extent=(-0.5, n_x - 0.5, -0.5, n_y - 0.5),
                      vmin=None if panel.name in UNBOUNDED else 0,
                      vmax=None if panel.name in UNBOUNDED else 1)
    ax.set_xticks(range(n_x), _ticks(panel, x), rotation=45, fontsize=7, ha="right")
    ax.set_yticks(range(n_y), _ticks(panel, y), fontsize=7)
    ax.set_xlabel(_label(x))
    if ax.get_subplotspec().is_first_col():
        ax.set_ylabel(_label(y))
    for name, draw in ((x, ax.axvline), (y, ax.axhline)):
        position = _capacity_position(name, _numeric(panel, name))
        if position is not None:
            draw(position, color="w", ls="--", lw=1.2)
            ax.text(*((position, n_y - 0.6) if name == x else (n_x - 0.6, position)),
                    " classical\n capacity", color="w", fontsize=7, va="top", ha="left" if name == x else "right")
    return image


def _lines(ax, panel, x, y):
    xs = _numeric(panel, x)
    if xs is None:  # zipped: evenly spaced, labelled
        xs = np.arange(panel.sizes[x])
        ax.set_xticks(xs, _ticks(panel, x), rotation=45, fontsize=7, ha="right")
    elif _is_log(xs):
        ax.set_xscale("log")
    n_lines = panel.sizes[y] if y else 1
    labels = _ticks(panel, y) if y else [None]
    for i in range(n_lines):
        line = panel.isel({y: i}) if y else panel
        ax.plot(xs, line.values, marker="o", ms=3, color=plt.cm.viridis(i / max(1, n_lines - 1)), label=labels[i])
    if _capacity_position(x, _numeric(panel, x)) is not None:
        ax.axvline(CLASSICAL_CAPACITY, color="k", ls="--", lw=1)
        ax.text(CLASSICAL_CAPACITY, ax.get_ylim()[1], " classical capacity", fontsize=7, va="top")
    ax.set_xlabel(_label(x))
    if ax.get_subplotspec().is_first_col():
        ax.set_ylabel(_label(panel.name))
    return None


def _capacity_position(name, values):
    """Where K/N = 0.138 falls on a load axis, in index units (interpolated on log or linear scale)."""
    if name != "load" or values is None or not values.min() <= CLASSICAL_CAPACITY <= values.max():
        return None
    scale = np.log if _is_log(values) else (lambda v: v)
    return float(np.interp(scale(CLASSICAL_CAPACITY), scale(np.asarray(values, float)), np.arange(len(values))))


def _capacity_note(name, value) -> str:
    if name != "load" or value is None:
        return ""
    return " (above classical capacity)" if value > CLASSICAL_CAPACITY else " (below classical capacity)"


def _is_log(values) -> bool:
    values = np.asarray(values, float)
    if len(values) < 3 or np.any(values <= 0):
        return False
    return np.allclose(np.diff(np.log(values)), np.log(values[1] / values[0]), rtol=1e-6) or \
        values.max() / values.min() > 50


def _label(name) -> str:
    return LABELS.get(name, str(name))


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, (float, np.floating)) else str(value)
