"""Calcium astrocytes (models/calcium.py) as Brian2 objects, and runs with the overlaps clamped.

`CalciumAstrocytes` is a group of K G-ChI astrocytes (times `copies` independent sets, for many clamped neural
states in one run) with the interface of the memory's astrocytes: the input is the overlap ``m`` (a variable that
a memory's neurons -> astrocytes synapses sum into, or that is set), the output is the gain ``g``. With a shared
pool a one-element hub per copy holds the sum of g (the bound resource), linked back to the astrocytes as in the
memory's softmax hub; gap junctions are Synapses between the astrocytes of a copy.

Per step, in an explicit order::

    'start'   1. release_before = release (at t)     2. J_coupling (summed over the gap junctions)
    'groups'  3. integration of Gamma_A, I, C, h to t + dt
    'end'     4. the pool's sums into the hub: bound = sum g, capture = sum O_A held
              5. the hub's exposure E (models/calcium.py)
              6. g's exact step, the release held at the mean of its values at t and t + dt
              7. the clamped run's diagnostics, then its monitors

Your own monitor of g records after step 6 with ``when="end", order=ORDER["monitors"]``. The
objects run on their own clock (`CalciumSetup.dt`, 10 ms by default: calcium's fastest rates are ~10/s) and
never touch the device or the preferences; `run_clamped` does, as a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from astrogate.errors import InputError
from astrogate.models import calcium as ca
from astrogate.models.units import in_units
from astrogate.network.memory import AstrocyteGatedMemory

SLOT = "start"  # what the groups' integration reads: the release at t, the IP3 flux through the gap junctions
GAIN_SLOT = "end"  # g's step, after calcium's: it holds the release at the mean of its values at t and t + dt
ORDER = dict(store=0, gap_junctions=1, pool=1, exposure=2, gains=3, diagnostics=4, monitors=5)
METHODS = ("rk4", "euler")
DEFAULT_DT = 10.0  # ms


@dataclass(frozen=True)
class CalciumSetup:
    """How the calcium astrocytes are built: the pool (`shared` or `private`), gap junctions (`none`, `ring` or
    `all` within a set of K), parameter overrides ({name: value with units}, models/calcium.py), the time step
    (ms, or a Brian2 time) and Brian2's integration method."""

    pool: str = "shared"
    gap_junctions: str = "none"
    parameters: dict = field(default_factory=dict)
    dt: float = DEFAULT_DT
    method: str = "rk4"

    def __post_init__(self):
        ca.check_pool(self.pool)
        ca.check_gap_junctions(self.gap_junctions)
        if not isinstance(self.parameters, dict):
            raise InputError(f"calcium parameters must be a dict of name: value, got {type(self.parameters).__name__}")
        ca.calcium_parameters(self.parameters)  # each name, unit and sign
        dt = in_units(self.dt, "ms", "dt")
        if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not np.isfinite(dt) or dt <= 0:
            raise InputError(f"dt must be a positive number of ms, got {self.dt!r}")
        object.__setattr__(self, "dt", float(dt))
        if self.method not in METHODS:
            raise InputError(f"unknown method {self.method!r}: use one of {', '.join(METHODS)}")

    def values(self) -> dict:
        """All parameters with the overrides applied (Brian2 quantities; floats where dimensionless)."""
        return ca.calcium_parameters(self.parameters)


