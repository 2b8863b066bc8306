"""One retrieval on the Brian2 network, returned as the backend-independent result record.

The network integrates with forward Euler at dt, one step of the network being one step of the abstract
model's Euler integrator, and always runs the full duration: it has no cheap early stop. `tol` is used
only to judge the end state: `converged` says whether max|du/dt| and max|da/dt| (the abstract model's
right-hand side at the final state) are below tol; `t_converged` is NaN. Compare with the abstract model
at tol = 0, which never stops early either.

A `Brian2Session` keeps one build: on cpp_standalone a second run with the same N, K, F, gating, dt and
duration re-runs the compiled binary with run_args (new patterns, cue, parameters) instead of recompiling;
with wired gating the patterns are the build's synapses, so new patterns rebuild.
On the runtime device a second run with the same N, K, F, dt (and spiking readout and seed) restores the
network to its state after the build (Network.store/restore: t = 0, empty monitors), sets the new values
and runs again, instead of creating the objects and generating their code anew (about half the cost of a
100 ms spiking trial at N = 100). Brian2's seed is set again before each run, as a fresh build does, so a
re-run gives the same numbers as a fresh build, bit for bit (tested).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import time

import numpy as np

from astrogate.errors import InputError
from astrogate.models.abstract import AstroGateModel, Trajectory, check_finite, sample_steps
from astrogate.models import checks
from astrogate.machine import require_memory
from astrogate.models.checks import euler_steps
from astrogate.models.parameters import Parameters
from astrogate.models.patterns import finite_nonempty, real_array, validate_cue, validate_patterns
from astrogate.models.spiking_equations import SPIKING, SpikingParameters
from astrogate.models.units import argument_in_units
from astrogate.network import devices
from astrogate.network.memory import AstrocyteGatedMemory, NetworkSettings, network_bytes, network_settings


RUNTIME_SNAPSHOT = "astrogate_session_build"  # Network.store name of a runtime build's initial state


class Brian2Session:
    """A device and (after the first run) a built network that later runs reuse where they can."""

    def __init__(self, device: str = "runtime", target: str = "cython", build_dir=None, *,
                 settings: NetworkSettings | None = None, compute_capability: float | None = None, threads: int = 1,
                 **network_options):
        """device, target, build_dir, compute_capability and threads choose the device (network/devices.py);
        `settings` (a NetworkSettings) or its fields as keywords (gating, neuron, spiking, record_every,
        method, ...) how the memory's network is built."""
        self.choice = devices.check_device(device, target, build_dir, compute_capability, threads)
        settings = network_settings(settings, network_options)
        if network_options:
            raise InputError(f"unknown option(s) {', '.join(sorted(network_options))}: a session takes device, "
                             f"target, build_dir, compute_capability, threads and the network settings "
                             f"{', '.join(NetworkSettings.__dataclass_fields__)}")
        if settings.spiking is not None and settings.neuron not in SPIKING:
            raise InputError(f"spiking parameters (nu_max, tau_r, readout) need --neuron poisson or lif, not "
                             f"{settings.neuron!r}")
        if settings.neuron in SPIKING and settings.spiking is None:
            settings = settings.changed(spiking=SpikingParameters())
        self.settings = settings
        self.method, self.gating, self.neuron = settings.method, settings.gating, settings.neuron
        self.spiking, self.record_every = settings.spiking, settings.record_every
        self.memory: AstrocyteGatedMemory | None = None  # the built network's memory ...
        self.net = None  # ... and its Network
        self.build_path = None  # standalone project folder
        self._build_key = None
        self._generation = None  # runtime: devices.generation() when the network was built
        self._runs = 0

    def run(self, patterns, params: Parameters, u0, a0=None, duration: float = 500.0, current=None,
            t_current: float = 0.0, stop_after: str | None = None) -> tuple[AstrocyteGatedMemory, dict | None, dict]:
        """Simulate; returns (the memory, final state and traces as arrays, timings in seconds).
        stop_after (standalone devices): "code" generates the project, "binary" also compiles it;
        nothing runs and the results are None."""
        duration = checks.duration(duration)
        xi = validate_patterns(patterns)
        params = checks.instance(params, Parameters, "params", "an astrogate Parameters").resolved(xi.shape[1])
        # the initial state and the cue current, checked before anything is built
        u0 = validate_cue(u0, xi.shape[1], "u0")
        if u0.ndim != 1:
            raise InputError(f"u0: expected one state of length N = {xi.shape[1]}, got shape {u0.shape}")
        if a0 is not None:
            a0 = finite_nonempty(real_array(a0, "a0"), "a0")
            if a0.shape != (xi.shape[0],):
                raise InputError(f"a0: expected length K = {xi.shape[0]}, got shape {a0.shape}")
        if current is not None:
            current = validate_cue(current, xi.shape[1], "current")
            if current.ndim != 1:
                raise InputError(f"current: expected length N = {xi.shape[1]}, got shape {current.shape}")
        t_current = checks.finite_number(argument_in_units(t_current, "ms", "t_current"), "t_current")
        require_memory(network_bytes(*xi.shape, self.gating), f"a Brian2 network of K = {xi.shape[0]} astrocytes "
                       f"and N = {xi.shape[1]} neurons ({self.gating} gating)")
        return self._simulate(xi, params, (u0, a0, current, t_current), duration, stop_after)

    def run_batch(self, patterns, params, u0, a0=None, duration: float = 500.0, current=None,
                  t_current: float = 0.0) -> tuple[AstrocyteGatedMemory, list, dict]:
        """Simulate B problems of one size as one network of B independent copies (AstrocyteGatedMemory's
        batch): patterns B x K x N, params a Parameters or one per copy, u0 and current B x N, a0 B x K.
        Returns (the memory, each copy's results as `run` gives them, timings of the whole batch). A later
        batch of the same B, K, N, F, dt (and duration on standalone) re-uses the build (run_args)."""
        from astrogate.network.memory import batch_shape, batch_bytes, pattern_batch

        duration = checks.duration(duration)
        shape = batch_shape(patterns)
        if shape is None:
            raise InputError(f"patterns: expected a batch of pattern sets, B x K x N, got shape {np.shape(patterns)}")
        B, K, N = shape
        require_memory(batch_bytes(B, K, N, self.gating), f"a batch of B = {B} Brian2 networks of K = {K} astrocytes "
                       f"and N = {N} neurons ({self.gating} gating)")
        xi = pattern_batch(patterns)
        if isinstance(params, Parameters):
            params = (params,) * B
        if not (isinstance(params, (list, tuple)) and len(params) == B
                and all(isinstance(p, Parameters) for p in params)):
            raise InputError(f"params: expected a Parameters or one per copy (a sequence of B = {B}), got "
                             f"{checks.shown(params)}")
        params = tuple(p.resolved(N) for p in params)
        if len({(p.similarity, p.dt) for p in params}) > 1:
            raise InputError("similarity and dt are compiled into the network: one value for every copy of a batch")
        u0 = validate_cue(u0, N, "u0")
        if u0.shape != (B, N):
            raise InputError(f"u0: expected B x N = {B} x {N}, got shape {u0.shape}")
        if a0 is not None:
            a0 = finite_nonempty(real_array(a0, "a0"), "a0")
            if a0.shape != (B, K):
                raise InputError(f"a0: expected B x K = {B} x {K}, got shape {a0.shape}")
        if current is not None:
            current = validate_cue(current, N, "current")
            if current.shape != (B, N):
                raise InputError(f"current: expected B x N = {B} x {N}, got shape {current.shape}")
        t_current = checks.finite_number(argument_in_units(t_current, "ms", "t_current"), "t_current")
        memory, results, timings = self._simulate(xi, params, (u0, a0, current, t_current), duration, None)
        return memory, split_batch_results(memory, results), timings

    def _simulate(self, xi, params, initial: tuple, duration: float, stop_after: str | None):
        """Build (or re-use) the network of `xi` (K x N, or a batch B x K x N with one Parameters per copy) and
        run it from `initial` (u0, a0, current, t_current)."""
        import brian2 as b2

        first = params[0] if xi.ndim == 3 else params  # a batch's similarity and dt: the same for every copy
        n_steps = euler_steps(duration, first.dt)
        if n_steps < 1:
            raise InputError(f"duration {duration} ms is shorter than one step dt = {first.dt} ms")
        # what a build fixes: a run with the same key re-uses the build
        key = (xi.shape, first.similarity, first.dt, self.record_every)
        if self.choice.standalone:
            key += (n_steps,)  # the duration is compiled in
        elif self.spiking is not None:  # runtime: the readout (structure) and the seed are set at the build
            key += (self.spiking.readout, self.spiking.seed)
        if self.gating == "wired":  # the patterns are compiled into the synapses
            key += (hashlib.sha256(xi.tobytes()).hexdigest(),)
        timings = {}
        # a runtime network built before the device was last activated or reset has been forgotten
        reuse = self._build_key == key and (self.choice.standalone or self._generation == devices.generation())
        start = time.perf_counter()
        if not reuse:
            self._build_key = None
            self.build_path = devices.activate(self.choice, first.dt)
            # a fixed name (the device was just reset): the same object and file names in every build
            record_every = first.dt if self.record_every is None else self.record_every
            self.memory = AstrocyteGatedMemory(xi, first, self.settings.changed(record_every=record_every,
                                                                              spiking=self.spiking), name="agm")
            self.net = b2.Network(self.memory)
            if self.spiking is not None:
                b2.seed(self.spiking.seed)  # Poisson draws; on standalone compiled into the build
        elif not self.choice.standalone:
            self.net.restore(RUNTIME_SNAPSHOT)  # t = 0, monitors empty, the state of the build
            if self.spiking is not None:
                b2.seed(self.spiking.seed)  # the random numbers of a fresh build
        state = self.memory.state_values(xi, *initial, params, self.spiking)
        if self.choice.standalone:
            if not reuse:
                self.memory.apply_state(state)  # the build's defaults; each run passes its own as run_args
                what = f"{'generating' if stop_after == 'code' else 'building'} the {self.choice.name} project " \
                       f"of {network_size(xi)} in {self.build_path}"
                expected = "code generation: seconds" if stop_after == "code" else \
                    devices.expected_build_time(self.choice.name)
                with devices.announced_build(what, expected):
                    self.net.run(n_steps * first.dt * b2.ms)
                    _build_standalone(self.build_path, compile=stop_after != "code")
                self._build_key = key if stop_after is None else None
            timings["build_seconds"] = time.perf_counter() - start
            if stop_after is not None:
                return self.memory, None, timings
            start = time.perf_counter()
            self._runs += 1
            b2.device.run(directory=str(self.build_path), results_directory=f"results_{self._runs}",
                          with_output=False, run_args=self.memory.run_args(state))
        else:
            if stop_after is not None:
                raise InputError("build-only runs are for the standalone devices (cpp_standalone, cuda_standalone)")
            self.memory.apply_state(state)
            if not reuse:
                expected = devices.expected_build_time("runtime", self.choice.target)
                with (devices.announced_build(f"compiling the network's code ({network_size(xi)})",
                                              expected) if expected else contextlib.nullcontext()):
                    self.net.run(0 * b2.ms)  # code generation and Cython compilation
                self.net.store(RUNTIME_SNAPSHOT)
                self._build_key, self._generation = key, devices.generation()
            timings["build_seconds"] = time.perf_counter() - start
            start = time.perf_counter()
            self.net.run(n_steps * first.dt * b2.ms)
        timings["run_seconds"] = time.perf_counter() - start
        timings["reused_build"] = reuse
        return self.memory, read_results(self.memory), timings

    def close(self) -> None:
        """Remove a standalone build that lives in the temporary folder (a --build-dir one is kept)."""
        if self.build_path is not None and self.choice.build_root is None:
            shutil.rmtree(self.build_path, ignore_errors=True)
        self.build_path = None
        self._build_key = None
        self.memory = None
        self.net = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _build_standalone(directory, compile: bool = True) -> None:
    from brian2 import device

    try:
        device.build(directory=str(directory), compile=compile, run=False, with_output=False)
    except RuntimeError as exc:
        raise InputError(f"the standalone project in {directory} did not compile ({exc}); "
                         "cpp_standalone needs a C++ compiler (g++) on PATH") from None


