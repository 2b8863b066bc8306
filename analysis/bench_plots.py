"""Figures of the retrieval benchmark: accuracy vs load with 95 % bands, and a gallery of image cues."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from astrogate.analysis.datasets import load_image_set  # noqa: E402
from astrogate.analysis.io import save_figure  # noqa: E402
from astrogate.errors import InputError  # noqa: E402

METRIC_LABELS = {"nearest_accuracy": "nearest-memory accuracy", "exact_match": "exact-match rate"}


def _model_styles(models) -> dict:
    cmap = plt.get_cmap("tab20")
    styles = {}
    for i, name in enumerate(models):
        gated = name.startswith("gated")
        styles[name] = dict(color=cmap(i % 20), lw=2.2 if gated else 1.2, ls="-" if gated else
                            (":" if name in ("cue", "oracle") else "--"), marker="o" if gated else None, ms=3)
    return styles


def plot_accuracy_vs_load(table, out: Path, models=None, prefix: str = "") -> list[Path]:
    """One figure per metric, ``out/<prefix><metric>_vs_load.png``: rows = corruptions, columns = pattern sets
    (interference levels), one line per model (all of the table's, or those in ``models``, in that order) with
    its Wilson 95 % band; skipped cells (cost caps) are absent from a line."""
    paths = []
    if models is not None:
        missing = sorted(set(models) - set(table["model"]))
        if missing:
            raise InputError(f"models not in the table: {', '.join(missing)}")
        table = table[table["model"].isin(models)]
    ok = table[table["status"] == "ok"]
    pattern_sets = list(dict.fromkeys(table["pattern_set"]))
    # row r of a column holds that pattern set's r-th corruption (images have their own corruptions)
    corruptions_of = {pattern_set: list(dict.fromkeys(table.loc[table["pattern_set"] == pattern_set, "corruption"]))
                      for pattern_set in pattern_sets}
    n_rows = max(len(v) for v in corruptions_of.values())
    styles = _model_styles(list(models or dict.fromkeys(table["model"])))
    for metric, label in METRIC_LABELS.items():
        fig, axes = plt.subplots(n_rows, len(pattern_sets), squeeze=False, sharey=True,
                                 figsize=(2.6 * len(pattern_sets) + 1.5, 2.3 * n_rows + 0.8))
        for c, pattern_set in enumerate(pattern_sets):
            for r in range(n_rows):
                ax = axes[r, c]
                if r >= len(corruptions_of[pattern_set]):
                    ax.set_visible(False)
                    continue
                corruption = corruptions_of[pattern_set][r]
                cell = ok[(ok["corruption"] == corruption) & (ok["pattern_set"] == pattern_set)]
                for model in styles:
                    rows = cell[cell["model"] == model].sort_values("load")
                    if rows.empty:
                        continue
                    ax.plot(rows["load"], rows[metric], label=model, **styles[model])
                    ax.fill_between(rows["load"], rows[f"{metric}_lo"], rows[f"{metric}_hi"],
                                    color=styles[model]["color"], alpha=0.12, lw=0)
                ax.axvline(0.138, color="grey", lw=0.6, ls=":")
                ax.set_xscale("log")
                ax.set_ylim(-0.03, 1.03)
                ax.set_title(f"{pattern_set}, {corruption}", fontsize=8)
                ax.tick_params(labelsize=7)
                ax.set_xlabel("load K/N", fontsize=7)
                if c == 0:
                    ax.set_ylabel(label, fontsize=8)
        handles, labels = [], []
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fig.legend(handles, labels, loc="center right", fontsize=7, frameon=False)
        fig.suptitle(f"{label} vs load (95 % Wilson bands; dotted line: 0.138 N)", fontsize=10)
        fig.tight_layout(rect=(0, 0, 1 - 1.4 / fig.get_figwidth(), 0.97))
        path = Path(out) / f"{prefix}{metric}_vs_load.png"
        save_figure(fig, path, dpi=90)
        paths.append(path)
    return paths


def plot_gallery(results: list[dict], path: Path) -> Path:
    """For each image cell kept for the gallery: rows of (target, cue, what each model retrieved)."""
    blocks = []
    for result in results:
        pattern_set, load, corruption = result["cell"]
        gallery = result["gallery"]
        shape = load_image_set("digits" if pattern_set.startswith("digits") else "mnist").shape
        for i in range(len(gallery["cues"])):
            panels = [("target", gallery["targets"][i]), ("cue", gallery["cues"][i])]
            panels += [(name, states[i]) for name, states in gallery["states"].items() if name != "cue"]
            blocks.append((f"{pattern_set}, K/N={load:g}, {corruption}", shape, panels))
    n_cols = max(len(b[2]) for b in blocks)
    fig, axes = plt.subplots(len(blocks), n_cols, figsize=(0.95 * n_cols, 1.05 * len(blocks) + 0.4), squeeze=False)
    for r, (title, shape, panels) in enumerate(blocks):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(panels):
                ax.set_visible(False)
                continue
            name, image = panels[c]
            ax.imshow(np.asarray(image).reshape(shape), cmap="gray_r", vmin=-1, vmax=1)
            if r == 0 or blocks[r - 1][0] != title:
                ax.set_title(name, fontsize=6, rotation=30)
            if c == 0:
                ax.set_ylabel(title.replace(", ", "\n"), fontsize=5)
    fig.tight_layout(pad=0.3)
    save_figure(fig, path, dpi=90)
    return path
