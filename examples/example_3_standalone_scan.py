"""
A parameter scan on C++ standalone: build once, run many times
==============================================================

Brian2's C++ standalone device turns the network into a C++ program. With ``build_on_run=False`` the program is
built once and then run with `run_args`, which replace initial values and group variables run by run without
recompiling (as in Brian2's examples/standalone/standalone_multiplerun.py). Everything that may change between
runs of an `AstrocyteGatedMemory` (patterns, initial state, cue current, parameters such as beta, tau_u, tau_g)
is a group or synapse variable: ``memory.state_values(u0=..., params=...)`` collects the values of one run
and ``memory.run_args(...)`` hands them to ``device.run``.

The scan: 200 patterns of 100 bits with pairwise correlation 0.4, eight cues (25 % of a random target's bits
flipped), and the allocation inverse temperature beta from 0.1 N to 30 N: 64 runs of one build. Left: the
fraction of cues retrieved exactly (sign of the rates equal to the target in every bit) and of runs whose
largest gain is the target's; right: the final largest gain. Small beta leaves the gains spread over many
patterns: a classical Hopfield network far over its capacity. From beta ~ N on the gains commit to one pattern,
but at first often to a correlated competitor; only at beta ~ 10 N and above do the astrocytes pick the target
reliably (a run retrieves exactly when its largest gain is the target's). One run is checked against the
abstract model's forward Euler at the same dt (`ag.AstroGateModel`).
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from brian2 import Network, device, ms, set_device

import astrogate as ag
from example_utils import example_size, save_figure

NAME = "example_3_standalone_scan"

SIZES = {"full": dict(N=100, K=200, n_cues=8, beta_per_neuron=np.geomspace(0.1, 30, 8), duration=100 * ms),
         "small": dict(N=16, K=8, n_cues=2, beta_per_neuron=np.array([0.1, 30.0]), duration=10 * ms)}
correlation = 0.4  # between the stored patterns
flip = 0.25  # fraction of the target's bits flipped in each cue
pattern_seed = 0
cue_seed = 1


def main(size="full"):
    config = SIZES[size]
    N, K, duration = config["N"], config["K"], config["duration"]
    # the script builds by hand once the network is set up (below)
    set_device("cpp_standalone", build_on_run=False)

    params = ag.Parameters()
    patterns = ag.generated_problem(K=K, N=N, correlation=correlation, seed=pattern_seed).patterns
    rng = np.random.default_rng(cue_seed)
    targets = rng.integers(K, size=config["n_cues"])
    cues = patterns[targets] * np.where(rng.random((len(targets), N)) < flip, -1.0, 1.0)

    memory = ag.AstrocyteGatedMemory(patterns, params)
    memory.set_cue(cues[0])  # the build's defaults; every run below replaces them
    network = Network(memory)
    network.run(duration, namespace={})  # every name the memory needs is its own variable
    device.build(directory=None, run=False)  # compile once, in a temporary folder

    betas = config["beta_per_neuron"] * N
    retrieved = np.zeros((len(betas), len(cues)), dtype=bool)
    gain_on_target = np.zeros_like(retrieved)
    max_gain = np.zeros_like(retrieved, dtype=float)
    for row, beta in enumerate(betas):
        run_params = params.updated(beta=float(beta))
        for column, (cue, target) in enumerate(zip(cues, targets)):
            state = memory.state_values(u0=run_params.cue_scale * cue, params=run_params)
            device.run(run_args=memory.run_args(state))
            final = memory.state()
            retrieved[row, column] = np.array_equal(np.sign(final["v"]), patterns[target])
            gain_on_target[row, column] = np.argmax(final["g"]) == target
            max_gain[row, column] = final["g"].max()
        print(f"beta = {beta:8.1f}: {retrieved[row].sum()} of {len(cues)} cues retrieved, "
              f"mean largest gain {max_gain[row].mean():.3f}")

    # the last run against the abstract model's forward Euler, step for step
    model = ag.AstroGateModel(patterns, run_params)
    reference = model.run(cues[-1], duration=duration / ms, tol=0)
    difference = float(np.max(np.abs(final["u"] - reference.u)))
    print(f"last run: max |u_standalone - u_abstract| = {difference:.2e}")

    figure, (ax_retrieved, ax_gain) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
    ax_retrieved.plot(betas / N, retrieved.mean(axis=1), "o-", label="retrieved exactly")
    ax_retrieved.plot(betas / N, gain_on_target.mean(axis=1), "s--", mfc="none", label="largest gain on the target")
    ax_retrieved.legend(loc="upper left")
    ax_retrieved.set(xscale="log", xlabel="$\\beta$ / N", ylabel="fraction of cues", ylim=(-0.05, 1.05),
                     title=f"K = {K}, N = {N}, correlation {correlation:g}")
    ax_gain.plot(betas / N, max_gain.mean(axis=1), "o-", color="C1")
    ax_gain.axhline(1 / K, color="k", ls=":", lw=1)  # uniform gains
    ax_gain.set(xscale="log", xlabel="$\\beta$ / N", ylabel="final largest gain", ylim=(0, 1.05),
                title=f"{len(betas) * len(cues)} runs of one build")
    results = {"betas": betas.tolist(), "fraction_retrieved": retrieved.mean(axis=1).tolist(),
               "fraction_gain_on_target": gain_on_target.mean(axis=1).tolist(),
               "mean_max_gain": max_gain.mean(axis=1).tolist(), "runs": int(retrieved.size),
               "max_abs_difference_from_abstract": difference}
    return results, figure


if __name__ == "__main__":
    size = example_size()
    results, figure = main(size)
    save_figure(figure, NAME, size)