def read_results(memory: AstrocyteGatedMemory) -> dict:
    """Final state and monitor traces as plain arrays, steps counted from 0."""
    astro = memory.monitors["astrocytes"]
    dt = memory.params.dt
    results = {
        "u": np.array(memory.neurons.u[:]),
        "a": np.array(memory.astrocytes.a[:]),
        "steps": np.rint(np.asarray(astro.t / _ms()) / dt).astype(int),
        "m": np.array(astro.m[:]).T,
        "g": np.array(astro.g[:]).T,
        "neuron_u": np.array(memory.monitors["neurons"].u[:]).T,
        "neuron_v": np.array(memory.monitors["neurons"].v[:]).T,
    }
    if "energy" in memory.monitors:
        energy = memory.monitors["energy"].L
        results["energy"] = np.array(energy[0] if memory.batch is None else energy[:])  # a batch: B x samples
    if "spike_counts" in memory.monitors:
        results["spike_counts"] = np.array(memory.monitors["spike_counts"].count[:])
        results["expected_counts"] = np.array(memory.neurons.expected[:])
    if "raster" in memory.monitors:
        raster = memory.monitors["raster"]
        results["raster_i"] = np.array(raster.i[:])
        results["raster_t"] = np.array(raster.t / _ms())
        results["raster_neurons"] = len(raster.source)
    return results


