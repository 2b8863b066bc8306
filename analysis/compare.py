"""A Brian2 run beside the abstract model on the same patterns, cue, parameters and dt.

The abstract model runs forward Euler with tol = 0 (no early stop), so both take exactly the same steps
and keep samples at the same times; every discrepancy below should be floating-point round-off.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrogate.analysis.recall import RecallProblem, recall
from astrogate.models.parameters import Parameters


def run_both(problem: RecallProblem, params: Parameters, duration: float = 500.0, **brian2_options) -> dict:
    """{'abstract': record, 'brian2': record} for the same problem."""
    reference = recall(problem, params, duration=duration, method="euler", tol=0.0)
    network = recall(problem, params, duration=duration, method="euler", tol=0.0, backend="brian2",
                         **brian2_options)
    return {"abstract": reference, "brian2": network}


def discrepancies(network: dict, reference: dict) -> dict:
    """Largest differences between two records of the same problem (absolute; energy also relative)."""

    def max_abs(key):
        return float(np.max(np.abs(np.asarray(network[key], dtype=float) - np.asarray(reference[key], dtype=float))))

    energy_scale = float(np.max(np.abs(reference["energy"])))
    same_samples = np.array_equal(network["t"], reference["t"])
    return {
        "same_retrieved": (network["retrieved"], network["retrieved_sign"])
        == (reference["retrieved"], reference["retrieved_sign"]),
        "max_abs_gain": max_abs("g"),
        "max_abs_rate": max_abs("v"),
        "max_abs_u": max_abs("u"),
        "max_abs_logit": max_abs("a"),
        "same_sample_times": same_samples,
        "max_abs_overlap_trace": max_abs("overlap_trace") if same_samples else None,
        "max_abs_gain_trace": max_abs("gain_trace") if same_samples else None,
        "max_rel_energy_trace": max_abs("energy") / max(energy_scale, 1e-300) if same_samples else None,
        "softmax_residual": {"brian2": network["softmax_residual"], "abstract": reference["softmax_residual"]},
        "simplex_error": network["brian2"]["simplex_error"],  # the largest over every recorded step
        "energy_increase": {"brian2": network["energy_increase"], "abstract": reference["energy_increase"]},
    }


def report(both: dict, diffs: dict) -> str:
    network, reference = both["brian2"], both["abstract"]
    info = network["brian2"]
    timings = network["timings"]
    lines = [
        f"Brian2 ({info['device']}{'/' + info['target'] if info['target'] else ''}, {info['gating']} gating) "
        f"vs abstract forward Euler: K = {network['K']}, N = {network['N']}, dt = {network['params']['dt']} ms, "
        f"{network['steps']} steps",
        f"retrieved: brian2 {network['retrieved']}, abstract {reference['retrieved']}"
        f"{'' if diffs['same_retrieved'] else '  <-- DIFFERENT'}",
        f"final state: max|dg| = {diffs['max_abs_gain']:.2e}, max|dv| = {diffs['max_abs_rate']:.2e}, "
        f"max|du| = {diffs['max_abs_u']:.2e}, max|da| = {diffs['max_abs_logit']:.2e}",
    ]
    if diffs["same_sample_times"]:
        lines.append(f"traces ({len(network['t'])} samples): max|dm| = {diffs['max_abs_overlap_trace']:.2e}, "
                     f"max|dg| = {diffs['max_abs_gain_trace']:.2e}, max|dL|/max|L| = {diffs['max_rel_energy_trace']:.2e}")
    lines.append(f"softmax residual: brian2 {diffs['softmax_residual']['brian2']:.2e}, "
                 f"abstract {diffs['softmax_residual']['abstract']:.2e}; "
                 f"brian2 max|sum g - 1| over the run = {diffs['simplex_error']:.1e}")
    lines.append(f"largest increase of L between samples: brian2 {diffs['energy_increase']['brian2']:.2e}, "
                 f"abstract {diffs['energy_increase']['abstract']:.2e}")
    lines.append(f"times: brian2 build {timings['build_seconds']:.2f} s, run {timings['run_seconds']:.2f} s; "
                 f"abstract run {reference['timings']['run_seconds']:.2f} s")
    return "\n".join(lines)


def plot_comparison(both: dict, path: str | Path) -> Path:
    """Overlaps, gains and L of both runs overlaid (abstract lines, Brian2 markers), and their differences."""
    from astrogate.analysis.io import prepare_output, save_figure
    from astrogate.analysis.plots import plt  # pyplot on the Agg backend

    path = prepare_output(path, "plot")
    network, reference = both["brian2"], both["abstract"]
    t = np.asarray(reference["t"])
    t_net = np.asarray(network["t"])
    fig, axes = plt.subplots(4, 1, figsize=(6.5, 9), sharex=True)
    panels = (("overlap_trace", "overlap $m_\\mu$"), ("gain_trace", "gain $g_\\mu$"))
    for ax, (key, label) in zip(axes[:2], panels):
        ref, net = np.asarray(reference[key]), np.asarray(network[key])
        for column, mu in enumerate(reference["trace_patterns"]):
            color = f"C{column % 10}"
            ax.plot(t, ref[:, column], color=color, lw=1.2, label=f"pattern {mu}" if key == "overlap_trace" else None)
            ax.plot(t_net, net[:, column], color=color, ls="none", marker="o", ms=2.5, markevery=3)
        ax.set_ylabel(label)
    axes[0].legend(fontsize=6, loc="lower right", ncol=2, title="lines: abstract, dots: Brian2", title_fontsize=6)
    axes[2].plot(t, reference["energy"], color="k", lw=1.2, label="abstract")
    axes[2].plot(t_net, network["energy"], color="C3", ls="none", marker="o", ms=2.5, markevery=3, label="Brian2")
    axes[2].set_ylabel("Lyapunov $L$")
    axes[2].legend(fontsize=7)
    if np.array_equal(t, t_net):
        tiny = 1e-300  # zero differences on a log axis
        diff = {
            "overlaps": np.max(np.abs(np.asarray(network["overlap_trace"]) - reference["overlap_trace"]), axis=1),
            "gains": np.max(np.abs(np.asarray(network["gain_trace"]) - reference["gain_trace"]), axis=1),
            "L (relative)": np.abs(np.asarray(network["energy"]) - reference["energy"])
            / np.max(np.abs(reference["energy"])),
        }
        for label, values in diff.items():
            axes[3].plot(t, np.maximum(values, tiny), lw=1, label=label)
        axes[3].set_yscale("log")
        axes[3].set_ylim(1e-18, 1e-6)
        axes[3].legend(fontsize=7)
    axes[3].set_ylabel("max |Brian2 - abstract|")
    axes[3].set_xlabel("time (ms, linear below 1 ms, then logarithmic)")
    axes[3].set_xscale("symlog", linthresh=1.0)
    axes[3].set_xlim(0, t[-1])
    info = network["brian2"]
    axes[0].set_title(f"Brian2 {info['device']} ({info['gating']}) vs abstract Euler: K={network['K']}, "
                      f"N={network['N']}, dt={network['params']['dt']} ms", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    return path
