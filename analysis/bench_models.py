"""The retrieval benchmark's models, in one registry: kind -> ``factory(patterns, **options)``.

- The NumPy models of models/baselines.py (`make_model`): the cue and
  the oracle, classical, continuous, dense and modern Hopfield networks, the neuron-astrocyte memory of
  Kozachkov, Slotine & Krotov, and the gated rate model (`AstroGated`: the abstract model on a batch).
- The kinds that run Brian2, defined here: the gated network with spiking neurons (`SpikingGated`) and with
  calcium astrocytes (`CalciumGated`).
Every model's `retrieve(cues)` returns a `RetrievalResult`, so the benchmark's metrics apply to all alike.
`make_benchmark_model` makes any of them; it is the public `astrogate.make_baseline`.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from astrogate.analysis.spiking import spiking_retrieval_trials
from astrogate.errors import InputError
from astrogate.models.baselines import KINDS, RetrievalResult, make_model
from astrogate.models import checks
from astrogate.models.checks import euler_steps, one_of, shown
from astrogate.models.parameters import Parameters
from astrogate.models.patterns import validate_cue, validate_patterns
from astrogate.models.spiking_equations import SPIKING

SPIKING_BENCH_DEVICES = ("runtime", "cpp_standalone")
SPIKING_BENCH_OPTIONS = ("neuron", "duration", "nu_max", "tau_r", "readout", "device", "target", "seed")


class SpikingGated:
    """The gated network (docs/model.md) with spiking neurons (Brian2), as a retrieval-benchmark model:
    `retrieve(cues)` returns the RetrievalResult of models/baselines.py, so the benchmark's metrics apply.

    Each call is one `spiking_retrieval_trials`: one Brian2Session for the pattern set, one run of
    `duration` ms per cue (runtime: the network is built once and re-run; cpp_standalone: compiled once,
    re-run with run_args). The state is sign(v) at the end, v = tanh(gamma u) (as for the rate model;
    the spikes' rate-coded estimate feeds the astrocytes). steps = Euler steps of the full duration (the
    network has no early stop); converged = the pattern with the largest final gain also has the largest
    gain on average over the second half (the routing did not change late).
    Brian2's seed is `seed` for every cue (spiking_retrieval_trials: each cue draws the same random stream)."""

    name = "gated_spiking"

    # the spiking neurons' options of a benchmark column (SpikingParameters' defaults apart from tau_r)
    SPIKING_DEFAULTS = {"nu_max": 200.0, "tau_r": 20.0, "readout": "trace", "seed": 0}

    def __init__(self, patterns, params: Parameters | None = None, neuron: str = "poisson",
                 duration: float = 100.0, device: str = "runtime", target: str = "cython", **spiking):
        """spiking: the SpikingParameters fields nu_max, tau_r, readout, seed (SPIKING_DEFAULTS)."""
        from astrogate.network.devices import CODEGEN_TARGETS
        from astrogate.network.memory import spiking_from_options

        self.xi = validate_patterns(patterns)
        self.K, self.N = self.xi.shape
        if params is not None:
            checks.instance(params, Parameters, "gated_spiking: params", "an astrogate Parameters")
        self.params = params or Parameters()
        one_of(neuron, SPIKING, f"gated_spiking: option neuron = {shown(neuron)}")
        one_of(device, SPIKING_BENCH_DEVICES, f"gated_spiking: option device = {shown(device)}")
        one_of(target, CODEGEN_TARGETS, f"gated_spiking: option target = {shown(target)}")
        duration = checks.duration(duration, "gated_spiking: option duration")
        euler_steps(duration, self.params.dt)  # at least one step, not absurdly many
        spiking = {**self.SPIKING_DEFAULTS, **spiking}
        spiking["seed"] = int(checks.seed(spiking["seed"], "gated_spiking: option seed"))
        try:
            self.spiking = spiking_from_options(None, spiking)
            self.spiking.check(neuron, self.params.dt)
        except InputError as exc:
            raise InputError(f"gated_spiking: {exc}") from None
        self.neuron, self.duration, self.device, self.target = neuron, float(duration), device, target

    def retrieve(self, cues) -> RetrievalResult:
        cues = np.atleast_2d(validate_cue(cues, self.N))
        trials = spiking_retrieval_trials(self.xi, cues, None, self.params, self.duration, self.neuron,
                                          self.spiking, device=self.device, target=self.target)
        B = len(cues)
        steps = np.full(B, int(round(self.duration / self.params.dt)))
        converged = np.argmax(trials["g"], axis=1) == np.argmax(trials["late_mean_gains"], axis=1)
        return RetrievalResult(np.sign(trials["v"]), steps, converged)


def make_spiking_model(patterns, **options) -> SpikingGated:
    """The benchmark's 'gated_spiking' kind: the options of SpikingGated plus the Parameters fields
    (beta, tau_g, ... as for the rate 'gated' kind); an unknown option is an InputError naming it."""
    run_options = {k: v for k, v in options.items() if k in SPIKING_BENCH_OPTIONS}
    try:
        params = Parameters().updated(**{k: v for k, v in options.items() if k not in SPIKING_BENCH_OPTIONS})
    except (InputError, TypeError) as exc:
        raise InputError(f"gated_spiking: {exc} (options: {', '.join(SPIKING_BENCH_OPTIONS)} and the "
                         f"model parameters)") from None
    return SpikingGated(patterns, params, **run_options)