def network_size(xi: np.ndarray) -> str:
    """K = .., N = .. of a network (B = .., K = .., N = .. of a batch), for messages."""
    return ("" if xi.ndim == 2 else f"B = {xi.shape[0]}, ") + f"K = {xi.shape[-2]}, N = {xi.shape[-1]}"


def split_batch_results(memory: AstrocyteGatedMemory, results: dict) -> list:
    """A batch's read_results as one dict per copy, each as one memory's (its own K astrocytes, N neurons,
    sampled neurons and hub element)."""
    B, K, N = memory.batch, memory.K, memory.N
    sampled = len(memory.neuron_sample)
    copies = []
    for b in range(B):
        astro, neurons = slice(b * K, (b + 1) * K), slice(b * sampled, (b + 1) * sampled)
        one = {"u": results["u"][b * N:(b + 1) * N], "a": results["a"][astro], "steps": results["steps"],
               "m": results["m"][:, astro], "g": results["g"][:, astro],
               "neuron_u": results["neuron_u"][:, neurons], "neuron_v": results["neuron_v"][:, neurons]}
        if "energy" in results:
            one["energy"] = results["energy"][b]
        if "spike_counts" in results:
            one["spike_counts"] = results["spike_counts"][b * N:(b + 1) * N]
            one["expected_counts"] = results["expected_counts"][b * N:(b + 1) * N]
        copies.append(one)
    return copies


