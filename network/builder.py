"""Build the Brian2 network of models/brian2_equations.py for a pattern set.

The builder creates objects on the active device (network/devices.py activates one); everything that
may change between runs of one build (patterns, initial state, cue, parameters) is a group or synapse
variable, set through `state_values`, so a standalone project re-runs with run_args without recompiling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from astrogate.errors import InputError
from astrogate.models import brian2_equations as eq
from astrogate.models import spiking_equations as spk
from astrogate.models.parameters import Parameters
from astrogate.models.patterns import validate_patterns
from astrogate.network.parallel_sum import use_parallel_sums

NEURON_MODELS = spk.NEURON_MODELS
SLOT = "start"  # every derived quantity is computed here, before the 'groups' slot integrates u and a
# explicit order within SLOT: a step of the network is one forward-Euler step of the abstract model
ORDER = dict(rates=0, overlaps=1, wired_overlaps=2, numerators=3, normaliser=4, gains=5, lse=6, dense_weights=7,
             recurrent=8, wired_recurrent=9, energy=10, monitors=11)
NEURON_SAMPLE = 10  # neurons whose u and v are recorded
RASTER_NEURONS = 50  # spiking: the first neurons, whose every spike is recorded (all neurons' counts are)


@dataclass
class NetworkHandles:
    net: object  # brian2.Network
    neurons: object
    astrocytes: object
    hub: object
    synapses: dict  # name -> Synapses
    monitors: dict  # name -> StateMonitor
    N: int
    K: int
    gating: str
    params: Parameters  # resolved (beta explicit)
    neuron_sample: np.ndarray
    record_every: float  # ms between monitor samples
    neuron: str = "rate"
    spiking: spk.SpikingParameters | None = None  # None for rate neurons
    extra: dict = field(default_factory=dict)


def check_gating(gating: str, params: Parameters, xi: np.ndarray | None = None) -> None:
    if gating not in eq.GATINGS:
        raise InputError(f"unknown gating {gating!r}: use one of {', '.join(eq.GATINGS)}")
    if gating == "dense" and params.F.kind != "quadratic":
        raise InputError(f"dense gating is a Hebbian weight matrix and needs F quadratic, got {params.similarity!r}")
    if gating == "wired" and xi is not None and not np.all(np.abs(xi) == 1.0):
        raise InputError("wired gating makes a synapse wherever a pattern is +1 and needs patterns of +-1 entries "
                         "only: use factorised gating for real-valued patterns")


def build_network(patterns, params: Parameters, gating: str = "factorised", neuron: str = "rate",
                  record_every: float | None = None, neuron_sample: int = NEURON_SAMPLE,
                  monitor_energy: bool = True, spiking: spk.SpikingParameters | None = None,
                  raster_neurons: int = RASTER_NEURONS, weight_dtype=None,
                  overlap_layout: str = "by_neuron") -> NetworkHandles:
    """Groups, synapses, monitors and the Network for these patterns, on the active device.
    Call `apply_state` (runtime) or pass `state_values` as run_args (standalone) before running.
    Spiking neurons ('poisson', 'lif') take `spiking` (defaults if None); the Lyapunov function is
    not monitored for them (it is not one for a stochastic network).
    weight_dtype (for example numpy.float32): storage of the factorised gating weights, which dominate
    the memory traffic of a step; None keeps Brian2's float64 (the default, used for every comparison).
    overlap_layout: the order of the neurons -> astrocytes synapses, "by_pattern" (synapse mu*N + i) or
    "by_neuron" (synapse i*K + mu). Each m_mu sums its terms in the same order either way (same results);
    "by_neuron" sends consecutive synapses to different astrocytes, so the summed-variable loop does not
    wait on the previous addition to the same m_mu. "by_neuron" also creates both gating Synapses with
    Brian2's all-to-all connect() (pre-major order: i*K + mu here, mu*N + i for the output, as the arrays
    give), so no N K index arrays are built in Python or shipped to a standalone binary.
    gating "wired" (+-1 patterns): factorised gating with a weightless synapse wherever a pattern is +1
    (models/brian2_equations.py); the patterns are compiled into the build, the layout does not apply."""
    import brian2 as b2

    xi = validate_patterns(patterns)
    K, N = xi.shape
    params = params.resolved(N)
    check_gating(gating, params, xi)
    if overlap_layout not in ("by_pattern", "by_neuron"):
        raise InputError(f"unknown overlap_layout {overlap_layout!r}: use 'by_pattern' or 'by_neuron'")
    if neuron not in NEURON_MODELS:
        raise InputError(f"unknown neuron model {neuron!r}: use one of {', '.join(NEURON_MODELS)}")
    is_spiking = neuron in spk.SPIKING
    if is_spiking:
        spiking = spiking or spk.SpikingParameters()
        spiking.check(neuron, params.dt)
        monitor_energy = False
    else:
        spiking = None
    event_readout = is_spiking and spiking.readout == "event"
    wired = gating == "wired"
    if wired and event_readout:
        raise InputError("wired gating reads the neurons' rates v; use the trace readout with it, not 'event'")
    eq.network_parameters(params, N, K)  # checks the softmax range before anything is built
    record_every = params.dt if record_every is None else float(record_every)
    if record_every < params.dt:
        raise InputError(f"record_every must be at least dt = {params.dt} ms, got {record_every}")
    F = params.F

    neuron_equations = spk.neuron_equations(neuron) if is_spiking else eq.NEURON_EQUATIONS
    neuron_options = spk.neuron_group_options(neuron) if is_spiking else {}
    neurons = b2.NeuronGroup(N, neuron_equations + (eq.WIRED_NEURON_EQUATIONS if wired else ""), method="euler",
                             name="neurons", **neuron_options)
    astro_equations = (eq.astrocyte_equations(F) + (spk.EVENT_ASTROCYTE_EQUATIONS if event_readout else "")
                       + (eq.WIRED_ASTROCYTE_EQUATIONS if wired else ""))
    astrocytes = b2.NeuronGroup(K, astro_equations, method="euler", name="astrocytes")
    hub = b2.NeuronGroup(1, eq.HUB_EQUATIONS + (eq.WIRED_HUB_EQUATIONS if wired else ""), name="hub")
    astrocytes.lse = b2.linked_var(hub, "lse")
    astrocytes.Z = b2.linked_var(hub, "Z")
    if wired:
        astrocytes.v_total = b2.linked_var(hub, "v_total")
        neurons.h_total = b2.linked_var(hub, "h_total")

    def step(group, code, order):
        return group.run_regularly(code, when=SLOT, order=ORDER[order], name=f"{group.name}_{order}")

    operations = [
        # what the astrocytes see: tanh(gamma u), or the spikes' rate-coded estimate
        step(neurons, spk.READOUT_UPDATE if is_spiking else eq.RATE_UPDATE, "rates"),
        step(astrocytes, eq.NUMERATOR_UPDATE, "numerators"),
        step(astrocytes, eq.gain_update(F, gating), "gains"),
        step(hub, eq.LSE_UPDATE, "lse"),
    ]

    def summed(synapses, variable, order):
        updater = synapses.summed_updaters[variable]
        updater.when, updater.order = SLOT, ORDER[order]
        use_parallel_sums(updater)

    synapses = {}

    def hub_sum(group, equation, variable, order, name):
        """A population-wide sum into the one-element hub, O(size of the group) per step."""
        to_hub = b2.Synapses(group, hub, equation, name=name)
        to_hub.connect(i=np.arange(len(group)), j=np.zeros(len(group), dtype=int))
        summed(to_hub, variable, order)
        synapses[name] = to_hub

    def wired_half(source, target, plus, name, sum_on_plus, total, update, order):
        """One direction of wired gating: a weightless synapse source -> target on every +1 entry (`plus`:
        the (source, target) index pairs, source-major), the sum over them and the source's total into the hub,
        and the target's update that makes m or I_rec of the two (a sum over +1 entries is (total + x.v)/2)."""
        wiring = b2.Synapses(source, target, sum_on_plus[0], name=name)
        wiring.connect(i=plus[0], j=plus[1])
        summed(wiring, sum_on_plus[1], order)
        synapses[name] = wiring
        hub_sum(source, *total, order, f"{name}_total")
        operations.append(step(target, update, f"wired_{order}"))

    if wired:
        # (i, mu), neuron-major: consecutive synapses feed different astrocytes
        wired_half(neurons, astrocytes, np.nonzero(xi.T > 0), "overlap", (eq.WIRED_OVERLAP_SYNAPSE, "S_post"),
                   (eq.RATE_TOTAL_SYNAPSE, "v_total_post"), eq.WIRED_OVERLAP_UPDATE, "overlaps")
    elif event_readout:  # spikes jump the astrocytes' traces; m_hat is read from them where v fed m
        overlap = b2.Synapses(neurons, astrocytes, spk.EVENT_OVERLAP_SYNAPSE, on_pre=spk.EVENT_ON_SPIKE,
                              name="overlap")
        operations.append(step(astrocytes, spk.EVENT_OVERLAP_UPDATE, "overlaps"))
    else:
        overlap = b2.Synapses(neurons, astrocytes, eq.OVERLAP_SYNAPSE, name="overlap",
                              dtype=None if weight_dtype is None else {"weight": weight_dtype})
    if not wired:
        if overlap_layout == "by_pattern":
            overlap.connect(i=np.tile(np.arange(N), K), j=np.repeat(np.arange(K), N))  # synapse mu*N + i
        else:
            overlap.connect()  # all-to-all, pre-major: synapse i*K + mu
        if not event_readout:
            summed(overlap, "m_post", "overlaps")
        synapses["overlap"] = overlap
    hub_sum(astrocytes, eq.NORMALISER_SYNAPSE, "Z_post", "normaliser", "normaliser")
    if gating == "factorised":
        output = b2.Synapses(astrocytes, neurons, eq.OUTPUT_SYNAPSE, name="output",
                             dtype=None if weight_dtype is None else {"pattern": weight_dtype})
        if overlap_layout == "by_neuron":
            output.connect()  # all-to-all, pre-major: synapse mu*N + i
        else:
            output.connect(i=np.repeat(np.arange(K), N), j=np.tile(np.arange(N), K))  # synapse mu*N + i
        summed(output, "I_rec_post", "recurrent")
        synapses["output"] = output
    elif wired:
        # (mu, i), pattern-major: consecutive synapses feed different neurons
        wired_half(astrocytes, neurons, np.nonzero(xi > 0), "output", (eq.WIRED_OUTPUT_SYNAPSE, "T_post"),
                   (eq.OUTPUT_TOTAL_SYNAPSE, "h_total_post"), eq.WIRED_RECURRENT_UPDATE, "recurrent")
    else:
        recurrent = b2.Synapses(neurons, neurons, eq.DENSE_RECURRENT_SYNAPSE, name="recurrent")
        recurrent.connect(i=np.tile(np.arange(N), N), j=np.repeat(np.arange(N), N))  # synapse post*N + pre
        summed(recurrent, "I_rec_post", "recurrent")
        gate = b2.Synapses(astrocytes, recurrent, eq.DENSE_GATE_SYNAPSE, name="gate")
        gate.connect(i=np.repeat(np.arange(K), N * N), j=np.tile(np.arange(N * N), K))  # mu*N^2 + post*N + pre
        summed(gate, "W_post", "dense_weights")
        synapses.update(recurrent=recurrent, gate=gate)

    monitors = {}
    record_dt = record_every * b2.ms
    monitors["astrocytes"] = b2.StateMonitor(astrocytes, ["m", "g"], record=True, dt=record_dt, when=SLOT,
                                             order=ORDER["monitors"], name="astrocyte_monitor")
    sample = np.unique(np.linspace(0, N - 1, min(neuron_sample, N)).astype(int))
    monitors["neurons"] = b2.StateMonitor(neurons, ["u", "v"], record=sample, dt=record_dt, when=SLOT,
                                          order=ORDER["monitors"], name="neuron_monitor")
    if monitor_energy:
        # O(N + K) per step, small beside the O(N K) gating
        hub_sum(neurons, eq.NEURAL_ENERGY_SYNAPSE, "L_neural_post", "energy", "neural_energy")
        hub_sum(astrocytes, eq.astro_energy_synapse(F), "L_astro_post", "energy", "astro_energy")
        monitors["energy"] = b2.StateMonitor(hub, "L", record=0, dt=record_dt, when=SLOT,
                                             order=ORDER["monitors"], name="energy_monitor")

    if is_spiking:
        monitors["spike_counts"] = b2.SpikeMonitor(neurons, record=False, name="spike_counter")
        if raster_neurons > 0:
            monitors["raster"] = b2.SpikeMonitor(neurons[:min(raster_neurons, N)], name="raster")

    net = b2.Network(neurons, astrocytes, hub, *operations, *synapses.values(), *monitors.values())
    return NetworkHandles(net, neurons, astrocytes, hub, synapses, monitors, N, K, gating, params, sample,
                          record_every, neuron, spiking,
                          extra={"overlap_layout": overlap_layout, "wired_patterns": xi if wired else None})


