"""
F linear: the fixed point is scaled dot-product attention
=========================================================

With the linear similarity F(m) = m, the model's fixed point is

    g* = softmax(beta m*) = softmax((beta / N) xi v*),     u* = kappa K xi^T g*

that is, scaled dot-product attention with the rates v* as the query and the stored patterns xi as both keys
and values (beta / N plays 1 / sqrt(d)). This script runs `ag.AstroGateModel` with
``Parameters(similarity="linear", beta=...)`` to convergence and computes the attention output from v* on its
own, with NumPy, without the model's functions. kappa = 1 / K makes the prefactor kappa K one, so u* is the
attention output itself.

Left: u* of the network against the attention output for three inverse temperatures (from weights spread
over many patterns to nearly one-hot). Middle: the astrocytes' gains g* against the attention weights, for the
middle beta. Right: how the gains approach softmax(beta m(t)) during the run.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import softmax

import astrogate as ag
from example_utils import example_size, save_figure

NAME = "example_5_attention"

SIZES = {"full": dict(N=64, K=16, duration=3000.0), "small": dict(N=24, K=6, duration=2000.0)}  # duration in ms
betas = (2.0, 4.0, 8.0)  # allocation inverse temperatures: weights spread, mixed, nearly one-hot
flip = 0.3  # the initial state: a pattern with 30 % of its bits flipped
tol = 1e-12  # run until max |du/dt| and max |da/dt| fall below this (1/ms)


def attention(query, keys, values, scale):
    """Scaled dot-product attention of one query: softmax(scale keys . query) . values, and the weights."""
    scores = scale * keys @ query
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    return weights @ values, weights


def main(size="full"):
    N, K, duration = SIZES[size]["N"], SIZES[size]["K"], SIZES[size]["duration"]
    problem = ag.generated_problem(K=K, N=N, flip=flip, seed=0)
    xi = problem.patterns

    runs = []
    for beta in betas:
        params = ag.Parameters(similarity="linear", beta=beta, kappa=1.0 / K)
        model = ag.AstroGateModel(xi, params)
        trajectory = model.run(problem.cue, duration=duration, tol=tol)
        u_star = trajectory.u
        v_star = np.tanh(params.gamma * u_star)
        output, weights = attention(v_star, keys=xi, values=xi, scale=beta / N)
        output *= params.kappa * K
        g_star = trajectory.gains[-1]
        # the astrocytes' distance from the softmax of their input during the run
        residual = np.max(np.abs(trajectory.gains - softmax(beta * trajectory.overlaps, axis=1)), axis=1)
        runs.append(dict(beta=beta, u=u_star, output=output, g=g_star, weights=weights, t=trajectory.t,
                         residual=residual, converged=bool(trajectory.converged),
                         distance=float(np.max(np.abs(u_star - output))),
                         gain_distance=float(np.max(np.abs(g_star - weights)))))
        print(f"beta = {beta:5.1f}: converged at {trajectory.t_converged:.0f} ms; largest attention weight "
              f"{weights.max():.3f}; max |u* - attention| = {runs[-1]['distance']:.1e}, "
              f"max |g* - weights| = {runs[-1]['gain_distance']:.1e}")

    figure, (ax_u, ax_g, ax_r) = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")
    for color, run in enumerate(runs):
        ax_u.plot(run["output"], run["u"], "o", ms=3, color=f"C{color}", label=f"$\\beta$ = {run['beta']:g}")
        t = np.maximum(run["t"], run["t"][1] / 2)  # t = 0 on the log axis
        ax_r.plot(t, run["residual"], color=f"C{color}", label=f"$\\beta$ = {run['beta']:g}")
    limits = [min(ax_u.get_xlim()[0], ax_u.get_ylim()[0]), max(ax_u.get_xlim()[1], ax_u.get_ylim()[1])]
    ax_u.plot(limits, limits, color="k", lw=0.8, zorder=0)
    ax_u.set(xlabel="attention output $\\kappa K\\, \\xi^T \\mathrm{softmax}((\\beta/N)\\, \\xi v^*)$",
             ylabel="network's $u^*$", title="neural fixed point")
    ax_u.legend()
    middle = runs[len(runs) // 2]
    order = np.arange(K)
    ax_g.bar(order, middle["weights"], color="0.8", label="attention weights")
    ax_g.plot(order, middle["g"], "o", color=f"C{len(runs) // 2}", label="astrocytes' $g^*$")
    ax_g.set(xlabel="pattern $\\mu$ (key)", ylabel="weight", title=f"gains, $\\beta$ = {middle['beta']:g}")
    ax_g.legend()
    ax_r.set(xscale="log", yscale="log", xlabel="t (ms)", ylabel="max$_\\mu$ |g - softmax($\\beta$ m)|",
             title="approach to the fixed point")
    ax_r.legend()
    results = {"betas": list(betas), "distance": [run["distance"] for run in runs],
               "gain_distance": [run["gain_distance"] for run in runs],
               "converged": [run["converged"] for run in runs],
               "largest_weight": [float(run["weights"].max()) for run in runs]}
    return results, figure


if __name__ == "__main__":
    size = example_size()
    results, figure = main(size)
    save_figure(figure, NAME, size)