class CalciumGated:
    """The gated memory with calcium astrocytes (network/calcium.py; docs/results/calcium.md) as a
    retrieval-benchmark model: the paper's rate neurons (analysis/calcium.py MEMORY_NEURONS: tau_x = 1 ms,
    sigma = 3, kappa = 1, x(0) = the cue, dt = 0.01 ms) and K calcium astrocytes whose gains compete through
    `pool` ("shared" or "private"), with IP3 `gap_junctions` ("none", "ring", "all"). `calcium` holds calcium
    parameters as plain numbers in their display units (O_A in 1/s, Y_pattern in uM, F_GJ in uM/s, speedup;
    models/calcium.py); unless given, speedup = 1000 and O_A = 60/s as in the results page's memory study.

    `retrieve(cues)` builds one network for the pattern set and re-runs it from each cue for `duration` ms
    (runtime device, `target`). states = sign(u) at the end (eq. 15); rates = tanh(gamma u); gains = the final
    g (the bound fraction of the resource: sum <= 1, not 1); converged = the largest gain holds more than half
    of the resource (the pool was captured by one pattern). One memory at a time: the calcium astrocytes have
    no batched copies."""

    name = "gated_calcium"

    def __init__(self, patterns, duration: float = 30.0, calcium: dict | None = None, pool: str = "shared",
                 gap_junctions: str = "none", target: str = "cython"):
        from astrogate.analysis.calcium import MEMORY_CAPTURE, MEMORY_NEURONS, MEMORY_SPEEDUP
        from astrogate.models import calcium as ca
        from astrogate.network.calcium import CalciumSetup
        from astrogate.network.devices import CODEGEN_TARGETS

        self.xi = validate_patterns(patterns)
        self.K, self.N = self.xi.shape
        self.params = Parameters(**MEMORY_NEURONS)
        self.duration = float(checks.duration(duration, "gated_calcium: option duration"))
        euler_steps(self.duration, self.params.dt)
        one_of(target, CODEGEN_TARGETS, f"gated_calcium: option target = {shown(target)}")
        if calcium is not None and not isinstance(calcium, dict):
            raise InputError(f"gated_calcium: option calcium must be a table of calcium parameters, got "
                             f"{shown(calcium)}")
        values = {"speedup": MEMORY_SPEEDUP, "O_A": MEMORY_CAPTURE, **(calcium or {})}
        try:
            self.setup = CalciumSetup(pool, gap_junctions, ca.from_display_units(values))
        except InputError as exc:
            raise InputError(f"gated_calcium: {exc}") from None
        self.target = target

    def retrieve(self, cues) -> RetrievalResult:
        import brian2 as b2

        from astrogate.network import devices
        from astrogate.network.memory import AstrocyteGatedMemory

        cues = np.atleast_2d(validate_cue(cues, self.N))
        devices.activate(devices.DeviceChoice("runtime", self.target), self.params.dt)
        try:
            memory = AstrocyteGatedMemory(self.xi, self.params, astrocyte="calcium", calcium=self.setup,
                                          name="calcium_bench")
            network = b2.Network(memory)
            network.store("built")
            u, v, g = [], [], []
            for cue in cues:
                network.restore("built")
                memory.set_cue(cue)
                network.run(self.duration * b2.ms, namespace={})
                state = memory.state()
                u.append(state["u"])
                v.append(state["v"])
                g.append(state["g"])
        finally:
            devices.reset_runtime()
        g = np.array(g)
        steps = np.full(len(cues), euler_steps(self.duration, self.params.dt))
        return RetrievalResult(np.sign(np.array(u)), steps, g.max(axis=1) > 0.5, rates=np.array(v), gains=g)


# kind -> factory(patterns, **options); the Brian2 kinds import Brian2 only when a model is made
REGISTRY = {**{kind: partial(make_model, kind) for kind in KINDS}, "gated_spiking": make_spiking_model,
            "gated_calcium": CalciumGated}
# kinds whose retrieval draws random numbers: a seed per pattern set unless the config gives one
SEEDED_KINDS = ("hopfield", "dense", "gated_spiking")


def make_benchmark_model(kind: str, patterns, **options):
    """A retrieval model of the benchmark on your patterns (``astrogate.make_baseline``).

    Parameters
    ----------
    kind : str
        "cue" (the cue itself), "oracle" (the stored pattern nearest to the cue), "hopfield" (classical, 1982),
        "hopfield-continuous" (1984), "dense" (dense associative memory), "modern" (modern Hopfield), "naam"
        (the neuron-astrocyte memory of Kozachkov, Slotine & Krotov), "gated" (this package's model: the
        `Parameters` fields, max_duration, tol, settings "fast" or "reference" and the run settings method,
        stop, dtype, dt, decided_eps, decided_window) or "gated_spiking" (the same with spiking neurons on
        Brian2: neuron, duration, nu_max, tau_r, readout, device, target, seed and the `Parameters` fields) or
        "gated_calcium" (the memory with calcium astrocytes on Brian2: duration, calcium, pool, gap_junctions,
        target; `CalciumGated`).
    patterns : array, K x N
        The stored patterns (+-1 for the discrete networks); finite real numbers.
    **options
        The model's own options (its constructor's keywords, models/baselines.py); an unknown or bad option
        is an InputError naming it.

    Returns
    -------
    A model whose ``retrieve(cues)`` (cues B x N, or N) returns ``states`` (B x N, +-1), ``steps`` and
    ``converged`` (B).
    """
    one_of(kind, tuple(REGISTRY), f"unknown model kind {shown(kind)}")
    return REGISTRY[kind](patterns, **options)
