"""
Retrieval with spiking neurons (leaky integrate-and-fire)
=========================================================

With ``neuron="lif"`` the memory's neurons are leaky integrate-and-fire membranes whose firing rate is
nu_max (1 + tanh(gamma u)) / 2: only their spikes leave them. Each neuron's spikes feed a low-pass trace r_i
(time constant tau_r), and the astrocytes see the rate-coded estimate v_hat_i = 2 r_i / nu_max - 1 of the rates,
so their overlaps m_hat and gains are those of the rate model up to spike-count noise.

400 patterns of 200 bits, a weak cue (u(0) = 0.02 x cue, 30 % of the target's bits flipped): the rate-coded
overlap with the target grows over ~tau_r, the astrocytes' gains switch to it, and the neurons of the target's
-1 bits fall silent. Our own `SpikeMonitor` records every spike (the raster is ordered by the target's bits)
and our own `StateMonitor` the overlaps and gains of the target and of its closest competitors.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from brian2 import Hz, Network, SpikeMonitor, StateMonitor, ms

import astrogate as ag
from example_utils import example_size, save_figure

NAME = "example_4_spiking_lif"

# cue_scale: u(0) = cue_scale * cue, a weak cue, so that the retrieval takes a few tau_r (the small network's
# rate-coded overlaps are noisier: it starts from a stronger cue)
SIZES = {"full": dict(N=200, K=400, duration=100 * ms, cue_scale=0.02),
         "small": dict(N=40, K=20, duration=40 * ms, cue_scale=0.1)}
flip = 0.3  # fraction of the target's bits flipped in the cue
nu_max = 200 * Hz  # firing rate at tanh(gamma u) = 1
tau_r = 20 * ms  # the readout's time constant
tau_m = 10 * ms  # LIF membrane
t_ref = 2 * ms  # LIF refractory period (nu_max must stay below 1 / t_ref)
competitors = 5  # patterns besides the target whose overlap and gain are shown


def main(size="full"):
    N, K, duration, cue_scale = (SIZES[size][name] for name in ("N", "K", "duration", "cue_scale"))
    problem = ag.generated_problem(K=K, N=N, flip=flip, seed=0)
    memory = ag.AstrocyteGatedMemory(problem.patterns, neuron="lif", name="lif", nu_max=nu_max, tau_r=tau_r,
                                     tau_m=tau_m, t_ref=t_ref)
    memory.set_cue(problem.cue, scale=cue_scale)

    # the target and the patterns the cue overlaps most
    cue_overlaps = problem.patterns @ problem.cue / N
    others = [int(mu) for mu in np.argsort(-cue_overlaps) if mu != problem.target][:competitors]
    shown = [problem.target, *others]
    spikes = SpikeMonitor(memory.neurons)
    # m and g are computed early in each step from the state at its start: recorded at the step's end, the
    # sample at time t is m(t), g(t) (in the default 'start' slot it would be one step late)
    astrocytes = StateMonitor(memory.astrocytes, ["m", "g"], record=shown, when="end")
    network = Network(memory, spikes, astrocytes)
    network.run(duration, namespace={})  # every name the memory needs is its own variable

    state = memory.state()
    retrieved = int(np.argmax(state["m"]))
    target_bits = problem.patterns[problem.target]
    late = spikes.t > duration / 2  # rates over the second half, after the retrieval
    counts = np.bincount(spikes.i[late], minlength=N)
    rate = counts / float(duration / 2)  # Hz (duration in seconds)
    results = {"target": problem.target, "retrieved": retrieved,
               "exact_match": bool(np.array_equal(np.sign(state["v"]), target_bits)),
               "final_overlap": float(state["m"][problem.target]), "target_gain": float(state["g"][problem.target]),
               "rate_plus_hz": float(rate[target_bits > 0].mean()),
               "rate_minus_hz": float(rate[target_bits < 0].mean()),
               "spikes": int(spikes.num_spikes)}
    print(f"target {problem.target}, retrieved {retrieved}; rate-coded overlap {results['final_overlap']:.3f}, "
          f"gain {results['target_gain']:.3f}; second half: {results['rate_plus_hz']:.0f} Hz on the target's +1 bits, "
          f"{results['rate_minus_hz']:.1f} Hz on its -1 bits")

    # raster rows: the target's +1 bits first, then its -1 bits
    row_of_neuron = np.empty(N, dtype=int)
    row_of_neuron[np.argsort(-target_bits, kind="stable")] = np.arange(N)
    figure, (ax_raster, ax_m, ax_g) = plt.subplots(3, 1, sharex=True, figsize=(7, 7), layout="constrained",
                                                   height_ratios=(2, 1, 1))
    ax_raster.plot(spikes.t / ms, row_of_neuron[spikes.i], "|", color="k", ms=1.5)
    n_plus = int(np.sum(target_bits > 0))
    ax_raster.axhline(n_plus - 0.5, color="C3", lw=1)
    for middle, bit in ((n_plus / 2, "+1"), ((n_plus + N) / 2, "-1")):
        ax_raster.text(1.01, middle / N, f"target\n{bit}", transform=ax_raster.transAxes, va="center", color="C3")
    ax_raster.set(ylabel="neuron (ordered by the target's bits)", ylim=(-0.5, N - 0.5),
                  title=f"LIF neurons, K = {K}, N = {N}, cue {cue_scale:g} x ({flip:.0%} flipped)")
    for row, pattern in enumerate(shown):
        style = dict(color="C3", lw=2, label=f"target ({pattern})") if row == 0 else \
            dict(color="0.6", lw=1, label="closest competitors" if row == 1 else None)
        ax_m.plot(astrocytes.t / ms, astrocytes.m[row], **style)
        ax_g.plot(astrocytes.t / ms, astrocytes.g[row], **style)
    ax_m.set(ylabel="rate-coded overlap $\\hat m_\\mu$")
    ax_m.legend(loc="lower right")
    ax_g.set(xlabel="t (ms)", ylabel="gain $g_\\mu$", ylim=(-0.02, 1.02))
    return results, figure


if __name__ == "__main__":
    size = example_size()
    results, figure = main(size)
    save_figure(figure, NAME, size)
