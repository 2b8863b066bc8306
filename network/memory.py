"""The astrocyte-gated associative memory as one Brian2 object, used the way Brian2's own objects are.

    mem = AstrocyteGatedMemory(patterns, tau_u=10*ms)
    mem.set_cue(cue)
    monitor = StateMonitor(mem.astrocytes, "g", record=True)
    run(50*ms)                           # Brian2's magic run(); or net = Network(mem, monitor); net.run(50*ms)
    mem.state()["g"]                     # the gains after round(50 ms / dt) Euler steps

The memory is a Brian2 container the way a `Synapses` object contains its pathways and summed-variable
updaters: a `BrianObject` whose `contained_objects` are the neurons, the astrocytes, the one-element hub (the
softmax normaliser), the gating synapses, their per-step operations and monitors. So the magic `run()`,
`collect()`, `Network(mem)`, `net.add(mem)`, `net.remove(mem)` and `store()`/`restore()` treat it as one
object. Brian2's standalone devices (cpp_standalone, and brian2cuda's cuda_standalone, which copies that code)
collect the Synapses of a network from its top-level objects only (`net.objects`, in their `network_run`) to
declare their arrays and spike queues; the memory's `before_run`, which Brian2 calls for every object of the
network just before that collection, adds its contained Synapses to the device's set.

The memory creates no `Network`, never touches the device or the preferences, and runs on its own clock at
`params.dt`, whatever `defaultclock.dt` is. Its default name is Brian2's ``agm*``: the first memory is
``agm``, the next ``agm_1``, ...; every contained object's name starts with the memory's name, so several
memories live in one network.

The equations are those of models/brian2_equations.py (rate neurons) and models/spiking_equations.py
(Poisson and LIF neurons); one step of the network is one forward-Euler step of the abstract model
(`AstroGateModel`), computed in the 'start' slot in the explicit order of ORDER and integrated in 'groups'.
Every group and synapse set is sized from K and N alone (and indexed neuron- or pattern-major), so that a
later layout can give each object several memories' worth of elements.

A batch (patterns B x K x N) is B independent copies of the memory in these same objects, a parameter study
as one build and one run:

    mem = AstrocyteGatedMemory(patterns_BKN, beta=betas, tau_g=taus)    # one value per copy where they differ
    mem.set_cue(cues_BN)
    run(10*ms)
    mem.state()["g"]                     # B x K

Copy b owns neurons b*N .. (b+1)*N - 1, astrocytes b*K .. (b+1)*K - 1 and element b of the hub (each group
also has a `copy` index variable). Copies cannot interact: every synapse is made from explicit (i, j) arrays
that pair elements of one copy only, every population-wide sum (the softmax normaliser, the Lyapunov terms,
wired gating's totals) goes into the copy's own hub element and comes back through links indexed by copy,
and the per-step operations act element by element. The parameters become per-element variables (each copy's
value repeated over its elements) instead of shared ones, so run_args changes them copy by copy without
recompiling; they differ from one memory's arithmetic only in round-off (Brian2 hoists loop-invariant terms
of shared variables out of the loop, ~1e-16).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from astrogate.errors import InputError
from astrogate.machine import require_memory
from astrogate.models import checks
from astrogate.models import brian2_equations as eq
from astrogate.models import spiking_equations as spk
from astrogate.models.calcium import check_astrocyte_kind
from astrogate.models.checks import finite_number
from astrogate.models.parameters import PARAMETER_NAMES, Parameters
from astrogate.models.patterns import validate_cue, validate_patterns
from astrogate.models.units import argument_in_units, import_brian2
from astrogate.network.parallel_sum import use_parallel_sums

b2 = import_brian2()  # also from a Dask worker's thread

SLOT = "start"  # every derived quantity is computed here, before the 'groups' slot integrates u and a
# explicit order within SLOT: a step of the network is one forward-Euler step of the abstract model
ORDER = dict(rates=0, overlaps=1, wired_overlaps=2, numerators=3, normaliser=4, gains=5, lse=6, dense_weights=7,
             recurrent=8, wired_recurrent=9, energy=10, monitors=11)
NEURON_SAMPLE = 10  # neurons whose u and v are recorded (record_every given)
RASTER_NEURONS = 50  # spiking: the first neurons, whose every spike is recorded (all neurons' counts are)
METHODS = ("euler", "exponential_euler")
OVERLAP_LAYOUTS = ("by_pattern", "by_neuron")


@dataclass(frozen=True)
class NetworkSettings(checks.SettingsObject):
    """How the memory's network is built: the neuron model, the gating, the integration method, what is
    recorded and stored. Checked here, once, when made; `AstrocyteGatedMemory` and `Brian2Session` take one
    (or its fields as keywords). The fields are AstrocyteGatedMemory's parameters of the same names."""

    kind = "network setting"

    neuron: str = "rate"
    gating: str = "factorised"
    method: str = "euler"
    spiking: spk.SpikingParameters | None = None
    record_every: float | None = None  # ms (a Brian2 time is converted)
    energy: bool = True
    neuron_sample: int = NEURON_SAMPLE
    raster_neurons: int = RASTER_NEURONS
    weight_dtype: str | None = None
    overlap_layout: str = "by_neuron"

    def __post_init__(self):
        if self.spiking is not None:
            checks.instance(self.spiking, spk.SpikingParameters, "spiking", "a SpikingParameters")
        set_field = object.__setattr__
        set_field(self, "energy", checks.flag(self.energy, "energy"))
        set_field(self, "neuron_sample", checks.whole_number(self.neuron_sample, "neuron_sample", 1))
        set_field(self, "raster_neurons", checks.whole_number(self.raster_neurons, "raster_neurons", 0))
        if self.weight_dtype is not None:
            checks.one_of(self.weight_dtype, ("float32", "float64", np.float32, np.float64),
                          f"weight_dtype {checks.shown(self.weight_dtype)}")
        for option, value, choices in (("gating", self.gating, eq.GATINGS), ("method", self.method, METHODS),
                                       ("overlap_layout", self.overlap_layout, OVERLAP_LAYOUTS)):
            checks.one_of(value, choices, f"unknown {option} {checks.shown(value)}")
        spk.check_neuron_model(self.neuron)
        set_field(self, "record_every", checks.optional_duration(self.record_every, "record_every"))


