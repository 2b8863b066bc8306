"""Figures. Agg backend: no screen needed."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from astrogate.analysis.io import prepare_output, save_figure  # noqa: E402


def pattern_label(record: dict, mu: int) -> str:
    """A traced pattern's legend entry: the target, the largest final gain, a mirror state (state -xi_mu)."""
    notes = []
    if mu == record["target"]:
        notes.append("target")
    if mu == int(np.argmax(record["g"])):
        notes.append("largest gain")
    if mu == record["retrieved"] and record.get("mirror"):
        notes.append("mirror: state -xi")
    return f"pattern {mu}" + (f" ({', '.join(notes)})" if notes else "")


def pattern_style(record: dict, mu: int, width: float) -> dict:
    """The target thick red, the winning gain (when another pattern) thick blue dashed, the others thin."""
    if mu == record["target"]:
        return dict(lw=width, color="C3", zorder=3)
    if mu == int(np.argmax(record["g"])):
        return dict(lw=width, color="C0", ls="--", zorder=3)
    return dict(lw=0.9, alpha=0.7)


def _recall_axes(result: dict, axes, label: str = "") -> None:
    """Overlaps, gains and the Lyapunov function of one retrieval on three axes."""
    t = np.asarray(result["t"])
    traced = result["trace_patterns"]
    for column, mu in enumerate(traced):
        style = pattern_style(result, mu, 2.2)
        name = pattern_label(result, mu)
        axes[0].plot(t, np.asarray(result["overlap_trace"])[:, column], label=name, **style)
        axes[1].plot(t, np.asarray(result["gain_trace"])[:, column], **style)
    if len(result["energy"]) == len(t):  # spiking networks keep no L trace (it is no Lyapunov function there)
        axes[2].plot(t, result["energy"], color="k")
    axes[0].set_ylabel("overlap $m_\\mu$")
    axes[1].set_ylabel("gain $g_\\mu$")
    axes[2].set_ylabel("Lyapunov $L$")
    axes[2].set_xlabel("time (ms, linear below 1 ms, then logarithmic)")
    axes[2].set_xscale("symlog", linthresh=1.0)
    if label:
        axes[0].set_title(label, fontsize=10)
    axes[0].legend(fontsize=7, loc="lower right")


def plot_recall(result: dict, path: str | Path) -> Path:
    path = prepare_output(path, "plot")
    fig, axes = plt.subplots(3, 1, figsize=(6, 7), sharex=True)
    _recall_axes(result, axes, f"{result['backend']}: K={result['K']}, N={result['N']}, beta={result['params']['beta']:g}")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    return path


def plot_side_by_side(results: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """One column per labelled retrieval (for example gated vs classical)."""
    path = prepare_output(path, "plot")
    fig, axes = plt.subplots(3, len(results), figsize=(5 * len(results), 7), sharex="col", squeeze=False)
    for column, (label, result) in enumerate(results.items()):
        _recall_axes(result, axes[:, column], label)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    return path
