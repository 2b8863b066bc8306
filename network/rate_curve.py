"""Firing rate against u for the spiking neuron models alone: the check of rate = nu_max (1 + tanh(gamma u)) / 2.

Each neuron is the network's spiking neuron with u held fixed (u(0) = I_cue = u, no recurrent input, the
cue current on for the whole run, so du/dt = 0 exactly), counted for `duration`.
"""

from __future__ import annotations

import numpy as np

from astrogate.errors import InputError
from astrogate.models import spiking_equations as spk
from astrogate.network import builder, devices


def measure_firing_rates(u_values, neuron: str, spiking: spk.SpikingParameters | None = None, gamma: float = 3.0,
                         duration: float = 1000.0, dt: float = 0.1, target: str = "numpy") -> dict:
    """Spike counts of neurons held at u_values on the runtime device; rates in Hz."""
    import brian2 as b2

    if neuron not in spk.SPIKING:
        raise InputError(f"firing rates are measured for spiking neurons ({', '.join(spk.SPIKING)}), not {neuron!r}")
    spiking = spiking or spk.SpikingParameters()
    spiking.check(neuron, dt)
    u = np.asarray(u_values, dtype=float)
    devices.activate(devices.check_device("runtime", target), dt)
    b2.seed(spiking.seed)
    neurons = b2.NeuronGroup(len(u), spk.neuron_equations(neuron), method="euler", name="neurons",
                             **spk.neuron_group_options(neuron))
    counter = b2.SpikeMonitor(neurons, record=False)
    for name, value in spk.neuron_values(spiking, neuron).items():
        setattr(neurons, name, value)
    neurons.gamma = gamma
    neurons.tau_u = 10 * b2.ms
    neurons.u = u
    neurons.I_cue = u
    neurons.t_cue_end = 2 * duration * b2.ms
    if neuron == "lif":
        V, since_spike = spk.lif_initial_state(u, gamma, spiking, dt)
        neurons.V = V * b2.mV
        neurons.lastspike = -since_spike * b2.ms
    b2.Network(neurons, counter).run(duration * b2.ms, namespace={})
    counts = np.array(counter.count[:])
    return {"u": u, "counts": counts, "rate_hz": counts / (duration * 1e-3),
            "target_hz": spk.target_rate(u, gamma, spiking.nu_max), "duration_ms": duration}
