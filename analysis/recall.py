"""One retrieval: the problem (patterns, cue, target), a run on a backend, the result record.

The result is a plain dict with the same keys for every backend, so that `astrogate recall
--json` output of the abstract model and of the Brian2 networks can be compared directly.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from astrogate.analysis.metrics import late_half, softmax_residual_trace, trial_metrics
from astrogate.analysis.problems import generated_set
from astrogate.errors import InputError
from astrogate.models.abstract import AstroGateModel, Trajectory
from astrogate.models import checks
from astrogate.models.checks import euler_steps, seed as check_seed
from astrogate.models.parameters import Parameters
from astrogate.models.patterns import PATTERN_COPIES, load_array, validate_cue, validate_patterns

if TYPE_CHECKING:  # annotations only: importing these imports Brian2
    from astrogate.models.spiking_equations import SpikingParameters
    from astrogate.network.recall import Brian2Session

BACKENDS = ("abstract", "brian2")
# traces in the result are kept for the patterns that matter most (by final overlap), not all K
TRACED_PATTERNS = 8
# relative size of an energy change that is floating-point round-off of the sums in L
ROUND_OFF = 1e-12


@dataclass
class RecallProblem:
    """A retrieval problem: patterns (K x N), one cue (N) and, when known, the target pattern's index."""

    patterns: np.ndarray  # K x N
    cue: np.ndarray  # N
    target: int | None = None  # the pattern the cue was made from, when known
    description: dict = field(default_factory=dict)

    def __post_init__(self):
        self.patterns = validate_patterns(self.patterns)
        self.cue = validate_cue(self.cue, self.patterns.shape[1])
        if self.cue.ndim != 1:
            raise InputError(f"cue: expected one cue of length N = {self.patterns.shape[1]}, got shape {self.cue.shape}")
        if self.target is not None:
            self.target = checks.index(self.target, self.patterns.shape[0], "target")
        checks.instance(self.description, dict, "description", "a dict")


def generated_problem(K: int, N: int, correlation: float = 0.0, flip: float = 0.2, seed: int = 0,
                      target: int | None = None) -> RecallProblem:
    """K random +-1 patterns of N bits by the parent model (pairwise correlation `correlation`), a target
    (random unless given) and a cue made by flipping a fraction `flip` of the target's bits."""
    rng = np.random.default_rng(check_seed(seed))
    flip = checks.fraction(flip, "flip")
    if target is not None:
        target = checks.index(target, checks.whole_number(K, "K", 1), "target")
    patterns, target, cue = generated_set(K, N, rng, correlation, flip=flip, targets=target)
    return RecallProblem(patterns, cue, int(target),
                         dict(source="generated", K=K, N=N, correlation=correlation, flip=flip, seed=seed))


def file_problem(patterns_path, cue_path, target: int | None = None) -> RecallProblem:
    """Patterns (K x N) and a cue (N) from .npy files."""
    patterns_path, cue_path = checks.path(patterns_path, "patterns_path"), checks.path(cue_path, "cue_path")
    patterns = validate_patterns(load_array(patterns_path, "patterns", PATTERN_COPIES, zero_rows="pattern"),
                                 f"patterns file {str(patterns_path)!r}")
    cue = validate_cue(load_array(cue_path, "cue"), patterns.shape[1], f"cue file {str(cue_path)!r}")
    return RecallProblem(patterns, cue, target,
                         dict(source="files", patterns=str(patterns_path), cue=str(cue_path)))


class RecallResult(Mapping):
    """The record of one retrieval: its fields as attributes (``result.exact_match``) and as a mapping
    (``result["exact_match"]``); `to_dict` gives the plain dict that ``astrogate recall --json`` writes.

    Fields for every backend: backend, params, problem, K, N, target, retrieved (index of the pattern of
    largest overlap), exact_match (sign(v) equals the target in every bit; the retrieved pattern where no target
    is given), nearest_accuracy (retrieved == target), final_overlap (the overlap with the target), cue_overlap,
    max_gain, softmax_residual (max |g - softmax(beta F(m))| at the end), energy_increase, energy_scale,
    converged, stop_reason, t_converged (ms), steps, method, the traces t (ms), energy, trace_patterns,
    overlap_trace, gain_trace, the final state v, u (N), a, g, m (K), and timings (s). The brian2 backend
    adds `brian2` (device, gating, neuron model, spikes for spiking neurons).
    """

    def __init__(self, record: dict):
        if not isinstance(record, Mapping):
            raise InputError(f"RecallResult takes the record of a retrieval (a dict), got {type(record).__name__}")
        self._record = dict(record)

    def __getattr__(self, name):
        try:
            return self.__dict__["_record"][name]
        except KeyError:
            raise AttributeError(f"RecallResult has no field {name!r}") from None

    def __getitem__(self, key):
        return self._record[key]

    def __iter__(self):
        return iter(self._record)

    def __len__(self):
        return len(self._record)

    def to_dict(self) -> dict:
        return dict(self._record)

    def summary(self) -> str:
        """A few human lines (what `astrogate recall` prints)."""
        return summary(self._record)

    def __repr__(self):
        return (f"RecallResult(backend={self.backend!r}, K={self.K}, N={self.N}, target={self.target}, "
                f"retrieved={self.retrieved}, exact_match={self.exact_match})")


