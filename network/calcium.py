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
