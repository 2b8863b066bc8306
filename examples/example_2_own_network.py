"""
Two memories in your own Brian2 network
=======================================

`ag.AstrocyteGatedMemory` is the network of neurons, astrocytes and gating synapses as one Brian2 object:
add it to your own `Network` with your own monitors, inputs and synapses. Every object's name starts with
the memory's `name`, so two memories live in one network; each runs on its own clock at its `params.dt`.

Both memories start from rest (u = 0, uniform gains) and get their cue as an input:

- ``timed``: a `TimedArray` current into the neurons' ``I_ext`` for the first `t_cue`, set each step by
  ``neurons.run_regularly("I_ext = stimulus(t, i)", when="before_groups")``;
- ``poisson``: a `PoissonGroup`, one input per neuron, firing at `input_rate` while t < `t_cue`, through our
  own `Synapses` that kick ``u`` by +-`w_input` with the sign of the cue's bit.

Our own `StateMonitor` objects record both memories' astrocytic gains g (and the ``I_ext`` of a few neurons), a
`SpikeMonitor` the Poisson input. Top: the inputs; bottom: the gains of both memories, which commit to their
target patterns while the cue is on.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from brian2 import (Hz, Network, PoissonGroup, SpikeMonitor, StateMonitor, Synapses, TimedArray, defaultclock, ms,
                    seed)

import astrogate as ag
from example_utils import example_size, save_figure

NAME = "example_2_own_network"

SIZES = {"full": dict(N=200, K=300, duration=40 * ms), "small": dict(N=30, K=20, duration=20 * ms)}
flip = 0.25  # fraction of the target's bits flipped in each cue
tau_u = 10 * ms  # neurons
tau_g = 20 * ms  # astrocytes
t_cue = 10 * ms  # both cues are on while t < t_cue
cue_current = 1.0  # amplitude of the TimedArray current (u relaxes towards it with tau_u)
input_rate = 2000 * Hz  # Poisson input's rate while the cue is on (each input stands for a population)
w_input = 0.05  # kick of u per input spike: u of about input_rate * w_input * tau_u = 1 while the cue is on
defaultclock.dt = 0.1 * ms  # the clock of our own objects (the memories keep theirs, params.dt)


def main(size="full"):
    N, K, duration = SIZES[size]["N"], SIZES[size]["K"], SIZES[size]["duration"]
    seed(2026)  # Brian2's random numbers: the Poisson input
    params = ag.Parameters(tau_u=tau_u, tau_g=tau_g)
    timed_problem = ag.generated_problem(K=K, N=N, flip=flip, seed=1)
    poisson_problem = ag.generated_problem(K=K, N=N, flip=flip, seed=2)
    timed = ag.AstrocyteGatedMemory(timed_problem.patterns, params, name="timed")
    poisson = ag.AstrocyteGatedMemory(poisson_problem.patterns, params, name="poisson")
    for memory in (timed, poisson):
        memory.set_cue(np.zeros(N))  # start from rest: the cue comes as an input

    # the TimedArray cue: one row per interval of length t_cue (the cue, then nothing)
    stimulus = TimedArray(cue_current * np.vstack([timed_problem.cue, np.zeros(N)]), dt=t_cue)
    timed.neurons.run_regularly("I_ext = stimulus(t, i)", when="before_groups")

    # the Poisson cue: input i kicks neuron i up or down with the sign of the cue's bit i
    poisson_input = PoissonGroup(N, rates="input_rate * int(t < t_cue)")
    kicks = Synapses(poisson_input, poisson.neurons, "w : 1", on_pre="u_post += w")
    kicks.connect(j="i")
    kicks.w = w_input * poisson_problem.cue

    # g (and I_ext) are set early in each step, from the state before its Euler step: recorded at the step's
    # end, the sample at time t is g(t) = softmax(a(t)) (in the default 'start' slot it would be one step late)
    timed_gains = StateMonitor(timed.astrocytes, "g", record=True, when="end")
    timed_current = StateMonitor(timed.neurons, "I_ext", record=range(5), when="end")
    poisson_gains = StateMonitor(poisson.astrocytes, "g", record=True, when="end")
    input_spikes = SpikeMonitor(poisson_input)
    network = Network(timed, poisson, poisson_input, kicks, timed_gains, timed_current, poisson_gains,
                      input_spikes)
    network.run(duration, namespace={"stimulus": stimulus, "input_rate": input_rate, "t_cue": t_cue})

    results = {}
    for memory, problem in ((timed, timed_problem), (poisson, poisson_problem)):
        state = memory.state()  # u, v, m, a, g after the run
        retrieved = int(np.argmax(state["m"]))
        target = problem.patterns[problem.target]
        results[memory.name] = {"target": problem.target, "retrieved": retrieved,
                                "exact_match": bool(np.array_equal(np.sign(state["v"]), target)),
                                "final_overlap": float(state["m"][problem.target]),
                                "target_gain": float(state["g"][problem.target])}
        print(f"{memory.name}: target {problem.target}, retrieved {retrieved}, "
              f"overlap {state['m'][problem.target]:.3f}, gain {state['g'][problem.target]:.3f}")
    results["input_spikes"] = int(input_spikes.num_spikes)
    results["samples"] = [len(timed_gains.t), len(poisson_gains.t)]

    figure, axes = plt.subplots(2, 2, sharex=True, figsize=(9, 5.5), layout="constrained")
    axes[0, 0].plot(timed_current.t / ms, timed_current.I_ext.T, lw=1)
    axes[0, 0].set(ylabel="$I_{ext}$ (5 neurons)", title='"timed": TimedArray current')
    axes[0, 1].plot(input_spikes.t / ms, input_spikes.i, "|", ms=2, color="k")
    axes[0, 1].set(ylabel="input neuron", title='"poisson": PoissonGroup kicks onto u')
    for column, (monitor, problem) in enumerate(((timed_gains, timed_problem), (poisson_gains, poisson_problem))):
        ax = axes[1, column]
        others = np.arange(K) != problem.target
        ax.plot(monitor.t / ms, monitor.g[others].T, color="0.6", lw=0.5)
        ax.plot(monitor.t / ms, monitor.g[problem.target], color="C3", lw=2, label=f"target ({problem.target})")
        ax.axvline(t_cue / ms, color="k", ls=":", lw=1)  # the cue ends
        ax.set(xlabel="t (ms)", ylabel="gain $g_\\mu$", ylim=(-0.02, 1.02))
        ax.legend(loc="center right")
    return results, figure


if __name__ == "__main__":
    size = example_size()
    results, figure = main(size)
    save_figure(figure, NAME, size)