def recall(problem: RecallProblem, params: Parameters | None = None, *, backend: str = "abstract",
           duration: float = 500.0, method: str = "euler", tol: float = 1e-8, stop: str = "fixed_point",
           dtype: str = "float64", **backend_options) -> RecallResult:
    """One retrieval of `problem` on a backend.

    Parameters
    ----------
    problem : RecallProblem
        Patterns (K x N), a cue (N) and, when known, the target index (`generated_problem`,
        `file_problem`, or ``RecallProblem(patterns, cue, target)`` from arrays).
    params : Parameters, optional
        Model parameters (the defaults of the model page if None).
    backend : {"abstract", "brian2"}
        The NumPy model, or the Brian2 network (`AstrocyteGatedMemory` run by a `Brian2Session`).
    duration : float
        Longest simulated time in ms.
    method : {"euler", "adaptive"}
        Forward Euler at params.dt (the reference, and what the Brian2 network computes), or SciPy's LSODA
        with error control (abstract backend only).
    tol : float
        The abstract backend stops once max|du/dt| and max|da/dt| (1/ms) fall below tol; the brian2 backend
        runs the full duration and reports whether the end state meets tol.
    stop : {"fixed_point", "decided"}
        Abstract backend: stop at the fixed point (tol), or as soon as the outcome is decided
        (AstroGateModel.run); the record's stop_rule says which rule stopped the run.
    dtype : {"float64", "float32"}
        Abstract backend: the working precision.
    **backend_options
        brian2 backend: device ("runtime", "cpp_standalone", "cuda_standalone"), target, gating, neuron
        ("rate", "poisson", "lif"), spiking (SpikingParameters), build_dir, record_every, threads, session.

    Returns
    -------
    RecallResult
    """
    checks.instance(problem, RecallProblem, "problem", "a RecallProblem (generated_problem, file_problem or "
                    "RecallProblem(patterns, cue, target))")
    params = Parameters() if params is None else checks.instance(params, Parameters, "params", "an astrogate Parameters")
    checks.one_of(backend, BACKENDS, f"unknown backend {checks.shown(backend)}")
    duration, tol = checks.duration(duration), checks.tolerance(tol)
    if backend == "abstract":
        if backend_options:
            raise InputError(f"options {sorted(backend_options)} apply to the brian2 backend only")
        model = AstroGateModel(problem.patterns, params)
        start = time.perf_counter()
        trajectory = model.run(problem.cue, duration=duration, method=method, tol=tol, stop=stop, dtype=dtype)
        timings = {"run_seconds": time.perf_counter() - start}
        return RecallResult(result_record(model, trajectory, problem, timings, backend="abstract"))
    if (stop, dtype) != ("fixed_point", "float64"):
        raise InputError("the brian2 backend runs in float64 for the whole duration: stop and dtype apply to "
                         "the abstract backend")
    return RecallResult(run_brian2_recall(problem, params, duration=duration, method=method, tol=tol,
                                          **backend_options))


