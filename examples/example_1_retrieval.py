"""
Retrieval in five lines
=======================

The shortest retrieval with astrogate: 400 patterns of 200 bits with pairwise correlation 0.4 (K = 2 N, far
beyond the classical Hopfield capacity 0.138 N, which correlation lowers further), and a cue with 20 % of the
target's bits flipped::

    import astrogate as ag
    problem = ag.generated_problem(K=400, N=200, correlation=0.4, flip=0.2, seed=0)
    result = ag.recall(problem)
    print(result.summary())

`ag.recall` runs the abstract model (forward Euler at dt = 0.1 ms) until it converges. The figure shows the
result's traces (`result.t`, `result.overlap_trace`, `result.gain_trace`, sampled logarithmically in time) for
the patterns of largest final overlap. The cue overlaps the target by 0.6 and, through the correlation, every
other pattern by about 0.6 x 0.4. With beta = 20 N the astrocytes' drive beta F(m) is large: their gains
commit to the target within a few steps (under a millisecond), and the neurons then follow it to overlap 1,
while the competitors keep the overlap that the correlation gives them.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import astrogate as ag
from example_utils import example_size, save_figure

NAME = "example_1_retrieval"

# the problem: patterns, correlation between them, fraction of the target's bits flipped in the cue
SIZES = {"full": dict(K=400, N=200), "small": dict(K=40, N=30)}
correlation = 0.4
flip = 0.2
seed = 0


def main(size="full"):
    problem = ag.generated_problem(**SIZES[size], correlation=correlation, flip=flip, seed=seed)
    result = ag.recall(problem)
    print(result.summary())

    figure, (ax_m, ax_g) = plt.subplots(2, 1, sharex=True, figsize=(6, 5), layout="constrained")
    t = np.maximum(result.t, result.t[1] / 2)  # t = 0 drawn on the log axis half a step before the next
    for column, pattern in enumerate(result.trace_patterns):
        is_target = pattern == problem.target
        style = dict(color="C3", lw=2, zorder=3, label=f"target ({pattern})") if is_target else \
            dict(color="0.6", lw=1, label="competitors" if column == 1 else None)
        ax_m.plot(t, result.overlap_trace[:, column], **style)
        ax_g.plot(t, result.gain_trace[:, column], **style)
    ax_m.set(ylabel="overlap $m_\\mu$", title=f"K = {result.K} patterns of N = {result.N} bits, correlation "
             f"{correlation:g};\ncue: {flip:.0%} of the target's bits flipped")
    ax_m.legend(loc="lower right")
    ax_g.axhline(1 / result.K, color="k", ls=":", lw=1)  # uniform gains, where the astrocytes start
    ax_g.set(xscale="log", xlabel="t (ms)", ylabel="gain $g_\\mu$")

    results = {"target": problem.target, "retrieved": result.retrieved, "exact_match": result.exact_match,
               "final_overlap": result.final_overlap, "cue_overlap": result.cue_overlap,
               "max_gain": result.max_gain, "t_converged": result.t_converged,
               "trace_patterns": list(result.trace_patterns)}
    return results, figure


if __name__ == "__main__":
    size = example_size()
    results, figure = main(size)
    save_figure(figure, NAME, size)