def state_values(handles: NetworkHandles, patterns, u0, a0=None, current=None, t_current: float = 0.0,
                 params: Parameters | None = None, spiking: spk.SpikingParameters | None = None) -> dict:
    """Everything a run may change, as {(group, variable name): value with units}.
    patterns and params may differ from those of the build as long as K, N, F and dt stay the same;
    spiking parameters too, except the readout and the seed (compiled in)."""
    from brian2 import ms

    xi = validate_patterns(patterns)
    if xi.shape != (handles.K, handles.N):
        raise InputError(f"patterns: this network was built for K x N = {handles.K} x {handles.N}, got {xi.shape}")
    p = handles.params if params is None else params.resolved(handles.N)
    if p.similarity != handles.params.similarity or p.dt != handles.params.dt:
        raise InputError("similarity and dt are compiled into the network: build a new one to change them")
    check_gating(handles.gating, p, xi)
    wired = handles.extra.get("wired_patterns")
    if wired is not None and not np.array_equal(xi, wired):
        raise InputError("wired gating compiles the patterns into the network's synapses: build a new one to "
                         "change them (factorised gating takes new patterns without rebuilding)")
    values = eq.network_parameters(p, handles.N, handles.K)
    u0 = np.asarray(u0, dtype=float)
    a0 = np.zeros(handles.K) if a0 is None else np.asarray(a0, dtype=float)
    if u0.shape != (handles.N,) or a0.shape != (handles.K,):
        raise InputError(f"u0 and a0 must have lengths N = {handles.N} and K = {handles.K}")
    n, a, hub, syn = handles.neurons, handles.astrocytes, handles.hub, handles.synapses
    state = {(n, "u"): u0, (a, "a"): a0, (hub, "lse"): np.array([logsumexp(a0)])}
    state[(n, "I_cue")] = np.zeros(handles.N) if current is None else np.asarray(current, dtype=float)
    state[(n, "t_cue_end")] = cue_end(t_current, p.dt) * ms
    for name in eq.NEURON_PARAMETERS:
        state[(n, name)] = values[name]
    for name in eq.ASTROCYTE_PARAMETERS:
        state[(a, name)] = values[name]
    by_neuron = handles.extra.get("overlap_layout") == "by_neuron"
    if wired is not None:  # the patterns are the wiring; only N is a value
        state[(a, "n_neurons")] = float(handles.N)
    else:
        state[(syn["overlap"], "weight")] = (xi.T.ravel() if by_neuron else xi.ravel()) / handles.N
    if handles.gating == "factorised":
        state[(syn["output"], "pattern")] = xi.ravel()
    elif handles.gating == "dense":
        state[(syn["gate"], "coactivation")] = np.einsum("mi,mj->mij", xi, xi).ravel() / handles.N
    if handles.spiking is not None:
        state.update(spiking_state_values(handles, xi, u0, p, spiking or handles.spiking))
    return state