def network_settings(settings: NetworkSettings | None, options: dict) -> NetworkSettings:
    """`settings` (the defaults if None) with the options that name its fields taken out of `options`."""
    if settings is not None:
        checks.instance(settings, NetworkSettings, "settings", "a NetworkSettings")
    fields = NetworkSettings.__dataclass_fields__
    return (settings or NetworkSettings()).changed(**{k: options.pop(k) for k in list(options) if k in fields})


def check_memory_name(name) -> None:
    """A memory's name: a Python identifier, optionally ending in '*' (it prefixes its Brian2 objects' names)."""
    if not isinstance(name, str) or not name.removesuffix("*").isidentifier():
        raise InputError(f"name must be a Python identifier, optionally ending in '*' (it prefixes the Brian2 objects' "
                         f"names), got {checks.shown(name)}")


def spiking_from_options(spiking: spk.SpikingParameters | None, options: dict) -> spk.SpikingParameters:
    """The spiking neurons' parameters: `spiking` or keywords (nu_max, tau_r, ...), not both."""
    if spiking is not None and options:
        raise InputError("give the spiking parameters either as `spiking` or as keywords, not both")
    try:
        return spiking or spk.SpikingParameters(**options)
    except TypeError:
        known = ", ".join(sorted(spk.SpikingParameters().to_dict()))
        raise InputError(f"unknown option(s) {', '.join(sorted(options))}: spiking options are {known}") from None


def _split_options(params: Parameters | None, options: dict) -> tuple[Parameters, dict]:
    """Keyword options that name model parameters, in astrogate's or the paper's names (tau_u=10*ms, beta=...,
    T=0.01, sigma=3) update `params`; the rest are the spiking neurons' (nu_max, tau_r, readout, seed, ...)."""
    params = params or Parameters()
    model = {k: v for k, v in options.items() if k in PARAMETER_NAMES}
    return (params.updated(**model) if model else params), {k: v for k, v in options.items() if k not in model}


