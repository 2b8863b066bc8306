"""Firing rate against u for the spiking neuron models alone: the check of rate = nu_max (1 + tanh(gamma u)) / 2.

Each neuron is the network's spiking neuron with u held fixed (u(0) = I_cue = u, no recurrent input, the
cue current on for the whole run, so du/dt = 0 exactly), counted for `duration`.
"""

from __future__ import annotations

import numpy as np

from astrogate.errors import InputError
from astrogate.models import spiking_equations as spk
from astrogate.models.parameters import Parameters
from astrogate.network import devices
from astrogate.network.memory import AstrocyteGatedMemory


def measure_firing_rates(u_values, neuron: str, spiking: spk.SpikingParameters | None = None, gamma: float = 3.0,
                         duration: float = 1000.0, dt: float = 0.1, target: str = "numpy") -> dict:
    """Spike counts of neurons held at u_values on the runtime device; rates in Hz.
    The neurons are those of the library's memory with the coupling off (kappa = 0: no recurrent input)."""
    import brian2 as b2

    if neuron not in spk.SPIKING:
        raise InputError(f"firing rates are measured for spiking neurons ({', '.join(spk.SPIKING)}), not {neuron!r}")
    spiking = spiking or spk.SpikingParameters()
    u = np.asarray(u_values, dtype=float)
    devices.activate(devices.check_device("runtime", target), dt)
    b2.seed(spiking.seed)
    # one all-ones pattern and beta = 0: the astrocytes are inert and I_rec = kappa (...) = 0 exactly
    memory = AstrocyteGatedMemory(np.ones((1, len(u))), Parameters(gamma=gamma, kappa=0.0, beta=0.0, dt=dt),
                                  neuron=neuron, spiking=spiking, record_every=duration, raster_neurons=0,
                                  name="rate_curve")
    memory.set_cue(u, scale=1.0, current=u, t_current=2 * duration)
    b2.Network(memory).run(duration * b2.ms, namespace={})
    counts = np.array(memory.monitors["spike_counts"].count[:])
    return {"u": u, "counts": counts, "rate_hz": counts / (duration * 1e-3),
            "target_hz": spk.target_rate(u, gamma, spiking.nu_max), "duration_ms": duration}