class CalciumAstrocytes:
    """K calcium astrocytes (times `copies`) whose gains compete through the setup's pool.

    Attributes
    ----------
    astrocytes : NeuronGroup (copies * K)
        Astrocyte mu of copy s is index s * K + mu. Input ``m`` (overlap), output ``g`` (gain: the bound
        fraction of the resource); G-ChI variables ``C``, ``I``, ``h``, ``Gamma_A``; ``release``, ``Y_S``.
    hub : NeuronGroup (copies) or None
        Shared pool: ``bound`` (the sum of g of the copy), ``capture`` (the sum of O_A release), ``exposure``.
        None for private pools.
    operations : list
        The per-step updates (the hub's exposure, g's exact step).
    synapses : dict of Synapses
        ``pool`` (astrocytes -> hub), ``gap_junctions`` (astrocytes -> astrocytes) where built.
    """

    def __init__(self, K: int, setup: CalciumSetup | None = None, copies: int = 1, clock=None,
                 name: str = "calcium"):
        import brian2 as b2

        for label, value in (("K", K), ("copies", copies)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InputError(f"{label} must be a whole number >= 1, got {value!r}")
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(f"name must be a Python identifier (it prefixes the Brian2 objects' names), got {name!r}")
        setup = setup or CalciumSetup()
        if setup.gap_junctions == "ring" and K < 3:
            raise InputError(f"a ring of gap junctions needs K >= 3 astrocytes, got K = {K}")
        self.K, self.copies, self.setup, self.name = int(K), int(copies), setup, name
        self.clock = clock or b2.Clock(dt=setup.dt * b2.ms, name=f"{name}_clock")
        size = self.K * self.copies
        self.astrocytes = b2.NeuronGroup(size, ca.astrocyte_equations(setup.pool), method=setup.method,
                                         clock=self.clock, name=f"{name}_astrocytes")
        self.synapses: dict = {}
        self.operations: list = []
        self.hub = None
        if setup.pool == "shared":
            self.hub = b2.NeuronGroup(self.copies, ca.HUB_EQUATIONS, clock=self.clock, name=f"{name}_hub")
            pool = b2.Synapses(self.astrocytes, self.hub, ca.POOL_SYNAPSE, clock=self.clock, name=f"{name}_pool")
            pool.connect(i=np.arange(size), j=np.arange(size) // self.K)
            self._summed(pool, "bound_post", "pool", GAIN_SLOT)
            self._summed(pool, "capture_post", "pool", GAIN_SLOT)
            self.synapses["pool"] = pool
            if self.copies == 1:  # a one-element hub is linked without an index, as the memory's softmax hub
                self.astrocytes.exposure = b2.linked_var(self.hub, "exposure")
            else:
                self.astrocytes.exposure = b2.linked_var(self.hub, "exposure", index=np.arange(size) // self.K)
            self.operations.append(self.hub.run_regularly(ca.HUB_UPDATE, when=GAIN_SLOT, order=ORDER["exposure"],
                                                          name=f"{name}_hub_exposure"))
        if setup.gap_junctions != "none":
            pre, post = gap_junction_pairs(self.K, setup.gap_junctions)
            offsets = np.repeat(np.arange(self.copies) * self.K, len(pre))
            junctions = b2.Synapses(self.astrocytes, self.astrocytes, ca.GAP_JUNCTION_SYNAPSE, clock=self.clock,
                                    name=f"{name}_gap_junctions")
            junctions.connect(i=np.tile(pre, self.copies) + offsets, j=np.tile(post, self.copies) + offsets)
            self._summed(junctions, "J_coupling_post", "gap_junctions")
            self.synapses["gap_junctions"] = junctions
        self.operations += [
            self.astrocytes.run_regularly(ca.RELEASE_STORE, when=SLOT, order=ORDER["store"], name=f"{name}_store"),
            self.astrocytes.run_regularly(ca.gain_update(setup.pool), when=GAIN_SLOT, order=ORDER["gains"],
                                          name=f"{name}_gains")]
        self.set_parameters(setup.values())
        self.reset()
        self.objects = [self.astrocytes, *([self.hub] if self.hub is not None else []), *self.operations,
                        *self.synapses.values()]

    def __iter__(self):
        """The Brian2 objects (what Network(astrocytes) adds)."""
        return iter(self.objects)

    @staticmethod
    def _summed(synapses, variable, order, when=SLOT):
        updater = synapses.summed_updaters[variable]
        updater.when, updater.order = when, ORDER[order]

    def set_parameters(self, values: dict) -> None:
        """Set the group's parameter variables ({name: quantity}, all of models/calcium.py's PARAMETERS)."""
        for name, value in values.items():
            setattr(self.astrocytes, name, value)
        if self.setup.pool == "private":
            self.astrocytes.share = 1.0 / self.K
        else:
            self.hub.decay = values["speedup"] * values["Omega_G"]

    def reset(self) -> None:
        """The example's initial state (calcium and IP3 at 0, h = 0.9) with all the resource in the pool."""
        for name, value in ca.INITIAL_STATE.items():
            setattr(self.astrocytes, name, value)

    def set_overlaps(self, m) -> None:
        """Clamp the overlaps: an array of K (every copy the same) or copies x K."""
        m = np.asarray(m, dtype=float)
        if m.shape == (self.K,):
            m = np.tile(m, self.copies)
        elif m.shape == (self.copies, self.K):
            m = m.ravel()
        else:
            raise InputError(f"overlaps must have shape (K,) = ({self.K},) or (copies, K) = ({self.copies}, {self.K}),"
                             f" got {m.shape}")
        if not np.all(np.isfinite(m)) or np.any(np.abs(m) > 1 + 1e-12):
            raise InputError("overlaps must be finite and within [-1, 1]")
        self.astrocytes.m = m

    def state(self) -> dict:
        """The current state as arrays of shape (copies, K), concentrations in uM."""
        from brian2 import umolar

        a = self.astrocytes
        shape = (self.copies, self.K)
        return {"m": np.asarray(a.m[:]).reshape(shape), "g": np.asarray(a.g[:]).reshape(shape),
                "C": np.asarray(a.C[:] / umolar).reshape(shape), "I": np.asarray(a.I[:] / umolar).reshape(shape),
                "h": np.asarray(a.h[:]).reshape(shape), "Gamma_A": np.asarray(a.Gamma_A[:]).reshape(shape),
                "release": np.asarray(a.release[:]).reshape(shape)}

    def __repr__(self):
        return (f"CalciumAstrocytes(K={self.K}, copies={self.copies}, pool={self.setup.pool!r}, "
                f"gap_junctions={self.setup.gap_junctions!r}, name={self.name!r})")


def gap_junction_pairs(K: int, topology: str) -> tuple[np.ndarray, np.ndarray]:
    """(pre, post) index pairs within one set of K astrocytes; both directions of each junction, since a synapse
    updates its postsynaptic astrocyte's flux only (as in Stimberg et al.'s ring)."""
    ca.check_gap_junctions(topology)
    if topology == "ring":
        i = np.arange(K)
        return np.concatenate([i, i]), np.concatenate([(i + 1) % K, (i - 1) % K])
    if topology == "all":
        pre, post = np.nonzero(~np.eye(K, dtype=bool))
        return pre, post
    return np.zeros(0, dtype=int), np.zeros(0, dtype=int)


DIAGNOSTIC_EQUATIONS = """
C                       : mmolar (linked)
g                       : 1 (linked)
C_low                   : mmolar     # lowest calcium in the averaging window
C_high                  : mmolar     # highest calcium in the averaging window
g_low                   : 1          # lowest gain of the whole run
g_sum                   : 1          # sum of g over the window's steps
release_now             : 1          # the astrocyte's release (summed, one synapse each)
release_sum             : 1          # sum of the release over the window's steps
t_window                : second (shared, constant)
"""
DIAGNOSTIC_UPDATE = """
C_low = C_low + (C - C_low)*int(C < C_low)*int(t >= t_window)
C_high = C_high + (C - C_high)*int(C > C_high)*int(t >= t_window)
g_low = g_low + (g - g_low)*int(g < g_low)
g_sum = g_sum + g*int(t >= t_window)
release_sum = release_sum + release_now*int(t >= t_window)
"""
HUB_DIAGNOSTIC_EQUATIONS = """
bound                   : 1 (linked)
free_low                : 1          # lowest free fraction 1 - sum g of the whole run
"""
HUB_DIAGNOSTIC_UPDATE = "free_low = free_low + (1 - bound - free_low)*int(1 - bound < free_low)"


def run_clamped(overlaps, setup: CalciumSetup | None = None, settle: float = 300.0, window: float = 300.0,
                sample_every: float = 1.0, device: str = "runtime", target: str = "cython",
                calcium_first: float = 60.0) -> dict:
    """Clamp the overlaps of S neural states (an S x K array) and run the calcium astrocytes from the initial state:
    `calcium_first` seconds (of biological time) with the release pathway off (O_A = 0, all the resource in the
    pool), so that the gains start from calcium's response to the clamped drive and not from the transient of
    the initial state (a calcium spike whose release would take minutes to decay at Omega_G); then `settle`
    seconds with the release on, then the averaging `window`. Returns, as arrays (concentrations in uM):

    - ``t`` (s, from the release onset), ``g`` (S, K, samples) and ``bound`` (S, samples: the sum of g), sampled
      every `sample_every` s;
    - ``g_mean``, ``release_mean``: g and the release averaged over the window's steps (the cycle average where calcium oscillates), ``C_low``/``C_high``
      (S, K): calcium's range in the window; ``g_low``: the lowest gain of any step;
      ``free_low`` (S): the lowest free fraction of any step (shared pool), NaN for private pools;
    - ``run_seconds``: wall-clock time of the simulation (with the build for standalone devices).

    Activates `device` (runtime: `target` cython or numpy; cpp_standalone: a fresh build folder)."""
    import time

    import brian2 as b2

    from astrogate.network import devices

    setup = setup or CalciumSetup()
    m = np.asarray(overlaps, dtype=float)
    if m.ndim != 2 or 0 in m.shape:
        raise InputError(f"overlaps must be an S x K array (one row per neural state), got shape {m.shape}")
    for label, value in (("settle", settle), ("window", window), ("sample_every", sample_every),
                         ("calcium_first", calcium_first)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0 \
                or (value == 0 and label != "calcium_first"):
            raise InputError(f"{label} must be a positive number of seconds, got {value!r}")
    if sample_every * 1e3 < setup.dt or window < sample_every:
        raise InputError(f"sample_every must be at least dt = {setup.dt} ms and at most the window, got {sample_every}")
    choice = devices.check_device(device, target)
    if choice.name == "cuda_standalone":
        raise InputError("run_clamped runs on the runtime device or cpp_standalone")
    S, K = m.shape
    start = time.perf_counter()
    build_dir = devices.activate(choice, setup.dt)
    astro = CalciumAstrocytes(K, setup, copies=S, name="clamped")
    astro.set_overlaps(m)
    diag = b2.NeuronGroup(S * K, DIAGNOSTIC_EQUATIONS, clock=astro.clock, name="clamped_diagnostics")
    diag.C = b2.linked_var(astro.astrocytes, "C")
    diag.g = b2.linked_var(astro.astrocytes, "g")
    # the release is a subexpression, which a linked variable cannot read: one summed synapse per astrocyte
    release = b2.Synapses(astro.astrocytes, diag, "release_now_post = release_pre : 1 (summed)", clock=astro.clock,
                          name="clamped_release")
    release.connect(j="i")
    updater = release.summed_updaters["release_now_post"]
    updater.when, updater.order = GAIN_SLOT, ORDER["gains"]
    # finite starting values (inf - inf would be NaN): g and the free fraction never exceed 1
    diag.C_low, diag.C_high, diag.g_low = 1 * b2.mmolar, 0 * b2.mmolar, 2.0
    first_window_step = int(np.ceil((calcium_first + settle) * 1e3 / setup.dt - 1e-9))
    diag.t_window = (first_window_step - 0.5) * setup.dt * b2.ms  # between two steps: no round-off at the edge
    # after g's step: the state each step ends with (including the last)
    objects = [astro, diag, release, diag.run_regularly(DIAGNOSTIC_UPDATE, when=GAIN_SLOT, order=ORDER["diagnostics"],
                                               name="clamped_diagnostic_update")]
    if astro.hub is not None:
        hub_diag = b2.NeuronGroup(S, HUB_DIAGNOSTIC_EQUATIONS, clock=astro.clock, name="clamped_hub_diagnostics")
        hub_diag.bound = b2.linked_var(astro.hub, "bound")
        hub_diag.free_low = 2.0
        objects += [hub_diag, hub_diag.run_regularly(HUB_DIAGNOSTIC_UPDATE, when=GAIN_SLOT, order=ORDER["diagnostics"],
                                                     name="clamped_hub_diagnostic_update")]
    # samples of g and of its sum at the end of each sampled step
    monitor = b2.StateMonitor(astro.astrocytes, "g", record=True, dt=sample_every * b2.second, when=GAIN_SLOT,
                              order=ORDER["monitors"], name="clamped_gain_monitor")
    objects.append(monitor)
    net = b2.Network(*objects)
    if calcium_first > 0:
        capture = setup.values()["O_A"]
        astro.astrocytes.O_A = 0 / b2.second
        net.run(calcium_first * b2.second, namespace={})
        astro.astrocytes.O_A = capture
    net.run((settle + window) * b2.second, namespace={})
    if build_dir is not None:
        b2.device.build(directory=str(build_dir), compile=True, run=True, with_output=False)
    seconds = time.perf_counter() - start
    t = np.asarray(monitor.t / b2.second) - calcium_first
    g = np.asarray(monitor.g[:]).reshape(S, K, -1)
    g, t = g[:, :, t >= 0], t[t >= 0]
    window_steps = int(round((calcium_first + settle + window) * 1e3 / setup.dt)) - first_window_step
    result = {
        "t": t, "g": g, "bound": g.sum(axis=1),
        "g_mean": np.asarray(diag.g_sum[:]).reshape(S, K) / window_steps,  # every step of the window
        "release_mean": np.asarray(diag.release_sum[:]).reshape(S, K) / window_steps,
        "C_low": np.asarray(diag.C_low[:] / b2.umolar).reshape(S, K),
        "C_high": np.asarray(diag.C_high[:] / b2.umolar).reshape(S, K),
        "g_low": float(np.min(diag.g_low[:])),
        "free_low": (np.asarray(hub_diag.free_low[:]) if astro.hub is not None else np.full(S, np.nan)),
        "final": astro.state(), "run_seconds": seconds, "settle": settle, "window": window,
    }
    if build_dir is not None:
        devices.reset_runtime()
    return result


# -- the memory with calcium astrocytes ---------------------------------------------------------------------------
# The replicator memory's output synapse with K g_mu in place of K softmax(a)_mu: each pattern's synapses scale
# with the resource bound there (mean gain 1 when the whole pool is bound).
CALCIUM_OUTPUT_SYNAPSE = """
pattern                 : 1 (constant)       # pattern[mu, i]
kappa_K                 : 1 (shared, constant)   # coupling times the number of patterns
I_rec_post = kappa_K*pattern*g_pre*{dF} : 1 (summed)
"""
# calcium's fastest rates are ~10/s (tests/test_calcium.py); rk4 needs their product with the step well below 2.8
CALCIUM_STEP_LIMIT = 1.0  # speedup * dt * 10/s, at most


def calcium_setup(calcium) -> CalciumSetup:
    """The memory's `calcium` argument: None (the defaults), a CalciumSetup, or a dict of parameter overrides."""
    if calcium is None:
        return CalciumSetup()
    if isinstance(calcium, CalciumSetup):
        return calcium
    if isinstance(calcium, dict):
        return CalciumSetup(parameters=calcium)
    raise InputError(f"calcium must be a CalciumSetup or a dict of calcium parameters, got {type(calcium).__name__}")


def build_calcium_memory(memory, xi: np.ndarray, setup: CalciumSetup, record_every, neuron_sample: int) -> None:
    """Fill a `CalciumGatedMemory`: rate neurons (as the replicator memory's), the calcium astrocytes of `setup` on
    the memory's clock (their step is the neurons' dt), neurons -> astrocytes synapses that sum the overlaps m into
    the astrocytes' drive, and astrocytes -> neurons synapses gated by K g."""
    import brian2 as b2

    from astrogate.models import brian2_equations as eq

    from astrogate.models import spiking_equations as spk

    K, N = xi.shape
    name, clock = memory.name, memory.clock
    speedup = setup.values()["speedup"]
    if speedup * memory.params.dt * 1e-3 * 10 > CALCIUM_STEP_LIMIT:
        raise InputError(f"calcium speedup {speedup:g} is too large for dt = {memory.params.dt:g} ms (calcium's "
                         f"fastest rates, ~10/s times the speedup, need speedup * dt <= {CALCIUM_STEP_LIMIT * 100:g} "
                         f"ms): use a smaller dt or speedup")
    spiking = memory.spiking is not None
    # spiking neurons: the astrocytes' m is read from the spikes' trace readout v = 2 r / nu_max - 1
    memory.neurons = b2.NeuronGroup(N, spk.neuron_equations(memory.neuron) if spiking else eq.NEURON_EQUATIONS,
                                    method=memory.method, clock=clock, name=f"{name}_neurons",
                                    **(spk.neuron_group_options(memory.neuron) if spiking else {}))
    memory.calcium = CalciumAstrocytes(K, setup, clock=clock, name=name)
    memory.astrocytes, memory.hub = memory.calcium.astrocytes, memory.calcium.hub
    memory.synapses = dict(memory.calcium.synapses)
    memory.monitors = {}
    memory.operations = [memory._step(memory.neurons, spk.READOUT_UPDATE if spiking else eq.RATE_UPDATE, "rates")]
    overlap = b2.Synapses(memory.neurons, memory.astrocytes, eq.OVERLAP_SYNAPSE, clock=clock, name=f"{name}_overlap")
    output = b2.Synapses(memory.astrocytes, memory.neurons,
                         CALCIUM_OUTPUT_SYNAPSE.format(dF=f"({memory.params.F.brian2_expressions('m_pre')[1]})"),
                         clock=clock, name=f"{name}_output")
    if memory.overlap_layout == "by_pattern":
        overlap.connect(i=np.tile(np.arange(N), K), j=np.repeat(np.arange(K), N))  # synapse mu*N + i
        output.connect(i=np.repeat(np.arange(K), N), j=np.tile(np.arange(N), K))
    else:
        overlap.connect()  # pre-major: synapse i*K + mu
        output.connect()  # pre-major: synapse mu*N + i
    memory._summed(overlap, "m_post", "overlaps")
    memory._summed(output, "I_rec_post", "recurrent")
    memory.synapses.update(overlap=overlap, output=output)
    memory.neuron_sample = np.unique(np.linspace(0, N - 1, min(neuron_sample, N)).astype(int))
    if record_every is not None:
        when = dict(dt=record_every * b2.ms, when="end", order=ORDER["monitors"])
        memory.monitors["astrocytes"] = b2.StateMonitor(memory.astrocytes, ["m", "g", "C"], record=True,
                                                        name=f"{name}_astrocyte_monitor", **when)
        memory.monitors["neurons"] = b2.StateMonitor(memory.neurons, ["u", "v"], record=memory.neuron_sample,
                                                     name=f"{name}_neuron_monitor", **when)
        if spiking:
            memory.monitors["spike_counts"] = b2.SpikeMonitor(memory.neurons, record=False,
                                                              name=f"{name}_spike_counter")
    memory.contained_objects.extend([memory.neurons, *memory.calcium.objects, *memory.operations, overlap, output,
                                     *memory.monitors.values()])


class CalciumGatedMemory(AstrocyteGatedMemory):
    """The gated memory with K calcium astrocytes in place of the replicator: ``AstrocyteGatedMemory(patterns,
    astrocyte="calcium", calcium=CalciumSetup(...) or {name: value})``.

    The rate neurons are the replicator memory's (tau_u du/dt = -u + I_rec + ..., v = tanh(gamma u)); the
    neurons -> astrocytes synapses sum the overlaps m = xi v / N into the astrocytes' drive (glutamate
    Y_pattern m^2, models/calcium.py), and pattern mu's synapses onto the neurons carry
    I_rec_i = kappa sum_mu K g_mu F'(m_mu) xi[mu, i]: K g_mu in place of the replicator's K p_mu. Nothing
    normalises the gains: their sum is the bound fraction of the shared pool (<= 1).

    **Time scales.** The neurons' parameters are in ms, the calcium astrocytes' in seconds, and both step on
    the memory's clock (params.dt). The calcium parameter ``speedup`` multiplies every calcium rate: one
    second of calcium time takes 1000 / speedup ms of the memory's time, so speedup sets the ratio of the
    astrocytes' to the neurons' time scales (the paper's tau_p / tau_x). Physiological values are speedup = 1
    with tau_u ~ 10 ms (calcium ~ 10^2 - 10^4 times slower than the neurons); the memory retrieves in a few
    tau_u only when speedup brings calcium's response within them. speedup * dt must stay <= 100 ms (rk4 on
    calcium's ~10/s rates).

    **Spiking neurons** (``neuron="poisson"`` or ``"lif"``, with `spiking` or its keywords nu_max, tau_r, ...:
    models/spiking_equations.py): only spikes leave a neuron, and the astrocytes' drive is the overlap of the
    filtered spike trains, m_hat_mu = xi_mu . v_hat / N with v_hat_i = 2 r_i / nu_max - 1 and r_i neuron i's
    spikes low-passed with tau_r (the trace readout; the event readout is refused); the glutamate is
    Y_pattern m_hat^2. The readout starts at the rate of u(0) (spiking_equations explains why). Poisson draws
    use Brian2's random numbers: ``brian2.seed`` before the run makes them repeatable.

    Factorised gating only; the Lyapunov function is not computed in the network (it is the replicator's;
    analysis/calcium.py evaluates it along the calcium trajectories). `set_cue` starts the astrocytes at rest
    (the example's initial state) with the gains `gains` (default 0: all the resource in the pool), the neurons
    at u = scale * cue.

    Attributes (besides the replicator memory's neurons, synapses, monitors): ``calcium`` (the
    `CalciumAstrocytes`), ``astrocytes`` (its group: m, g, C, I, h, Gamma_A, release), ``hub`` (its pool:
    bound = sum g), ``setup`` (the `CalciumSetup`).
    """

    def __init__(self, patterns, params=None, settings=None, *, name: str = "agm*", calcium=None, **options):
        from brian2.core.names import find_name

        from astrogate.models import checks
        from astrogate.models import spiking_equations as spk
        from astrogate.models.parameters import Parameters
        from astrogate.models.patterns import validate_patterns
        from astrogate.network.memory import SLOT, _split_options, check_memory_name, network_settings

        check_memory_name(name)
        if params is not None:
            checks.instance(params, Parameters, "params", "an astrogate Parameters")
        options.pop("astrocyte", None)  # "calcium": __new__ made this class for it
        settings = network_settings(settings, options)  # the replicator memory's settings, checked there
        if settings.gating != "factorised":
            raise InputError(f"calcium astrocytes gate the factorised synapses (gating='factorised'), got "
                             f"gating={settings.gating!r}")
        if settings.weight_dtype is not None:
            raise InputError("option weight_dtype does not apply to calcium astrocytes (float64)")
        # energy and raster_neurons are the replicator memory's: no Lyapunov function, no raster here
        neuron, method, spiking = settings.neuron, settings.method, settings.spiking
        neuron_sample, overlap_layout = settings.neuron_sample, settings.overlap_layout
        params, rest = _split_options(params, options)
        if neuron in spk.SPIKING:
            spiking = spiking_parameters(spiking, rest)
        elif spiking is not None or rest:
            unknown = sorted(rest) or ["spiking"]
            raise InputError(f"unknown option(s) {', '.join(unknown)} for the memory with calcium astrocytes and rate "
                             f"neurons")
        setup = calcium_setup(calcium)
        if np.ndim(patterns) == 3:
            raise InputError("calcium astrocytes run one memory at a time: give patterns of shape (K, N), not a "
                             f"batch of shape {np.shape(patterns)}")
        xi = validate_patterns(patterns)
        K, N = xi.shape
        params = params.resolved(N)
        if spiking is not None:
            spiking.check(neuron, params.dt)
        record_every = settings.record_every
        if record_every is not None and not record_every >= params.dt:
            raise InputError(f"record_every must be at least dt = {params.dt} ms, got {record_every}")
        if setup.gap_junctions == "ring" and K < 3:
            raise InputError(f"a ring of gap junctions needs K >= 3 astrocytes, got K = {K}")
        name = find_name(name)
        clock = b2_clock(params.dt, f"{name}_clock")
        super(AstrocyteGatedMemory, self).__init__(clock=clock, when=SLOT, name=name)
        self.patterns, self.K, self.N, self.params = xi, K, N, params
        self.batch, self.copies, self.copy_params = None, 1, None  # one memory: calcium astrocytes are not batched
        self.neuron, self.gating, self.method, self.spiking = neuron, settings.gating, method, spiking
        self.record_every, self.overlap_layout, self.wired_patterns = record_every, overlap_layout, None
        self.energy, self.setup, self.astrocyte = False, setup, "calcium"
        build_calcium_memory(self, xi, setup, record_every, neuron_sample)
        self._state_set = False

    def state_values(self, patterns=None, u0=None, a0=None, current=None, t_current: float = 0.0,
                     params=None, spiking=None, gains=None) -> dict:
        """Everything a run may change, as {(group, variable name): value}: the patterns, the neurons' u0 (N),
        a cue current (N) while t < t_current (ms), the neural parameters, and the astrocytes' initial state
        (at rest, with the gains `gains`: a number or K numbers >= 0 with sum <= 1; default 0)."""
        from brian2 import ms

        from astrogate.models import brian2_equations as eq
        from astrogate.models.checks import finite_number
        from astrogate.models.patterns import validate_patterns
        from astrogate.models.units import argument_in_units
        from astrogate.network.memory import cue_end

        if a0 is not None:
            raise InputError("calcium astrocytes have no logits a0: set their initial gains with gains=")
        if spiking is not None and self.spiking is None:
            raise InputError("spiking parameters need spiking neurons: build the memory with neuron='poisson' or "
                             "'lif'")
        t_current = finite_number(argument_in_units(t_current, "ms", "t_current"), "t_current (ms)")
        xi = validate_patterns(self.patterns if patterns is None else patterns)
        if xi.shape != (self.K, self.N):
            raise InputError(f"patterns: this network was built for K x N = {self.K} x {self.N}, got {xi.shape}")
        p = self.params if params is None else params.resolved(self.N)
        if p.similarity != self.params.similarity or p.dt != self.params.dt:
            raise InputError("similarity and dt are compiled into the network: build a new one to change them")
        u0 = np.zeros(self.N) if u0 is None else np.asarray(u0, dtype=float)
        if u0.shape != (self.N,) or not np.all(np.isfinite(u0)):
            raise InputError(f"u0 must be {self.N} finite numbers, got shape {u0.shape}")
        g0 = np.asarray(0.0 if gains is None else gains, dtype=float)
        if g0.ndim == 0:
            g0 = np.full(self.K, float(g0))
        if g0.shape != (self.K,) or not np.all(np.isfinite(g0)) or np.any(g0 < 0) or g0.sum() > 1 + 1e-12:
            raise InputError(f"gains must be a number or K = {self.K} numbers, each >= 0, summing to at most 1")
        if self.setup.pool == "private" and np.any(g0 > 1.0 / self.K + 1e-12):
            raise InputError(f"private pools hold 1/K = {1 / self.K:g} each: gains must be at most that")
        values = eq.network_parameters(p, self.N, self.K)
        n, a, syn = self.neurons, self.astrocytes, self.synapses
        state = {(n, "u"): u0, (n, "I_cue"): np.zeros(self.N) if current is None else np.asarray(current, float),
                 (n, "t_cue_end"): cue_end(t_current, p.dt) * ms}
        for name in eq.NEURON_PARAMETERS:
            state[(n, name)] = values[name]
        by_neuron = self.overlap_layout == "by_neuron"
        state[(syn["overlap"], "weight")] = (xi.T.ravel() if by_neuron else xi.ravel()) / self.N
        state[(syn["output"], "pattern")] = xi.ravel()
        state[(syn["output"], "kappa_K")] = p.kappa * self.K
        for variable, value in ca.INITIAL_STATE.items():
            state[(a, variable)] = np.full(self.K, float(value)) if variable in ("h", "Gamma_A", "g") else \
                np.zeros(self.K) * value
        state[(a, "g")] = np.array(g0)
        state[(a, "release_before")] = np.zeros(self.K)
        if self.spiking is not None:
            from astrogate.network.memory import spiking_state_values

            state.update(spiking_state_values(self, xi, u0, p, spiking or self.spiking))
        return state

    def set_cue(self, cue, scale: float | None = None, current=None, t_current: float = 0.0,
                gains=None) -> None:
        """Start from a cue: u(0) = scale * cue (scale defaults to params.cue_scale), the astrocytes at rest
        with the gains `gains` (default 0: all the resource in the pool). Optionally a cue current."""
        from astrogate.models.patterns import validate_cue

        cue = validate_cue(cue, self.N)
        if cue.ndim != 1:
            raise InputError(f"cue: expected one cue of length N = {self.N}, got shape {cue.shape}")
        scale = self.params.cue_scale if scale is None else scale
        if not np.isfinite(scale):
            raise InputError(f"cue scale must be a finite number, got {scale!r}")
        self.apply_state(self.state_values(u0=scale * cue, current=current, t_current=t_current, gains=gains))

    def set_patterns(self, patterns) -> None:
        """Load a new pattern set of the same K x N; the state is left as it is."""
        from astrogate.models.patterns import validate_patterns
        from astrogate.network.memory import apply_state

        xi = validate_patterns(patterns)
        state = self.state_values(xi)
        apply_state({key: value for key, value in state.items() if key[1] in ("weight", "pattern")})
        self.patterns = xi

    def state(self) -> dict:
        """u, v (N); m, g (K: the gains, the bound fraction of the resource at each pattern), C, I (uM), h,
        Gamma_A (K); bound (the sum of g)."""
        from brian2 import umolar

        u = np.array(self.neurons.u[:])
        if self.spiking is None:
            v = np.tanh(float(np.asarray(self.neurons.gamma[:]).ravel()[0]) * u)
        else:  # the rate-coded estimate the astrocytes read (at the last step)
            v = np.array(self.neurons.v[:])
        a = self.astrocytes
        g = np.array(a.g[:])
        return {"u": u, "v": v, "m": v @ self.network_patterns().T / self.N, "g": g,
                "C": np.asarray(a.C[:] / umolar), "I": np.asarray(a.I[:] / umolar), "h": np.array(a.h[:]),
                "Gamma_A": np.array(a.Gamma_A[:]), "bound": float(g.sum())}

    def __repr__(self):
        return (f"AstrocyteGatedMemory(K={self.K}, N={self.N}, astrocyte='calcium', pool={self.setup.pool!r}, "
                f"gap_junctions={self.setup.gap_junctions!r}, name={self.name!r})")


def spiking_parameters(spiking, options: dict):
    """The spiking neurons' parameters: `spiking` or keywords (nu_max, tau_r, ...), not both. The astrocytes
    read the neurons' trace readout (each neuron's spikes low-passed with tau_r), so readout='event' is refused."""
    from astrogate.network.memory import spiking_from_options

    spiking = spiking_from_options(spiking, options)
    if spiking.readout != "trace":
        raise InputError("calcium astrocytes read the spiking neurons' trace readout (readout='trace'), got "
                         f"readout={spiking.readout!r}")
    return spiking


def b2_clock(dt_ms: float, name: str):
    import brian2 as b2

    return b2.Clock(dt=dt_ms * b2.ms, name=name)