def _ms():
    from brian2 import ms

    return ms


def trajectory_from_results(model: AstroGateModel, results: dict, n_steps: int, tol: float,
                            record_every: float | None = None, method: str = "euler") -> Trajectory:
    """The samples the abstract model's fixed-step integrator would keep (same steps, same times), plus the
    final state."""
    dt = model.params.dt
    wanted = sample_steps(n_steps, dt, record_every)
    keep = np.isin(results["steps"], wanted[wanted < n_steps])
    u, a = results["u"], results["a"]
    check_finite(u, a, n_steps * dt)  # Brian2 ran the full duration: its end state tells whether it overflowed
    du, da = model.derivatives(u, a)
    converged = np.asarray(tol > 0 and max(np.max(np.abs(du)), np.max(np.abs(da))) < tol)
    energy = results.get("energy")
    return Trajectory(
        t=np.append(results["steps"][keep], n_steps) * dt,
        u=u,
        a=a,
        overlaps=np.vstack([results["m"][keep], model.overlaps(model.rates(u))]),
        gains=np.vstack([results["g"][keep], model.gains(a)]),
        energy=np.append(energy[keep], model.energy(u, a)) if energy is not None else np.array([model.energy(u, a)]),
        converged=converged,
        t_converged=np.asarray(np.nan),
        steps=n_steps,
        method=method,
        stop_reason="full duration",
        extra={"neuron_u": results["neuron_u"][keep], "neuron_v": results["neuron_v"][keep]},
    )


def require_gpu() -> None:
    from astrogate.network.cuda import detect_compute_capability

    if detect_compute_capability() is None:
        raise InputError("no NVIDIA GPU found: cuda_standalone cannot run here; "
                         "use --build-only DIR to generate and compile the CUDA project without running it")


def build_brian2_project(problem, params: Parameters, build_dir, duration: float = 500.0, device: str = "cuda_standalone",
                         *, compute_capability: float | None = None, compile: bool = True, **network_options) -> dict:
    """Generate (and unless compile=False, compile) the standalone project of one retrieval in a fresh
    subfolder of build_dir without running it (cuda_standalone on a machine without a GPU). network_options:
    NetworkSettings' fields (gating, neuron, spiking, record_every, ...). Returns where and how long."""
    if device not in devices.STANDALONE:
        raise InputError(f"--build-only is for the standalone devices ({', '.join(devices.STANDALONE)}), not {device!r}")
    session = Brian2Session(device, build_dir=build_dir, compute_capability=compute_capability, **network_options)
    gating, neuron = session.gating, session.neuron
    model = AstroGateModel(problem.patterns, params)
    u0, a0 = model.initial_state(problem.cue)
    _, _, timings = session.run(model.xi, model.params, u0, a0, duration, stop_after="binary" if compile else "code")
    binary = session.build_path / "main"
    if compile and not binary.exists():
        raise InputError(f"the project in {session.build_path} compiled without producing {binary.name}")
    info = {"device": device, "gating": gating, "neuron": neuron, "project": str(session.build_path),
            "binary": str(binary) if compile else None, "build_seconds": timings["build_seconds"]}
    if device == "cuda_standalone":
        from brian2 import prefs

        info["compute_capability"] = prefs.devices.cuda_standalone.cuda_backend.compute_capability
    return info
