"""One retrieval: the problem (patterns, cue, target), a run on a backend, the result record.

The result is a plain dict with the same keys for every backend, so that `astrogate recall
--json` output of the abstract model and of the Brian2 networks can be compared directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from astrogate.errors import InputError
from astrogate.models.abstract import AstroGateModel, Trajectory
from astrogate.models.parameters import Parameters
from astrogate.models.patterns import (
    flip_cue,
    load_array,
    random_patterns,
    validate_cue,
    validate_patterns,
)

BACKENDS = ("abstract", "brian2")
# traces in the result are kept for the patterns that matter most (by final overlap), not all K
TRACED_PATTERNS = 8
# relative size of an energy change that is floating-point round-off of the sums in L
ROUND_OFF = 1e-12


@dataclass
class RecallProblem:
    patterns: np.ndarray  # K x N
    cue: np.ndarray  # N
    target: int | None = None  # the pattern the cue was made from, when known
    description: dict = field(default_factory=dict)

    def __post_init__(self):
        self.patterns = validate_patterns(self.patterns)
        self.cue = validate_cue(self.cue, self.patterns.shape[1])
        if self.cue.ndim != 1:
            raise InputError(f"cue: expected one cue of length N = {self.patterns.shape[1]}, got shape {self.cue.shape}")
        if self.target is not None and not 0 <= self.target < self.patterns.shape[0]:
            raise InputError(f"target {self.target} is not a pattern index (0 <= target < K = {self.patterns.shape[0]})")


def generated_problem(K: int, N: int, correlation: float = 0.0, flip: float = 0.2, seed: int = 0,
                      target: int | None = None) -> RecallProblem:
    """Patterns by the parent model and a cue made by flipping a fraction of the target's bits."""
    rng = np.random.default_rng(seed)
    patterns = random_patterns(K, N, rng, correlation)
    if target is None:
        target = int(rng.integers(K))
    elif not 0 <= target < K:
        raise InputError(f"target {target} is not a pattern index (0 <= target < K = {K})")
    cue = flip_cue(patterns[target], flip, rng)
    return RecallProblem(patterns, cue, target,
                         dict(source="generated", K=K, N=N, correlation=correlation, flip=flip, seed=seed))


def file_problem(patterns_path, cue_path, target: int | None = None) -> RecallProblem:
    patterns = validate_patterns(load_array(patterns_path, "patterns"), f"patterns file {str(patterns_path)!r}")
    cue = validate_cue(load_array(cue_path, "cue"), patterns.shape[1], f"cue file {str(cue_path)!r}")
    return RecallProblem(patterns, cue, target,
                         dict(source="files", patterns=str(patterns_path), cue=str(cue_path)))


def run_recall(problem: RecallProblem, params: Parameters, duration: float = 500.0, method: str = "euler",
               tol: float = 1e-8, backend: str = "abstract", stop: str = "fixed_point", dtype: str = "float64",
               **backend_options) -> dict:
    """Run one retrieval and return the result record (see module docstring). stop and dtype: see
    AstroGateModel.run (abstract backend only)."""
    if backend == "abstract":
        if backend_options:
            raise InputError(f"options {sorted(backend_options)} apply to the brian2 backend only")
        model = AstroGateModel(problem.patterns, params)
        start = time.perf_counter()
        trajectory = model.run(problem.cue, duration=duration, method=method, tol=tol, stop=stop, dtype=dtype)
        timings = {"run_seconds": time.perf_counter() - start}
        return result_record(model, trajectory, problem, timings, backend="abstract")
    if backend == "brian2":
        from astrogate.network.recall import run_brian2_recall  # Brian2 is imported only when asked for

        if (stop, dtype) != ("fixed_point", "float64") or method == "exponential_euler":
            raise InputError("the brian2 backend runs forward Euler in float64 for the whole duration: "
                             "--stop, --dtype and --method exponential_euler apply to the abstract backend")

        return run_brian2_recall(problem, params, duration=duration, method=method, tol=tol, **backend_options)
    raise InputError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")


def result_record(model: AstroGateModel, trajectory: Trajectory, problem: RecallProblem, timings: dict,
                  backend: str, **extra) -> dict:
    """The backend-independent result dict."""
    v = model.rates(trajectory.u)
    m = model.overlaps(v)
    g = model.gains(trajectory.a)
    retrieved = int(np.argmax(m))
    traced = _traced_patterns(m, problem.target)
    energy = np.asarray(trajectory.energy)
    record = {
        "backend": backend,
        "params": model.params.to_dict(),
        "problem": problem.description,
        "K": model.K,
        "N": model.N,
        "target": problem.target,
        "retrieved": retrieved,
        "exact_match": bool(np.array_equal(np.sign(v), np.sign(model.xi[retrieved]))),
        "target_overlap": None if problem.target is None else float(m[problem.target]),
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
        retrieved += f", {verdict}; overlap with target {result['target_overlap']:.4f} (cue {result['cue_overlap']:.4f})"
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
    if len(result["energy"]) == 1:
        energy = "L not traced (spiking neurons: no Lyapunov function)"
    elif result["energy_increase"] <= ROUND_OFF * result["energy_scale"]:
        energy = "L never increased (beyond round-off)"
    else:
        energy = f"L increased by up to {result['energy_increase']:.3g} between samples"
    lines.append(f"{when}; {energy}")
    return "\n".join(lines)