class AstrocyteGatedMemory(b2.BrianObject):
    """The gated associative memory of the model page: N neurons, K astrocytes, a softmax hub and the
    gating synapses, as one Brian2 object that contains them (as a `Synapses` contains its pathways): the
    magic ``run()``, ``collect()``, ``Network(mem)``, ``net.add(mem)``, ``net.remove(mem)`` and
    ``store()``/``restore()`` take it as one object.

    Parameters
    ----------
    patterns : array (K, N), or a batch (B, K, N)
        The stored patterns, one per row (entries +-1, or real-valued; see `validate_patterns`). A batch (a
        B x K x N array, or a sequence of B arrays of one K x N) makes B independent copies of the memory in
        the same groups (the module's docstring says how they are kept apart): a study of B trials as one
        network.
    params : Parameters, optional
        Model parameters (defaults of the model page). Parameter names may also be given as keywords, in
        astrogate's names or the paper's (``T=0.01``, ``tau_p``, ``tau_x``, ``sigma``), with Brian2 units where
        a quantity is meant (``tau_u=10*ms``; plain numbers are in ms). For a batch, a keyword may be an
        array of one value per copy (``beta=[...]``, ``tau_g=np.array([...])*ms``; all but similarity and dt,
        which are compiled in).
    settings : NetworkSettings, optional
        How the network is built, as one object checked once: the fields neuron, gating, method, spiking,
        record_every, energy, neuron_sample, raster_neurons, weight_dtype, overlap_layout (below). Each may also
        be given as a keyword (``neuron="lif"``), which changes that field of `settings`.
    neuron : {"rate", "poisson", "lif"}
        Rate-coded neurons, or spiking neurons whose rate-coded readout the astrocytes see.
    gating : {"factorised", "wired", "dense"}
        How the astrocytes gate the connectivity: two N x K synapse sets (O(N K) per step, the default);
        weightless synapses wherever a +-1 pattern is +1 (patterns fixed at construction); or a gated N x N
        Hebbian matrix (F quadratic only, O(K N^2): a small-N cross-check).
    name : str
        The memory's name, the prefix of every contained object's name (``agm_neurons``, ``agm_astrocytes``,
        ...). The default ``agm*`` is Brian2's unique name: ``agm``, then ``agm_1``, ``agm_2``, ... for
        further memories; a name without ``*`` is used as given.
    record_every : float or Quantity, optional
        Time between samples of the memory's own monitors (ms, or a Brian2 time such as ``1*ms``): all m and
        g, u and v of a few neurons, the Lyapunov function L, spike counts. None (default) creates no
        monitors: attach your own.
    energy : bool
        Compute the Lyapunov function L in ``hub.L`` each step (rate neurons only; O(N + K)).
    method : {"euler", "exponential_euler"}
        Brian2's integration method for u and a.
    spiking : SpikingParameters, optional
        Spiking neuron parameters; also as keywords (``nu_max=100*Hz``, ``tau_r=20*ms``, ``readout``, ``seed``).
    neuron_sample, raster_neurons : int
        The neurons whose u and v the monitors record (NEURON_SAMPLE, spread over the N), and, for spiking
        neurons, the first neurons whose every spike is recorded (RASTER_NEURONS).
    weight_dtype : {None, "float32", "float64"}
        Storage of the factorised gating weights (None: Brian2's default, float64).
    overlap_layout : {"by_neuron", "by_pattern"}
        The order of the overlap synapses (the same sums; by_neuron is faster on most devices).
    astrocyte : {"replicator", "calcium"}
        The paper's replicator astrocytes (the default), or K calcium astrocytes (G-ChI dynamics, gains from a
        shared gliotransmitter pool; network/calcium.py's `CalciumGatedMemory`, whose `calcium` argument is a
        `CalciumSetup` or a dict of calcium parameters; docs/results/calcium.md).

    Attributes
    ----------
    batch : int or None
        B for a batch (every group then holds B copies: neurons B*N, astrocytes B*K, hub B; `state()`
        arrays have a leading B axis, `set_cue` takes B x N cues, `state_values` B x K x N patterns and a
        Parameters or one per copy), None for one memory.
    copy_params : tuple of Parameters or None
        A batch's resolved parameters, one per copy.
    neurons : NeuronGroup (N)
        ``u`` (state), ``v`` (rate, or the spikes' rate-coded estimate), ``I_rec`` (recurrent input),
        ``I_cue`` (cue current while ``t < t_cue_end``), ``I_ext`` (the user's input, 0 unless driven).
        Drive ``I_ext`` with ``neurons.run_regularly("I_ext = stimulus(t, i)", when="before_groups")`` for a
        TimedArray, or with your own Synapses onto ``u`` (``on_pre="u_post += w"``) for spikes.
    astrocytes : NeuronGroup (K)
        ``a`` (logits), ``g`` (gains softmax(a)), ``m`` (overlaps xi v / N), ``h`` (output to the neurons).
    hub : NeuronGroup (1)
        The softmax normaliser ``Z``, the log-sum-exp ``lse`` of the logits, and ``L`` when energy is on.
    synapses : dict of Synapses
        ``overlap`` (neurons -> astrocytes), ``output`` (astrocytes -> neurons, factorised), ``recurrent``
        and ``gate`` (dense), ``normaliser`` and the other sums into the hub.
    monitors : dict
        The memory's own monitors (empty unless record_every is given).
    N, K : int
    params : Parameters
        Resolved (beta explicit).

    Notes
    -----
    Your own monitors: the values derived from the state (v, m, g, h, I_rec, the hub's Z and L) are computed
    at the start of each step, before the Euler step; ``I_ext`` is set where your code sets it (``before_groups``
    above). A `StateMonitor` in its default 'start' slot records them one step late (and their initial zeros
    at t = 0); record them with ``when="end"`` to get the value at t for the sample at t (u and a, the state
    itself, in the default slot).

    The groups' parameters are their own variables (tau_u, tau_g, beta, gamma, nu_max, tau_r, ...): a name
    of your script that is the same makes Brian2 warn that it is ignored; pass ``namespace={...}`` to
    ``Network.run`` with what your own objects use.

    On a standalone device, ``device.run(run_args=mem.run_args(mem.state_values(patterns, u0, ...)))`` runs
    the build with other values; `state` reads m against ``mem.patterns`` and v with ``mem.params``, so set
    them to what the run used (as tests/test_memory.py does) before reading the state of such a run.
    """

    add_to_magic_network = True  # Brian2's magic run() and collect() find it in the calling scope

    def __new__(cls, *args, astrocyte: str = "replicator", **kwargs):
        """``astrocyte="calcium"`` makes the memory with calcium astrocytes (network/calcium.py's
        `CalciumGatedMemory`, a subclass that takes the same arguments and `calcium`)."""
        check_astrocyte_kind(astrocyte)
        if astrocyte == "calcium" and cls is AstrocyteGatedMemory:
            from astrogate.network.calcium import CalciumGatedMemory

            cls = CalciumGatedMemory
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, patterns, params: Parameters | None = None, settings: NetworkSettings | None = None, *,
                 name: str = "agm*", **options):
        from brian2.core.names import find_name

        options.pop("astrocyte", None)  # "replicator" here: __new__ has checked it
        if options.pop("calcium", None) is not None:
            raise InputError("calcium parameters need the calcium astrocytes: add astrocyte='calcium'")

        check_memory_name(name)
        # the arguments' types, before any Brian2 object is made
        if params is not None:
            checks.instance(params, Parameters, "params", "an astrogate Parameters")
        settings = network_settings(settings, options)
        neuron, gating, method, spiking = settings.neuron, settings.gating, settings.method, settings.spiking
        energy, record_every, overlap_layout = settings.energy, settings.record_every, settings.overlap_layout
        neuron_sample, raster_neurons, weight_dtype = (settings.neuron_sample, settings.raster_neurons,
                                                       settings.weight_dtype)
        shape = batch_shape(patterns)  # None for one memory
        batch = None if shape is None else shape[0]
        per_copy = _per_copy_options(options, patterns)
        if batch is not None:  # before any copy of the patterns is made
            require_memory(batch_bytes(*shape, gating), f"a batch of B = {batch} memories of K = {shape[1]} "
                                  f"astrocytes and N = {shape[2]} neurons ({gating} gating)")
        params, neuron_options = _split_options(params, options)
        xi = validate_patterns(patterns) if batch is None else pattern_batch(patterns)
        K, N = xi.shape[-2:]
        copy_params = None if batch is None else copy_parameters(params, batch, N, per_copy)
        params = params.resolved(N)
        for p in copy_params or (params,):
            check_gating(gating, p, xi)
        is_spiking = neuron in spk.SPIKING
        if is_spiking:
            spiking = spiking_from_options(spiking, neuron_options)
            spiking.check(neuron, params.dt)
            energy = False  # the Lyapunov function is not one for a stochastic network
        else:
            if spiking is not None or neuron_options:
                unknown = sorted(neuron_options) or ["spiking"]
                raise InputError(f"option(s) {', '.join(unknown)} need spiking neurons (neuron='poisson' or 'lif'), "
                                 f"not {neuron!r}")
            spiking = None
        event_readout = is_spiking and spiking.readout == "event"
        wired = gating == "wired"
        if wired and event_readout:
            raise InputError("wired gating reads the neurons' rates v; use the trace readout with it, not 'event'")
        for p in copy_params or (params,):
            eq.network_parameters(p, N, K)  # checks the softmax range before anything is built
        if record_every is not None and not record_every >= params.dt:
            raise InputError(f"record_every must be at least dt = {params.dt} ms, got {record_every}")

        name = find_name(name)  # the contained objects' names need it before BrianObject would resolve it
        clock = b2.Clock(dt=params.dt * b2.ms, name=f"{name}_clock")
        # every object of the memory runs on its clock: dt = params.dt
        super().__init__(clock=clock, when=SLOT, name=name)
        self.patterns = xi
        self.K, self.N = K, N
        self.params = params
        self.batch = batch  # None: one memory; else the number of copies B
        self.copies = 1 if batch is None else batch
        self.copy_params = copy_params  # a batch's resolved parameters, one per copy
        self.neuron = neuron
        self.gating = gating
        self.method = method
        self.spiking = spiking
        self.record_every = record_every
        self.overlap_layout = overlap_layout
        self.wired_patterns = xi if wired else None
        F = params.F

        neuron_equations = spk.neuron_equations(neuron) if is_spiking else eq.NEURON_EQUATIONS
        neuron_options_b2 = spk.neuron_group_options(neuron) if is_spiking else {}
        copies, per_element = self.copies, (lambda equations: equations) if batch is None else batched_equations
        self.neurons = b2.NeuronGroup(copies * N, per_element(neuron_equations + (eq.WIRED_NEURON_EQUATIONS
                                                                                  if wired else "")),
                                      method=method, clock=clock, name=f"{name}_neurons", **neuron_options_b2)
        astro_equations = (eq.astrocyte_equations(F) + (spk.EVENT_ASTROCYTE_EQUATIONS if event_readout else "")
                           + (eq.WIRED_ASTROCYTE_EQUATIONS if wired else ""))
        self.astrocytes = b2.NeuronGroup(copies * K, per_element(astro_equations), method=method, clock=clock,
                                         name=f"{name}_astrocytes")
        self.hub = b2.NeuronGroup(copies, eq.HUB_EQUATIONS + (eq.WIRED_HUB_EQUATIONS if wired else ""), clock=clock,
                                  name=f"{name}_hub")
        if batch is not None:  # which copy each element belongs to (for the user's monitors and conditions)
            self.neurons.copy = self._copy_of(self.neurons)
            self.astrocytes.copy = self._copy_of(self.astrocytes)
        self._link_to_hub(self.astrocytes, "lse")
        self._link_to_hub(self.astrocytes, "Z")
        if wired:
            self._link_to_hub(self.astrocytes, "v_total")
            self._link_to_hub(self.neurons, "h_total")
        self.synapses: dict = {}
        self.monitors: dict = {}
        self.operations: list = []
        ops = self.operations
        ops += [
            # what the astrocytes see: tanh(gamma u), or the spikes' rate-coded estimate
            self._step(self.neurons, spk.READOUT_UPDATE if is_spiking else eq.RATE_UPDATE, "rates"),
            self._step(self.astrocytes, eq.NUMERATOR_UPDATE, "numerators"),
            self._step(self.astrocytes, eq.gain_update(F, gating), "gains"),
            self._step(self.hub, eq.LSE_UPDATE, "lse"),
        ]
        neurons, astrocytes = self.neurons, self.astrocytes
        if wired:
            # (i, mu), neuron-major: consecutive synapses feed different astrocytes
            self._wired_half(neurons, astrocytes, self._plus_pairs(xi, neuron_major=True), "overlap",
                             (eq.WIRED_OVERLAP_SYNAPSE, "S_post"), (eq.RATE_TOTAL_SYNAPSE, "v_total_post"),
                             eq.WIRED_OVERLAP_UPDATE, "overlaps")
        elif event_readout:  # spikes jump the astrocytes' traces; m_hat is read from them where v fed m
            overlap = b2.Synapses(neurons, astrocytes, spk.EVENT_OVERLAP_SYNAPSE, on_pre=spk.EVENT_ON_SPIKE,
                                  clock=clock, name=f"{name}_overlap")
            ops.append(self._step(astrocytes, spk.EVENT_OVERLAP_UPDATE, "overlaps"))
        else:
            overlap = b2.Synapses(neurons, astrocytes, eq.OVERLAP_SYNAPSE, clock=clock, name=f"{name}_overlap",
                                  dtype=None if weight_dtype is None else {"weight": weight_dtype})
        if not wired:
            if overlap_layout == "by_pattern":
                overlap.connect(**self._within_copies(N, K, pre_major=False))  # synapse mu*N + i (in each copy)
            elif batch is None:
                overlap.connect()  # all-to-all, pre-major: synapse i*K + mu
            else:
                overlap.connect(**self._within_copies(N, K, pre_major=True))  # synapse b*N*K + i*K + mu
            if not event_readout:
                self._summed(overlap, "m_post", "overlaps")
            self.synapses["overlap"] = overlap
        self._hub_sum(astrocytes, eq.NORMALISER_SYNAPSE, "Z_post", "normaliser", "normaliser")
        if gating == "factorised":
            output = b2.Synapses(astrocytes, neurons, eq.OUTPUT_SYNAPSE, clock=clock, name=f"{name}_output",
                                 dtype=None if weight_dtype is None else {"pattern": weight_dtype})
            if overlap_layout == "by_neuron" and batch is None:
                output.connect()  # all-to-all, pre-major: synapse mu*N + i
            else:
                output.connect(**self._within_copies(K, N, pre_major=True))  # synapse b*K*N + mu*N + i
            self._summed(output, "I_rec_post", "recurrent")
            self.synapses["output"] = output
        elif wired:
            # (mu, i), pattern-major: consecutive synapses feed different neurons
            self._wired_half(astrocytes, neurons, self._plus_pairs(xi, neuron_major=False), "output",
                             (eq.WIRED_OUTPUT_SYNAPSE, "T_post"),
                             (eq.OUTPUT_TOTAL_SYNAPSE, "h_total_post"), eq.WIRED_RECURRENT_UPDATE, "recurrent")
        else:
            recurrent = b2.Synapses(neurons, neurons, eq.DENSE_RECURRENT_SYNAPSE, clock=clock,
                                    name=f"{name}_recurrent")
            recurrent.connect(**self._within_copies(N, N, pre_major=False))  # synapse post*N + pre (in each copy)
            self._summed(recurrent, "I_rec_post", "recurrent")
            gate = b2.Synapses(astrocytes, recurrent, eq.DENSE_GATE_SYNAPSE, clock=clock, name=f"{name}_gate")
            gate.connect(**self._within_copies(K, N * N, pre_major=True))  # mu*N^2 + post*N + pre (in each copy)
            self._summed(gate, "W_post", "dense_weights")
            self.synapses.update(recurrent=recurrent, gate=gate)
        self.energy = energy
        if energy:  # O(N + K) per step, small beside the O(N K) gating
            self._hub_sum(neurons, eq.NEURAL_ENERGY_SYNAPSE, "L_neural_post", "energy", "neural_energy")
            self._hub_sum(astrocytes, eq.astro_energy_synapse(F), "L_astro_post", "energy", "astro_energy")
        self.neuron_sample = np.unique(np.linspace(0, N - 1, min(neuron_sample, N)).astype(int))
        if record_every is not None:
            self._add_monitors(record_every, raster_neurons)
        self._state_set = False  # parameters, patterns and an initial state: set_cue or apply_state
        self.contained_objects.extend([self.neurons, self.astrocytes, self.hub, *self.operations,
                                       *self.synapses.values(), *self.monitors.values()])

    # -- as a Brian2 object -------------------------------------------------------------------------
    def before_run(self, run_namespace):
        """Refuse to run without a state; hand the contained Synapses to a standalone device."""
        if not self._state_set:
            raise InputError(f"{self.name}: no initial state; call set_cue(cue) (or apply_state) before running")
        # cpp_standalone and cuda_standalone take the Synapses to declare (arrays, spike queues) from the
        # network's top-level objects only, right after this call; Brian2's own containers hold none
        declared = getattr(b2.get_device(), "synapses", None)
        if isinstance(declared, set):
            declared.update(self.synapses.values())
        super().before_run(run_namespace)

    def _full_state(self):
        """What Network.store keeps of the memory itself (its objects store their own variables)."""
        return {"patterns": self.patterns.copy(), "state_set": self._state_set}

    def _restore_from_full_state(self, state):
        self.patterns = state["patterns"].copy()
        self._state_set = state["state_set"]

    # -- construction helpers ---------------------------------------------------------------------
    def _step(self, group, code, order):
        return group.run_regularly(code, when=SLOT, order=ORDER[order], name=f"{group.name}_{order}")

    @staticmethod
    def _summed(synapses, variable, order):
        updater = synapses.summed_updaters[variable]
        updater.when, updater.order = SLOT, ORDER[order]
        use_parallel_sums(updater)

    def _hub_sum(self, group, equation, variable, order, name):
        """A population-wide sum into the one-element hub, O(size of the group) per step."""
        to_hub = b2.Synapses(group, self.hub, equation, clock=self.clock, name=f"{self.name}_{name}")
        to_hub.connect(i=np.arange(len(group)), j=self._copy_of(group))  # each copy's sum into its own element
        self._summed(to_hub, variable, order)
        self.synapses[name] = to_hub

    def _copy_of(self, group) -> np.ndarray:
        """The copy index of each element of a group (copies are consecutive blocks of equal size)."""
        return np.repeat(np.arange(self.copies), len(group) // self.copies)

    def _link_to_hub(self, group, variable: str) -> None:
        """Link each element of `group` to its copy's element of the hub (the one element of one memory's)."""
        if self.batch is None:
            setattr(group, variable, b2.linked_var(self.hub, variable))
        else:
            setattr(group, variable, b2.linked_var(self.hub, variable, index=self._copy_of(group)))

    def _within_copies(self, n_pre: int, n_post: int, pre_major: bool) -> dict:
        """Synapses.connect's i and j for every pre-post pair inside each copy and none across copies: copy-major, then pre-major
        (synapse b n_pre n_post + i n_post + j) or post-major (b n_pre n_post + j n_pre + i)."""
        copies = self.copies
        if pre_major:
            i, j = np.repeat(np.arange(n_pre), n_post), np.tile(np.arange(n_post), n_pre)
        else:
            i, j = np.tile(np.arange(n_pre), n_post), np.repeat(np.arange(n_post), n_pre)
        offset = np.repeat(np.arange(copies), n_pre * n_post)
        return dict(i=np.tile(i, copies) + offset * n_pre, j=np.tile(j, copies) + offset * n_post)

    def _plus_pairs(self, xi: np.ndarray, neuron_major: bool) -> tuple[np.ndarray, np.ndarray]:
        """Wired gating's (source, target) pairs on the +1 entries, neuron -> astrocyte (neuron-major) or
        astrocyte -> neuron (pattern-major), inside each copy."""
        if self.batch is None:
            return np.nonzero(xi.T > 0) if neuron_major else np.nonzero(xi > 0)
        if neuron_major:
            b, i, mu = np.nonzero(xi.transpose(0, 2, 1) > 0)
            return b * self.N + i, b * self.K + mu
        b, mu, i = np.nonzero(xi > 0)
        return b * self.K + mu, b * self.N + i

    def _wired_half(self, source, target, plus, name, sum_on_plus, total, update, order):
        """One direction of wired gating: a weightless synapse source -> target on every +1 entry (`plus`:
        the (source, target) index pairs, source-major), the sum over them and the source's total into the
        hub, and the target's update that makes m or I_rec of the two (a sum over +1 entries is (total + x.v)/2)."""
        wiring = b2.Synapses(source, target, sum_on_plus[0], clock=self.clock, name=f"{self.name}_{name}")
        wiring.connect(i=plus[0], j=plus[1])
        self._summed(wiring, sum_on_plus[1], order)
        self.synapses[name] = wiring
        self._hub_sum(source, *total, order, f"{name}_total")
        self.operations.append(self._step(target, update, f"wired_{order}"))

    def _add_monitors(self, record_every: float, raster_neurons: int) -> None:
        record_dt = record_every * b2.ms
        when = dict(dt=record_dt, when=SLOT, order=ORDER["monitors"])
        self.monitors["astrocytes"] = b2.StateMonitor(self.astrocytes, ["m", "g"], record=True,
                                                      name=f"{self.name}_astrocyte_monitor", **when)
        # a batch records the same sample of neurons in every copy (copy-major)
        sampled = (self.neuron_sample[None, :] + self.N * np.arange(self.copies)[:, None]).ravel()
        self.monitors["neurons"] = b2.StateMonitor(self.neurons, ["u", "v"], record=sampled,
                                                   name=f"{self.name}_neuron_monitor", **when)
        if self.energy:
            self.monitors["energy"] = b2.StateMonitor(self.hub, "L", record=0 if self.batch is None else True,
                                                      name=f"{self.name}_energy_monitor", **when)
        if self.spiking is not None:
            self.monitors["spike_counts"] = b2.SpikeMonitor(self.neurons, record=False,
                                                            name=f"{self.name}_spike_counter")
            if raster_neurons > 0:
                self.monitors["raster"] = b2.SpikeMonitor(self.neurons[:min(raster_neurons, self.N)],
                                                          name=f"{self.name}_raster")

    # -- the state ---------------------------------------------------------------------------------
    def state_values(self, patterns=None, u0=None, a0=None, current=None, t_current: float = 0.0,
                     params: Parameters | None = None, spiking: spk.SpikingParameters | None = None) -> dict:
        """Everything a run may change, as {(group, variable name): value with units}: the patterns, the
        initial state u0 (N) and a0 (K, default 0), a cue current (N) applied while t < t_current (ms, or a
        Brian2 time) and
        the parameters. `apply_state` sets them; `run_args` gives them as standalone run_args."""
        if self.batch is not None:
            return batch_state_values(self, self.patterns if patterns is None else patterns,
                                      np.zeros((self.batch, self.N)) if u0 is None else u0, a0, current, t_current,
                                      params, spiking)
        return state_values(self, self.patterns if patterns is None else patterns,
                                    np.zeros(self.N) if u0 is None else u0, a0, current, t_current, params, spiking)

    def apply_state(self, state: dict) -> None:
        """Set the values of `state_values` on the groups (on standalone devices they become the build's
        defaults, which run_args can replace run by run)."""
        apply_state(state)
        self._state_set = True

    @staticmethod
    def run_args(state: dict) -> dict:
        """The values of `state_values` as standalone run_args (``device.run(run_args=...)``)."""
        return run_args(state)

    def set_cue(self, cue, scale: float | None = None, current=None, t_current: float = 0.0) -> None:
        """Start from a cue, as the abstract model does: u(0) = scale * cue (scale defaults to
        params.cue_scale) and uniform gains (a(0) = 0). Optionally also a cue current (N) while t < t_current (ms,
        or a Brian2 time).
        Call before a run (after one, it restarts the state; the network's time goes on)."""
        cue = validate_cue(cue, self.N)
        if self.batch is not None:
            if cue.shape != (self.batch, self.N):
                raise InputError(f"cue: expected one cue per copy, B x N = {self.batch} x {self.N}, got shape "
                                 f"{cue.shape}")
            if scale is None:  # each copy's cue_scale
                scale = np.array([p.cue_scale for p in self.copy_params])[:, None]
        elif cue.ndim != 1:
            raise InputError(f"cue: expected one cue of length N = {self.N}, got shape {cue.shape}")
        scale = self.params.cue_scale if scale is None else scale
        if not np.all(np.isfinite(scale)):
            raise InputError(f"cue scale must be a finite number, got {scale!r}")
        self.apply_state(self.state_values(u0=scale * cue, current=current, t_current=t_current))

    def set_patterns(self, patterns) -> None:
        """Load a new pattern set of the same K x N (factorised or dense gating; wired gating compiles its
        patterns into the synapses). The neurons' and astrocytes' state is left as it is."""
        if self.batch is not None:
            xi = pattern_batch(patterns)
            values = batch_state_values(self, xi, np.asarray(self.neurons.u[:]).reshape(self.batch, self.N),
                                        np.asarray(self.astrocytes.a[:]).reshape(self.batch, self.K))
        else:
            xi = validate_patterns(patterns)
            values = state_values(self, xi, np.asarray(self.neurons.u[:]), np.asarray(self.astrocytes.a[:]))
        state = {key: value for key, value in values.items()
                 if key[1] in ("weight", "pattern", "coactivation", "pattern_mean")}
        apply_state(state)
        self.patterns = xi

    def state(self) -> dict:
        """The current state as arrays: u (N), v (N), m (K), a (K), g (K).
        v = tanh(gamma u) for rate neurons (the spiking neurons' rate-coded estimate for spiking ones),
        m = xi v / N, g = softmax(a): computed from u and a, with the gain and patterns the network ran with
        (`network_patterns`), so after net.run(T) they are those of the state after round(T / dt) Euler
        steps, equal to the abstract model's."""
        from scipy.special import softmax

        if self.batch is not None:
            return self._batch_state()
        u = np.array(self.neurons.u[:])
        a = np.array(self.astrocytes.a[:])
        if self.spiking is None:  # with the gain the network ran with (run_args may have replaced it)
            v = np.tanh(float(np.asarray(self.neurons.gamma[:]).ravel()[0]) * u)
        else:
            v = np.array(self.neurons.v[:])
        return {"u": u, "v": v, "m": v @ self.network_patterns().T / self.N, "a": a, "g": softmax(a)}

    def _batch_state(self) -> dict:
        """state() of a batch: each copy's arrays computed as one memory's are, stacked on a leading B axis."""
        from scipy.special import softmax

        B, N, K = self.batch, self.N, self.K
        u = np.array(self.neurons.u[:]).reshape(B, N)
        a = np.array(self.astrocytes.a[:]).reshape(B, K)
        if self.spiking is None:
            gamma = np.asarray(self.neurons.gamma[:], dtype=float).reshape(B, N)[:, 0]
            v = np.stack([np.tanh(gamma[b] * u[b]) for b in range(B)])
        else:
            v = np.array(self.neurons.v[:]).reshape(B, N)
        xi = self.network_patterns()
        m = np.stack([v[b] @ xi[b].T / N for b in range(B)])
        return {"u": u, "v": v, "m": m, "a": a, "g": np.stack([softmax(a[b]) for b in range(B)])}

    def network_patterns(self) -> np.ndarray:
        """The K x N patterns in the network's overlap weights (xi / N), i.e. those of the last run, also
        when a standalone run's run_args loaded other patterns; wired gating's are compiled in. A batch's
        are B x K x N."""
        if self.wired_patterns is not None:
            return self.wired_patterns
        w = np.asarray(self.synapses["overlap"].weight[:], dtype=float) * self.N
        if self.batch is not None:
            w = w.reshape(self.batch, -1)
            return (w.reshape(self.batch, self.N, self.K).transpose(0, 2, 1) if self.overlap_layout == "by_neuron"
                    else w.reshape(self.batch, self.K, self.N))
        return w.reshape(self.N, self.K).T if self.overlap_layout == "by_neuron" else w.reshape(self.K, self.N)

    def __repr__(self):
        copies = "" if self.batch is None else f"B={self.batch}, "
        return (f"AstrocyteGatedMemory({copies}K={self.K}, N={self.N}, neuron={self.neuron!r}, gating={self.gating!r}, "
                f"name={self.name!r})")


# -- the values of a built memory -------------------------------------------------------------------
# Everything that may change between runs of one build (patterns, initial state, cue, parameters) is a group
# or synapse variable, so a standalone project re-runs with run_args without recompiling.

def check_gating(gating: str, params: Parameters, xi: np.ndarray | None = None) -> None:
    if gating not in eq.GATINGS:
        raise InputError(f"unknown gating {gating!r}: use one of {', '.join(eq.GATINGS)}")
    if gating == "dense" and params.F.kind != "quadratic":
        raise InputError(f"dense gating is a Hebbian weight matrix and needs F quadratic, got {params.similarity!r}")
    if gating == "wired" and xi is not None and not np.all(np.abs(xi) == 1.0):
        raise InputError("wired gating makes a synapse wherever a pattern is +1 and needs patterns of +-1 entries "
                         "only: use factorised gating for real-valued patterns")


# -- a batch of independent copies in one network ----------------------------------------------------
# B copies of the memory share each group (copy b owns neurons b*N .. b*N + N - 1, astrocytes b*K ..
# b*K + K - 1 and hub element b). Copies cannot interact: every synapse joins two elements of one copy (the
# (i, j) arrays of _within_copies and _plus_pairs are built per copy), every population-wide sum goes into
# the copy's own hub element (j = copy index) and is read back through links indexed by copy, and the
# per-step operations act on each element alone. The parameters are per-element variables (one value per
# copy, repeated over its elements), so run_args changes them copy by copy without recompiling.
PER_COPY_FIXED = ("similarity", "dt")  # compiled into the network: one value for all copies


def batch_shape(patterns) -> tuple[int, int, int] | None:
    """(B, K, N) of a batch of pattern sets (a B x K x N array, or a sequence of B arrays of K x N), None for
    one K x N set. A ragged batch and an empty one (B = 0) are refused."""
    if isinstance(patterns, np.ndarray):
        shape = patterns.shape
    elif isinstance(patterns, (list, tuple)) and len(patterns) > 0:
        try:
            shapes = [np.shape(p) for p in patterns]
        except ValueError:  # ragged inside one pattern set: validate_patterns names it
            return None
        if not all(len(shape) == 2 for shape in shapes):
            return None
        if len(set(shapes)) > 1:
            raise InputError(f"patterns: a ragged batch, pattern sets of shapes {', '.join(map(str, sorted(set(shapes))))}: "
                             f"every copy needs the same K x N (group the sets by size)")
        shape = (len(patterns), *shapes[0])
    else:
        return None
    if len(shape) != 3:
        return None
    if shape[0] == 0:
        raise InputError(f"patterns: a batch of B = 0 pattern sets (shape {shape}): give at least one")
    return shape


def pattern_batch(patterns) -> np.ndarray:
    """A B x K x N float64 batch, each copy's set checked and normalised as one memory's (validate_patterns)."""
    shape = batch_shape(patterns)
    if shape is None:
        raise InputError(f"patterns: expected a batch of pattern sets, B x K x N, got shape {np.shape(patterns)}")
    return np.stack([validate_patterns(patterns[b], f"patterns[{b}]") for b in range(shape[0])])


def batch_bytes(B: int, K: int, N: int, gating: str = "factorised") -> int:
    """Rough peak host bytes of a batch of B copies: each copy's network (network_bytes) and its checked,
    normalised pattern set (float64 copies)."""
    from astrogate.models.patterns import PATTERN_COPIES

    return B * (network_bytes(K, N, gating) + 8 * PATTERN_COPIES * K * N)


def network_bytes(K: int, N: int, gating: str = "factorised") -> int:
    """Rough peak host bytes of building and running the network: about 110 bytes per neuron-astrocyte pair
    (two Synapses objects of N K synapses, indices and weights, measured by the speed benchmark), N^2 pairs
    for dense gating."""
    return 110 * N * N if gating == "dense" else 110 * N * K


def _per_copy_options(options: dict, patterns) -> dict:
    """Remove from `options` the model parameters given as one value per copy (arrays of length B) and
    return them as {name: [value of copy 0, ...]}."""
    shape = None
    per_copy = {}
    for name in [k for k in options if k in PARAMETER_NAMES]:
        value = options[name]
        if isinstance(value, str) or np.ndim(value) == 0:
            continue
        options.pop(name)
        shape = shape or batch_shape(patterns)
        if shape is None:
            raise InputError(f"{name}: one value per copy needs a batch of pattern sets (B x K x N patterns); one "
                             f"memory takes a single value, got shape {np.shape(value)}")
        if name in PER_COPY_FIXED:
            raise InputError(f"{name} is compiled into the network: give one value for all copies, not one per copy")
        if np.ndim(value) != 1 or len(value) != shape[0]:
            raise InputError(f"{name}: expected one value per copy (length B = {shape[0]}), got shape "
                             f"{np.shape(value)}")
        per_copy[name] = [value[b] for b in range(shape[0])]
    return per_copy


def copy_parameters(params: Parameters, B: int, N: int, per_copy: dict | None = None) -> tuple:
    """The B copies' resolved Parameters: `params` with each copy's values of `per_copy`."""
    if not per_copy:
        return (params.resolved(N),) * B
    return tuple(params.updated(**{name: values[b] for name, values in per_copy.items()}).resolved(N)
                 for b in range(B))


def batched_equations(equations: str) -> str:
    """A group's equations for a batch: the parameters one value per element (a copy's value repeated over
    its elements) instead of one shared value, and the copy index."""
    return equations.replace("(shared, constant)", "(constant)") + \
        "\ncopy                    : integer (constant)  # the copy this element belongs to\n"


def _per_element(values: list, n: int):
    """One value per copy (numbers, or Brian2 quantities of one unit) repeated over the copy's n elements."""
    import brian2

    si = np.repeat(np.array([float(np.asarray(v)) for v in values]), n)  # Brian2 keeps quantities in SI
    dim = getattr(values[0], "dim", None)
    return si if dim is None else brian2.Quantity(si, dim=dim)


def _batch_parameters(handles: "AstrocyteGatedMemory", params) -> tuple:
    B, N = handles.batch, handles.N
    if params is None:
        return handles.copy_params
    if isinstance(params, Parameters):
        return (params.resolved(N),) * B
    if isinstance(params, (list, tuple)) and len(params) == B and all(isinstance(p, Parameters) for p in params):
        return tuple(p.resolved(N) for p in params)
    raise InputError(f"params: expected a Parameters (every copy) or a sequence of B = {B} Parameters (one per "
                     f"copy), got {checks.shown(params)}")


def _check_without_rebuild(handles, p, xi) -> None:
    """Parameters p and patterns xi that the built network can take through its variables (run_args): similarity,
    dt and wired patterns are compiled in."""
    if p.similarity != handles.params.similarity or p.dt != handles.params.dt:
        raise InputError("similarity and dt are compiled into the network: build a new one to change them")
    check_gating(handles.gating, p, xi)
    wired = handles.wired_patterns
    if wired is not None and not np.array_equal(xi, wired):
        raise InputError("wired gating compiles the patterns into the network's synapses: build a new one to "
                         "change them (factorised gating takes new patterns without rebuilding)")


def batch_state_values(handles: "AstrocyteGatedMemory", patterns, u0, a0=None, current=None,
                       t_current: float = 0.0, params=None, spiking: spk.SpikingParameters | None = None) -> dict:
    """state_values of a batch: patterns B x K x N, u0, current B x N, a0 B x K, params a Parameters or one per
    copy; each copy's values are those state_values gives one memory, concatenated copy-major."""
    from brian2 import Hz, ms

    t_current = finite_number(argument_in_units(t_current, "ms", "t_current"), "t_current (ms)")
    B, K, N = handles.batch, handles.K, handles.N
    xi = pattern_batch(patterns)
    if xi.shape != (B, K, N):
        raise InputError(f"patterns: this network was built for B x K x N = {B} x {K} x {N}, got {xi.shape}")
    copy_params = _batch_parameters(handles, params)
    for p in copy_params:
        _check_without_rebuild(handles, p, xi)
    values = [eq.network_parameters(p, N, K) for p in copy_params]
    u0 = np.asarray(u0, dtype=float)
    a0 = np.zeros((B, K)) if a0 is None else np.asarray(a0, dtype=float)
    if u0.shape != (B, N) or a0.shape != (B, K):
        raise InputError(f"u0 and a0 must have shapes B x N = {B} x {N} and B x K = {B} x {K}, got {u0.shape} and "
                         f"{a0.shape}")
    n, a, hub, syn = handles.neurons, handles.astrocytes, handles.hub, handles.synapses
    state = {(n, "u"): u0.ravel(), (a, "a"): a0.ravel(), (hub, "lse"): np.array([logsumexp(row) for row in a0])}
    if current is None:
        state[(n, "I_cue")] = np.zeros(B * N)
    else:
        current = np.asarray(current, dtype=float)
        if current.shape != (B, N):
            raise InputError(f"current: expected B x N = {B} x {N}, got shape {current.shape}")
        state[(n, "I_cue")] = current.ravel()
    state[(n, "t_cue_end")] = np.full(B * N, cue_end(t_current, handles.params.dt)) * ms
    for name in eq.NEURON_PARAMETERS:
        state[(n, name)] = _per_element([v[name] for v in values], N)
    for name in eq.ASTROCYTE_PARAMETERS:
        state[(a, name)] = _per_element([v[name] for v in values], K)
    if handles.wired_patterns is not None:
        state[(a, "n_neurons")] = np.full(B * K, float(N))
    else:
        by_neuron = handles.overlap_layout == "by_neuron"
        state[(syn["overlap"], "weight")] = (xi.transpose(0, 2, 1).ravel() if by_neuron else xi.ravel()) / N
    if handles.gating == "factorised":
        state[(syn["output"], "pattern")] = xi.ravel()
    elif handles.gating == "dense":
        state[(syn["gate"], "coactivation")] = np.einsum("bmi,bmj->bmij", xi, xi).ravel() / N
    if handles.spiking is not None:
        sp = spiking or handles.spiking
        if (sp.readout, sp.seed) != (handles.spiking.readout, handles.spiking.seed):
            raise InputError("the readout and the seed are compiled into the network: build a new one to change them")
        sp.check(handles.neuron, handles.params.dt)
        for name, value in spk.neuron_values(sp, handles.neuron).items():
            state[(n, name)] = _per_element([value] * B, N)
        gamma = np.array([p.gamma for p in copy_params])[:, None]
        r0 = spk.target_rate(u0, gamma, sp.nu_max)  # B x N
        state[(n, "r")] = r0.ravel() * Hz
        state[(n, "expected")] = np.zeros(B * N)
        if handles.neuron == "lif":
            from brian2 import mV

            V, since_spike = spk.lif_initial_state(u0, gamma, sp, handles.params.dt)
            state[(n, "V")] = V.ravel() * mV
            state[(n, "lastspike")] = -since_spike.ravel() * ms
        if sp.readout == "event":
            state[(a, "nu_max")] = np.full(B * K, sp.nu_max) * Hz
            state[(a, "tau_r")] = np.full(B * K, sp.tau_r) * ms
            state[(a, "pattern_mean")] = xi.mean(axis=2).ravel()
            state[(a, "s")] = np.einsum("bki,bi->bk", xi, r0).ravel() / N * Hz
    return state


def state_values(handles: "AstrocyteGatedMemory", patterns, u0, a0=None, current=None, t_current: float = 0.0,
                 params: Parameters | None = None, spiking: spk.SpikingParameters | None = None) -> dict:
    """Everything a run may change, as {(group, variable name): value with units}.
    patterns and params may differ from those of the build as long as K, N, F and dt stay the same;
    spiking parameters too, except the readout and the seed (compiled in)."""
    from brian2 import ms

    t_current = finite_number(argument_in_units(t_current, "ms", "t_current"), "t_current (ms)")
    xi = validate_patterns(patterns)
    if xi.shape != (handles.K, handles.N):
        raise InputError(f"patterns: this network was built for K x N = {handles.K} x {handles.N}, got {xi.shape}")
    p = handles.params if params is None else params.resolved(handles.N)
    _check_without_rebuild(handles, p, xi)
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
    by_neuron = handles.overlap_layout == "by_neuron"
    if handles.wired_patterns is not None:  # the patterns are the wiring; only N is a value
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


def spiking_state_values(handles: "AstrocyteGatedMemory", xi: np.ndarray, u0: np.ndarray, p: Parameters,
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