def run_brian2_recall(problem, params: Parameters, duration: float = 500.0, method: str = "euler",
                      tol: float = 1e-8, device: str = "runtime", target: str = "cython",
                      gating: str = "factorised", build_dir=None, record_every: float | None = None,
                      current=None, t_current: float = 0.0, session: Brian2Session | None = None,
                      compute_capability: float | None = None, neuron: str = "rate",
                      spiking: SpikingParameters | None = None, threads: int = 1) -> dict:
    """One retrieval of `problem` on the Brian2 network; the record of analysis.recall.result_record
    plus `brian2` (device, target, gating, neuron model, build directory; spikes for spiking neurons)
    and build/run times in `timings`.
    Pass a `session` to reuse a standalone build across calls (then device, target, gating, build_dir,
    record_every, neuron, spiking and threads come from the session)."""
    # imported here, not at the top: Brian2 takes seconds to import and the abstract backend needs none of it
    from astrogate.network.recall import Brian2Session, require_gpu, trajectory_from_results

    if method not in ("euler", "exponential_euler"):
        raise InputError(f"the brian2 backend takes fixed steps of dt: method 'euler' or 'exponential_euler' "
                         f"(as Brian2's state updaters), got {method!r}")
    if tol < 0 or not np.isfinite(tol):
        raise InputError(f"tol must be >= 0, got {tol!r}")
    own_session = session is None
    if own_session:
        session = Brian2Session(device, target, gating, build_dir, record_every, neuron,
                                compute_capability=compute_capability, spiking=spiking, threads=threads,
                                method=method)
    elif session.method != method:
        raise InputError(f"this session's network integrates with {session.method!r}, not {method!r}")
    if session.choice.name == "cuda_standalone":
        require_gpu()
    try:
        model = AstroGateModel(problem.patterns, params)
        u0, a0 = model.initial_state(problem.cue)
        memory, results, timings = session.run(model.xi, model.params, u0, a0, duration, current, t_current)
        n_steps = euler_steps(duration, model.params.dt)
        trajectory = trajectory_from_results(model, results, n_steps, tol, session.record_every, method)
        info = {"device": session.choice.name, "target": session.choice.target if session.choice.name == "runtime"
                else None, "gating": session.gating,
                "build_dir": str(session.build_path) if session.choice.build_root is not None else None,
                "neuron_sample": memory.neuron_sample,
                # every recorded step, all K gains (the record's gain_trace keeps only a few patterns)
                "simplex_error": float(np.max(np.abs(results["g"].sum(axis=1) - 1.0))),
                "neuron": session.neuron, "threads": session.choice.threads}
        if session.spiking is not None:
            info["spiking"] = spike_summary(model, session.spiking, results, duration)
        return result_record(model, trajectory, problem, timings, backend="brian2", brian2=info)
    finally:
        if own_session:
            session.close()


RESIDUAL_SAMPLES = 1000


