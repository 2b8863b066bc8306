"""The speed figure (speed.png): time per step against N K, one line per simulator."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from astrogate.analysis.speed.table import measured

def plot_speed(rows, path: Path, exponents: dict | None = None, naam_exponents: dict | None = None) -> Path:
    """Time per step against N K, log-log, one line per simulator; NAAM's points also joined at each fixed K
    (dotted: slope 2 in N there, its N^2 K cost)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from astrogate.analysis.io import save_figure

    fig, ax = plt.subplots(figsize=(7.5, 5))  # the legend goes to the right of the axes, outside
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^v"  # a colour comes back after len(colours) lines, with the next marker
    for index, sim in enumerate(dict.fromkeys(r["simulator"] for r in measured(rows))):
        pts = [(r["N"] * r["K"], r["seconds_per_step"]) for r in measured(rows) if r["simulator"] == sim]
        slope = (exponents or {}).get(sim, {}).get("all_sizes", {}).get("exponent")
        label = sim + (" (per cue)" if sim.startswith("numpy_batched") else "")
        label += f", slope {slope:.2f}" if slope is not None else ""
        if sim == "naam" and naam_exponents:
            for key, name, fixed in (("in_N", "N", "K"), ("in_K", "K", "N")):
                fits = naam_exponents.get(key, {})
                if fits:
                    label += f"; in {name}, {fixed} fixed: " + "/".join(f"{f['exponent']:.2f}" for f in fits.values())
        # the limits black and thick; the GPU's rows dashed
        style = {"color": colours[index % len(colours)], "marker": markers[index // len(colours) % len(markers)],
                 "linestyle": "--" if sim.startswith(("cuda_standalone", "gpu_")) else "-"}
        if sim in ("matvec_limit", "gpu_matvec_limit"):
            style.update(color="black", linewidth=2.5, marker="o")
        # markers: every size; line: the geometric mean over the sizes with the same N K
        nks = sorted({p[0] for p in pts})
        means = [math.exp(np.mean([math.log(t) for nk_, t in pts if nk_ == nk])) for nk in nks]
        ax.plot(nks, means, label=label, linestyle=style["linestyle"], color=style["color"],
                linewidth=style.get("linewidth", 1.5), marker=style["marker"], markevery=[])
        ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle="none", marker=style["marker"],
                color=style["color"])
        line_colour = style["color"]
        if sim == "naam":
            for K in sorted({r["K"] for r in measured(rows) if r["simulator"] == sim}):
                at_K = sorted((r["N"] * r["K"], r["seconds_per_step"]) for r in measured(rows)
                              if r["simulator"] == sim and r["K"] == K)
                if len(at_K) > 1:
                    ax.plot([p[0] for p in at_K], [p[1] for p in at_K], ":", color=line_colour, linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N K (pattern matrix entries)")
    ax.set_ylabel("seconds per time step")
    gpu = any(r["simulator"].startswith(("cuda_standalone", "gpu_")) for r in measured(rows))
    ax.set_title("Time per step; matvec_limit = the two mat-vec products alone" + (" (dashed: on the GPU)" if gpu else ""))
    ax.grid(True, which="both", alpha=0.3)
    if measured(rows):  # outside the axes: inside, it covered the points at N K = 10^7
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    save_figure(fig, path, dpi=110, bbox_inches="tight")
    return path