def spiking_state_values(handles: NetworkHandles, xi: np.ndarray, u0: np.ndarray, p: Parameters,
                         sp: spk.SpikingParameters) -> dict:
    """The readout starts at the rate of u(0) (spiking_equations explains why); LIF neurons start at
    uniformly random phases of their firing cycle at that rate, so that equal drives do not fire in lockstep."""
    from brian2 import Hz, ms, mV

    if (sp.readout, sp.seed) != (handles.spiking.readout, handles.spiking.seed):
        raise InputError("the readout and the seed are compiled into the network: build a new one to change them")
    sp.check(handles.neuron, p.dt)
    n, a = handles.neurons, handles.astrocytes
    state = {(n, name): value for name, value in spk.neuron_values(sp, handles.neuron).items()}
    r0 = spk.target_rate(u0, p.gamma, sp.nu_max)
    state[(n, "r")] = r0 * Hz
    state[(n, "expected")] = np.zeros(handles.N)
    if handles.neuron == "lif":
        V, since_spike = spk.lif_initial_state(u0, p.gamma, sp, p.dt)
        state[(n, "V")] = V * mV
        state[(n, "lastspike")] = -since_spike * ms
    if sp.readout == "event":
        state[(a, "nu_max")] = sp.nu_max * Hz
        state[(a, "tau_r")] = state[(n, "tau_r")]
        state[(a, "pattern_mean")] = xi.mean(axis=1)
        state[(a, "s")] = xi @ r0 / handles.N * Hz
    return state


def cue_end(t_current: float, dt: float) -> float:
    """A time between the last step with the cue on and the first without it: the abstract model applies
    the current at steps with step*dt < t_current; a midpoint makes the comparison in Brian2 round-off safe."""
    if t_current <= 0:
        return 0.0
    n_on = int(np.ceil(t_current / dt))  # the first step without the cue, up to round-off, fixed below
    while n_on * dt < t_current:
        n_on += 1
    while (n_on - 1) * dt >= t_current:
        n_on -= 1
    return (n_on - 0.5) * dt


def apply_state(state: dict) -> None:
    """Set the values on the groups (runtime; on standalone they become the build's defaults)."""
    for (group, name), value in state.items():
        setattr(group, name, value)


def run_args(state: dict) -> dict:
    """The same values as standalone run_args."""
    return {getattr(group, name): value for (group, name), value in state.items()}