def spike_summary(model: AstroGateModel, sp: SpikingParameters, results: dict, duration: float) -> dict:
    """Spiking parameters, per-neuron counts, the raster of the first neurons, and the rate-coded gains
    against softmax(beta F(m_hat)) at every recorded step (all K patterns)."""
    counts, expected = results["spike_counts"], results["expected_counts"]
    residual = softmax_residual_trace(model, results["m"], results["g"])
    stride = -(-len(residual) // RESIDUAL_SAMPLES)  # the record keeps at most RESIDUAL_SAMPLES of the trace
    return {
        "params": sp.to_dict(),
        "spike_counts": counts,
        "expected_counts": expected,  # integral of nu_max (1 + tanh(gamma u)) / 2 over the run
        "mean_rate_hz": float(counts.sum() / model.N / (duration * 1e-3)),
        # (count - expected) / sqrt(expected) over all neurons together: ~N(0, 1) for Poisson neurons
        "total_count_z": float((counts.sum() - expected.sum()) / np.sqrt(max(expected.sum(), 1.0))),
        "raster_neurons": results.get("raster_neurons", 0),  # neurons 0 .. raster_neurons - 1
        "raster_i": results.get("raster_i", np.array([], dtype=int)),
        "raster_t": results.get("raster_t", np.array([])),
        "trace_t": results["steps"][::stride] * model.params.dt,
        "softmax_residual_trace": residual[::stride],  # max_mu |g - softmax(beta F(m_hat))|
        "mean_softmax_residual": float(np.mean(late_half(residual))),  # second half, every recorded step
        # all K, averaged over the second half (the record's traces keep only a few patterns)
        "late_mean_gains": np.mean(late_half(results["g"]), axis=0),
        "late_mean_overlaps": np.mean(late_half(results["m"]), axis=0),
    }


def result_record(model: AstroGateModel, trajectory: Trajectory, problem: RecallProblem, timings: dict,
                  backend: str, **extra) -> dict:
    """The backend-independent result dict."""
    v = model.rates(trajectory.u)
    m = model.overlaps(v)
    g = model.gains(trajectory.a)
    retrieved = int(np.argmax(m))
    traced = _traced_patterns(m, problem.target)
    # the metrics of analysis/metrics.py, against the target (or, with none given, the retrieved pattern)
    goal = retrieved if problem.target is None else problem.target
    measured = trial_metrics(v[None], model.xi, [goal], problem.cue[None])
    energy = np.asarray(trajectory.energy)
    if not np.all(np.isfinite(energy)):  # a finite state whose L overflows (a tiny beta, a huge kappa)
        first = int(np.argmax(~np.isfinite(energy)))
        raise InputError(f"the Lyapunov function L became non-finite (overflow) by t = {trajectory.t[first]:g} ms: "
                         f"its scales kappa K N = {model.kappa_K * model.N:g} and kappa K N / beta (beta = "
                         f"{model.beta:g}) exceed float64; use beta = 0 for no allocation, or smaller kappa")
    record = {
        "backend": backend,
        "params": model.params.to_dict(),
        "problem": problem.description,
        "K": model.K,
        "N": model.N,
        "target": problem.target,
        "retrieved": retrieved,
        "exact_match": bool(measured["exact_match"][0]),
        "nearest_accuracy": None if problem.target is None else bool(measured["nearest_accuracy"][0]),
        "final_overlap": None if problem.target is None else float(measured["final_overlap"][0]),
        "cue_overlap": None if problem.target is None else float(model.xi[problem.target] @ problem.cue / model.N),
        "max_gain": float(g.max()),
        "softmax_residual": float(model.fixed_point_residual(trajectory.u, trajectory.a)),
        "energy_increase": float(max(0.0, np.max(np.diff(energy), initial=0.0))),
        "energy_scale": float(np.max(np.abs(energy))),
        "converged": bool(trajectory.converged),
        "stop_reason": trajectory.stop_reason,
        "stop_rule": str(trajectory.stop_rule),  # "fixed point", "decided" or "time limit"
        "t_converged": float(trajectory.t_converged),
        "steps": trajectory.steps,
        "method": trajectory.method,
        "t": trajectory.t,
        "energy": energy,
        "trace_patterns": traced,
        "overlap_trace": trajectory.overlaps[:, traced],
        "gain_trace": trajectory.gains[:, traced],
        "v": v,
        "u": trajectory.u,
        "a": trajectory.a,
        "g": g,
        "m": m,
        "timings": timings,
    }
    record.update(extra)
    return record


def _traced_patterns(m: np.ndarray, target: int | None) -> list[int]:
    order = [int(i) for i in np.argsort(-m)[:TRACED_PATTERNS]]
    if target is not None and target not in order:
        order[-1] = target
    return order


def summary(result: dict) -> str:
    """A few human lines about one retrieval."""
    lines = [f"{result['backend']} backend, {result['method']}: K = {result['K']} patterns, N = {result['N']} neurons, "
             f"beta = {result['params']['beta']:g}"]
    retrieved = f"retrieved pattern {result['retrieved']} ({'exact' if result['exact_match'] else 'not exact'})"
    if result["target"] is not None:
        verdict = "correct" if result["retrieved"] == result["target"] else f"WRONG, target was {result['target']}"
        retrieved += f", {verdict}; overlap with target {result['final_overlap']:.4f} (cue {result['cue_overlap']:.4f})"
    lines.append(retrieved)
    lines.append(f"max gain {result['max_gain']:.4f}; fixed-point residual max|g - softmax(beta F(m))| = "
                 f"{result['softmax_residual']:.2e}")
    if result.get("stop_rule") == "decided":
        when = f"outcome decided at t = {result['t_converged']:.1f} ms (stopped before the fixed point)"
    elif result["converged"] and result["t_converged"] is not None and np.isfinite(result["t_converged"]):
        when = f"converged at t = {result['t_converged']:.1f} ms"
    elif result["converged"]:  # the brian2 backend runs the full duration and judges the end state
        when = f"ran the full {result['t'][-1]:.1f} ms; converged by then"
    else:
        when = f"stopped at the time limit t = {result['t'][-1]:.1f} ms without converging"
    if "spiking" in (result.get("brian2") or {}):
        energy = "L not traced (spiking neurons: no Lyapunov function)"
    elif result["energy_increase"] <= ROUND_OFF * result["energy_scale"]:
        energy = "L never increased (beyond round-off)"
    else:
        energy = f"L increased by up to {result['energy_increase']:.3g} between samples"
    lines.append(f"{when}; {energy}")
    return "\n".join(lines)
