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
from astrogate.models import checks
from astrogate.models.abstract import (REFERENCE_SETTINGS, AstroGateModel, RunInputs, RunSettings, Trajectory,
                                       convergence_time, path_length)
from astrogate.models.checks import euler_steps, nonnegative_number, seed as check_seed
from astrogate.models.parameters import PARAMETER_NAMES, Parameters
from astrogate.models.patterns import PATTERN_COPIES, load_array, validate_cue, validate_patterns
from astrogate.models.units import argument_in_units

if TYPE_CHECKING:  # annotations only: importing these imports Brian2
    from astrogate.models.spiking_equations import SpikingParameters
    from astrogate.network.recall import Brian2Session

RUN_SETTING_FIELDS = tuple(RunSettings.__dataclass_fields__)
# traces in the result are kept for the patterns that matter most (by final overlap), not all K
TRACED_PATTERNS = 8
# relative size of an energy change that is floating-point round-off of the sums in L
ROUND_OFF = 1e-12


@dataclass
class RecallProblem:
    """A retrieval problem: patterns (K x N), one cue (N) and, when known, the target pattern's index.

    Attributes
    ----------
    patterns : array (K, N)
        The stored patterns, +-1 (or real values, normalised so that mean(xi_mu^2) = 1); 0/1 or boolean
        entries are read as -1/+1 with a warning.
    cue : array (N)
        The initial state's direction: u(0) = cue_scale * cue.
    target : int or None
        The index of the pattern the cue was made from, when known.
    description : dict
        How it was made (what `RecallResult.problem` reports).
    """

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
    (``result["exact_match"]``); `to_dict` gives them as JSON-ready values, what ``astrogate recall --json``
    writes. Times are in ms; the state and the overlaps are dimensionless.

    Attributes
    ----------
    backend : str
        "abstract" or "brian2".
    params : dict
        The model parameters of the run (`Parameters` as a dict, beta explicit; times in ms).
    paper_params : dict
        The same in the paper's names: T, tau_p, tau_x, sigma (docs/model.md, the mapping).
    problem : dict
        How the problem was made (generated: K, N, correlation, flip, seed; files: their paths).
    K, N : int
        Patterns and neurons.
    target : int or None
        The pattern the cue was made from, when known.
    retrieved : int
        The pattern the final state is at: the one of largest |overlap| ``|m_mu|``.
    retrieved_sign : int
        +1, or -1 for a mirror state (the state is near ``-xi_retrieved``: with the default F(m) = m^2/2 as
        much an attractor as the pattern itself).
    mirror : bool
        ``retrieved_sign == -1``.
    exact_match : bool
        sign(v) equals the target (the retrieved pattern when no target is given) in every bit.
    nearest_accuracy : bool or None
        The target has the largest overlap m (as the retrieval benchmark counts it: False for the target's
        mirror); None without a target.
    final_overlap, cue_overlap : float or None
        The overlap with the target of the final rates v and of the cue (-1 to 1); None without a target.
    soft_hamming_error, hamming_error : float
        The paper's eq. 13, (1/2) sum_i |xi0_i - v_i|, and eq. 15, (1/2) sum_i |xi0_i - sign(u_i)|, against the
        target (the retrieved pattern when no target is given).
    perplexity : float
        exp(H[g]) of the final gains (eq. 14): 1 for one winner, K for uniform gains.
    convergence_time : float
        ms: from then on the overlaps and gains move by at most 1e-3 in all (docs/model.md).
    max_gain : float
        The largest final gain (1 when one astrocyte takes all).
    softmax_residual : float
        max |g - softmax(beta F(m))| at the end: 0 at a fixed point.
    energy_increase, energy_scale : float
        The largest increase of the Lyapunov function L between two samples (0 when it never rose), and
        max |L| (dimensionless).
    converged : bool
        max |du/dt| and max |da/dt| below tol (1/ms) at the end.
    stop_reason, stop_rule : str
        Why the run ended, and the rule: "fixed point", "decided" or "time limit".
    t_converged : float
        When the stopping rule held (ms); NaN for runs that went the full duration.
    steps : int
        Euler steps taken.
    method : str
        The integrator.
    form : str
        The form of the gains' equation: "logit" or "replicator" (the paper's eq. 6 by forward Euler).
    t : array
        Sample times (ms).
    energy : array
        L at the sample times (a single value for spiking neurons, which have no Lyapunov function).
    trace_patterns : list of int
        The patterns whose traces are kept: those of largest |overlap|, always with the target and the
        pattern of the largest final gain.
    overlap_trace, gain_trace : array (samples, len(trace_patterns))
        Their overlaps m and gains g at the sample times.
    v, u : array (N)
        Final rates tanh(gamma u) (spiking neurons: the rate-coded estimate) and states.
    a, g, m : array (K)
        Final logits, gains softmax(a) and overlaps xi v / N.
    timings : dict
        Seconds: run_seconds; brian2: build_seconds (network, code generation, compilation) and
        reused_build.
    brian2 : dict
        brian2 backend only: device, target, gating, neuron, threads, build_dir, neuron_sample,
        simplex_error (max |sum g - 1| over every recorded step), and for spiking neurons `spiking`:
        its parameters, spike counts per neuron, mean_rate_hz (Hz), the raster of the first neurons (times
        in ms), the residual of the rate-coded gains against softmax(beta F(m_hat)) and the gains and
        overlaps averaged over the second half.
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
        """The record as JSON-ready Python values (lists, floats, None for NaN): ``json.dumps(result.to_dict())``
        writes what ``astrogate recall --json`` writes."""
        from astrogate.analysis.io import to_jsonable

        return to_jsonable(self._record)

    def summary(self) -> str:
        """A few human lines (what `astrogate recall` prints)."""
        return summary(self._record)

    def __repr__(self):
        return (f"RecallResult(backend={self.backend!r}, K={self.K}, N={self.N}, target={self.target}, "
                f"retrieved={self.retrieved}, exact_match={self.exact_match})")


@dataclass(frozen=True)
class RecallRun:
    """One retrieval, resolved and checked once at the edge (`resolve_recall`): what a backend runs.

    Attributes
    ----------
    problem : RecallProblem
    params : Parameters
        The model parameters with the run's changes applied.
    backend : str
        The name of a registered backend (`BACKENDS`).
    duration : float
        Longest simulated time, ms.
    tol : float
        Fixed-point tolerance, 1/ms.
    settings : RunSettings
        How the abstract model integrates and stops; the brian2 backend takes its method only.
    inputs : RunInputs
        A cue current and how long it is on (u0 and a0 come from the cue).
    backend_options : dict
        The backend's own options: for brian2 the session's (device, target, gating, neuron, spiking, build_dir,
        record_every, compute_capability, threads), or {"session": a Brian2Session} to re-use a build; none for
        the abstract backend; a registered backend's are passed on as given, for it to check.
    """

    problem: RecallProblem
    params: Parameters
    backend: str
    duration: float
    tol: float
    settings: RunSettings
    inputs: RunInputs
    backend_options: dict


BACKENDS: dict = {}  # name -> run(RecallRun) -> result record; filled by register_backend


def register_backend(name: str, run) -> None:
    """Make `run` (a function of a RecallRun returning the result record of `result_record`) the backend `name`
    of `recall`, `resolve_recall` and the sweeps."""
    if not isinstance(name, str) or not name.isidentifier() or not callable(run):
        raise InputError(f"a backend is a name and a function of a RecallRun, got {checks.shown(name)}, "
                         f"{checks.shown(run)}")
    BACKENDS[name] = run


def resolve_recall(problem: RecallProblem, params: Parameters | None = None, *, backend: str = "abstract",
                   duration: float = 500.0, tol: float = 1e-8, **options) -> RecallRun:
    """The RecallRun of `recall`'s arguments: every setting checked here, once (see `recall`)."""
    checks.instance(problem, RecallProblem, "problem", "a RecallProblem (generated_problem, file_problem or "
                    "RecallProblem(patterns, cue, target))")
    params = Parameters() if params is None else checks.instance(params, Parameters, "params", "an astrogate Parameters")
    checks.one_of(backend, tuple(BACKENDS), f"unknown backend {checks.shown(backend)}")
    duration, tol = checks.duration(duration), checks.tolerance(tol)
    model_options = {k: options.pop(k) for k in list(options) if k in PARAMETER_NAMES}
    if model_options:
        params = params.updated(**model_options)
    settings = REFERENCE_SETTINGS.changed(**{k: options.pop(k) for k in list(options) if k in RUN_SETTING_FIELDS})
    if backend == "abstract":
        if options:
            raise InputError(f"options {sorted(options)} apply to the brian2 backend only")
        return RecallRun(problem, params, backend, duration, tol, settings, RunInputs(), {})
    if backend != "brian2":  # a registered backend checks its own options
        return RecallRun(problem, params, backend, duration, tol, settings, RunInputs(), options)
    from astrogate.network.memory import METHODS as BRIAN2_METHODS

    if settings.method not in BRIAN2_METHODS:
        raise InputError(f"the brian2 backend takes fixed steps of dt: method 'euler' or 'exponential_euler' "
                         f"(as Brian2's state updaters), got {checks.shown(settings.method)}")
    if (settings.stop, settings.dtype) != ("fixed_point", "float64"):
        raise InputError("the brian2 backend runs in float64 for the whole duration: stop and dtype apply to "
                         "the abstract backend")
    if settings.form != "logit":
        raise InputError("the brian2 backend integrates the logit form; form 'replicator' is the abstract "
                         "backend's")
    duration = argument_in_units(duration, "ms", "duration")
    tol = nonnegative_number(argument_in_units(tol, "1/ms", "tol"), "tol (1/ms)")
    inputs = RunInputs(current=options.pop("current", None),
                       t_current=argument_in_units(options.pop("t_current", 0.0), "ms", "t_current"))
    session = options.pop("session", None)
    unknown = sorted(set(options) - set(SESSION_OPTIONS))
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)}: the brian2 backend takes model parameters, "
                         f"{', '.join(SESSION_OPTIONS)}, current, t_current, session")
    if session is not None:
        if options:
            raise InputError(f"options {sorted(options)} come from the session passed")
        return RecallRun(problem, params, backend, duration, tol, settings, inputs, {"session": session})
    return RecallRun(problem, params, backend, duration, tol, settings, inputs, dict(options))


def recall(problem: RecallProblem, params: Parameters | None = None, *, backend: str = "abstract",
           duration: float = 500.0, tol: float = 1e-8, **options) -> RecallResult:
    """One retrieval of `problem` on a backend.

    Parameters
    ----------
    problem : RecallProblem
        Patterns (K x N), a cue (N) and, when known, the target index (`generated_problem`,
        `file_problem`, or ``RecallProblem(patterns, cue, target)`` from arrays).
    params : Parameters, optional
        Model parameters (the defaults of the model page if None).
    backend : {"abstract", "brian2"}
        The NumPy model, or the Brian2 network (`AstrocyteGatedMemory` run by a `Brian2Session`); or a backend
        added with `register_backend`.
    duration : float or Quantity
        Longest simulated time: ms, or a Brian2 time (``50*ms``).
    tol : float or Quantity
        The abstract backend stops once max|du/dt| and max|da/dt| fall below tol (1/ms, or a Brian2 rate; 0: runs
        the whole duration); the brian2 backend runs the full duration and reports whether the end state meets tol.
    **options
        Model parameters by name, in astrogate's or the paper's names (``T=0.01, tau_p=1, sigma=3``): they
        update `params`. The run settings (RunSettings' fields): method ("euler": forward Euler at params.dt, the
        reference and what the Brian2 network computes; "exponential_euler"; "adaptive": SciPy's LSODA, abstract
        backend only), stop ("fixed_point" or "decided", abstract backend), dtype ("float64" or "float32",
        abstract backend), form ("logit", or "replicator": the paper's eq. 6 by forward Euler on the gains,
        abstract backend), dt, decided_eps, decided_window. brian2 backend: device ("runtime",
        "cpp_standalone", "cuda_standalone"), target, gating, neuron ("rate", "poisson", "lif"), spiking
        (SpikingParameters), build_dir, record_every (ms, or a Brian2 time), current (N) and t_current (ms, or a
        Brian2 time: the cue current is on while t < t_current), compute_capability, threads, session.
        ``recall(problem, **astrogate.PAPER_PRESET)`` runs the paper's protocol.

    Returns
    -------
    RecallResult
    """
    run = resolve_recall(problem, params, backend=backend, duration=duration, tol=tol, **options)
    return RecallResult(BACKENDS[run.backend](run))


def run_abstract_recall(run: RecallRun) -> dict:
    """The abstract backend: the NumPy model (AstroGateModel.run) with the run's settings."""
    model = AstroGateModel(run.problem.patterns, run.params)
    start = time.perf_counter()
    trajectory = model.run(run.problem.cue, run.duration, run.settings, tol=run.tol)
    timings = {"run_seconds": time.perf_counter() - start}
    return result_record(model, trajectory, run.problem, timings, backend="abstract")


def run_brian2_recall(run: RecallRun) -> dict:
    """The brian2 backend: one retrieval on the Brian2 network; the record of result_record plus `brian2`
    (device, target, gating, neuron model, build directory; spikes for spiking neurons) and build/run times in
    `timings`. With ``run.backend_options["session"]`` a standalone build is re-used across calls (then device, target,
    gating, build_dir, record_every, neuron, spiking and threads come from the session)."""
    # imported here, not at the top: Brian2 takes seconds to import and the abstract backend needs none of it
    from astrogate.network.recall import Brian2Session, require_gpu

    method = run.settings.method
    session = run.backend_options.get("session")
    own_session = session is None
    if own_session:
        session = Brian2Session(method=method, **run.backend_options)
    elif session.method != method:
        raise InputError(f"this session's network integrates with {session.method!r}, not {method!r}")
    if session.choice.name == "cuda_standalone":
        require_gpu()
    try:
        model = AstroGateModel(run.problem.patterns, run.params)
        u0, a0 = model.initial_state(run.problem.cue)
        memory, results, timings = session.run(model.xi, model.params, u0, a0, run.duration, run.inputs.current,
                                               run.inputs.t_current)
        return _brian2_record(session, memory, model, run.problem, results, timings, run.duration, run.tol, method)
    finally:
        if own_session:
            session.close()


register_backend("abstract", run_abstract_recall)
register_backend("brian2", run_brian2_recall)


SESSION_OPTIONS = ("device", "target", "gating", "build_dir", "record_every", "neuron", "compute_capability",
                   "spiking", "threads")


def recall_batch(problems, params: Parameters | None = None, *, duration: float = 500.0, method: str = "euler",
                 tol: float = 1e-8, **options) -> list:
    """B retrievals on the Brian2 network as one network of B independent copies of the memory (one build,
    one run: `AstrocyteGatedMemory` with a batch of pattern sets); each result equals `recall(problem,
    backend="brian2")` of that problem alone, up to round-off.

    Parameters
    ----------
    problems : sequence of RecallProblem
        B problems, all of one size K x N (group problems of other sizes apart).
    params : Parameters, optional
        Model parameters for every problem (the defaults of the model page if None).
    duration, method, tol
        As `recall`'s brian2 backend.
    **options
        Model parameters by name, each one value for all problems or an array of one value per problem
        (``beta=[...]``, ``tau_g=...``: the copies' own group variables, so a standalone build re-runs with
        other values without recompiling); the brian2 backend's options as in `recall` (device, target,
        gating, neuron, spiking, build_dir, record_every, current (B x N), t_current, threads, session).

    Returns
    -------
    list of RecallResult
        One per problem; their timings are the whole batch's (``timings["batch"]`` = B).
    """
    from astrogate.network.memory import copy_parameters
    from astrogate.network.recall import Brian2Session, require_gpu

    problems = list(problems) if isinstance(problems, (list, tuple)) else problems
    if not isinstance(problems, list) or not problems or not all(isinstance(p, RecallProblem) for p in problems):
        raise InputError("problems: expected a non-empty sequence of RecallProblem")
    sizes = sorted({p.patterns.shape for p in problems})
    if len(sizes) > 1:
        raise InputError(f"problems of sizes {', '.join(map(str, sizes))}: one network holds problems of one K x N; "
                         f"group them by size")
    B, N = len(problems), sizes[0][1]
    params = Parameters() if params is None else checks.instance(params, Parameters, "params", "an astrogate Parameters")
    per_copy = {}
    for name in [k for k in options if k in PARAMETER_NAMES]:
        value = options.pop(name)
        if isinstance(value, str) or np.ndim(value) == 0:
            params = params.updated(**{name: value})
        elif np.ndim(value) != 1 or len(value) != B:
            raise InputError(f"{name}: expected one value, or one per problem (length B = {B}), got shape "
                             f"{np.shape(value)}")
        else:
            per_copy[name] = list(value)
    from astrogate.network.memory import METHODS as BRIAN2_METHODS

    if not isinstance(method, str) or method not in BRIAN2_METHODS:  # `in` on an array is ambiguous
        raise InputError(f"the brian2 backend takes fixed steps of dt: method 'euler' or 'exponential_euler', got "
                         f"{checks.shown(method)}")
    duration = argument_in_units(duration, "ms", "duration")
    tol = nonnegative_number(argument_in_units(tol, "1/ms", "tol"), "tol (1/ms)")
    current, t_current = options.pop("current", None), argument_in_units(options.pop("t_current", 0.0), "ms", "t_current")
    session = options.pop("session", None)
    own_session = session is None
    if own_session:
        unknown = sorted(set(options) - set(SESSION_OPTIONS))
        if unknown:
            raise InputError(f"unknown option(s) {', '.join(unknown)}: recall_batch takes model parameters and "
                             f"{', '.join(SESSION_OPTIONS)}, current, t_current, session")
        session = Brian2Session(method=method, **options)
    elif options:
        raise InputError(f"options {sorted(options)} come from the session passed")
    if session.choice.name == "cuda_standalone":
        require_gpu()
    try:
        models = [AstroGateModel(problem.patterns, p) for problem, p in
                  zip(problems, copy_parameters(params, B, N, per_copy))]
        initial = [model.initial_state(problem.cue) for model, problem in zip(models, problems)]
        memory, results, timings = session.run_batch(
            np.stack([model.xi for model in models]), [model.params for model in models],
            np.stack([u0 for u0, _ in initial]), np.stack([a0 for _, a0 in initial]), duration, current, t_current)
        timings["batch"] = B
        return [RecallResult(_brian2_record(session, memory, model, problem, copy, dict(timings), duration, tol, method))
                for model, problem, copy in zip(models, problems, results)]
    finally:
        if own_session:
            session.close()


def _brian2_record(session, memory, model, problem, results, timings, duration, tol, method) -> dict:
    """The result record of one Brian2 retrieval (one copy of a batch), with the device's details."""
    from astrogate.network.recall import trajectory_from_results

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
    # the pattern the state is at, up to its sign: with F even (the default m^2/2) the mirror state -xi_mu is
    # as much an attractor as xi_mu, and its astrocyte wins the gains
    retrieved = int(np.argmax(np.abs(m)))
    retrieved_sign = 1 if m[retrieved] >= 0 else -1
    traced = _traced_patterns(m, g, problem.target)
    # the metrics of analysis/metrics.py, against the target (or, with none given, the retrieved pattern)
    goal = retrieved if problem.target is None else problem.target
    measured = trial_metrics(v[None], model.xi, [goal], problem.cue[None], gains=g[None])
    if trajectory.convergence_time is not None:
        rest = float(trajectory.convergence_time)
    else:  # a run known at its samples only (Brian2)
        rest = float(convergence_time(trajectory.t, path_length(trajectory.overlaps, trajectory.gains)))
    energy = np.asarray(trajectory.energy)
    if not np.all(np.isfinite(energy)):  # a finite state whose L overflows (a tiny beta, a huge kappa)
        first = int(np.argmax(~np.isfinite(energy)))
        raise InputError(f"the Lyapunov function L became non-finite (overflow) by t = {trajectory.t[first]:g} ms: "
                         f"its scales kappa K N = {model.kappa_K * model.N:g} and kappa K N / beta (beta = "
                         f"{model.beta:g}) exceed float64; use beta = 0 for no allocation, or smaller kappa")
    record = {
        "backend": backend,
        "params": model.params.to_dict(),
        "paper_params": model.params.paper_dict(),
        "problem": problem.description,
        "K": model.K,
        "N": model.N,
        "target": problem.target,
        "retrieved": retrieved,
        "retrieved_sign": retrieved_sign,
        "mirror": retrieved_sign < 0,
        "exact_match": bool(measured["exact_match"][0]),
        "nearest_accuracy": None if problem.target is None else bool(measured["nearest_accuracy"][0]),
        "final_overlap": None if problem.target is None else float(measured["final_overlap"][0]),
        # the paper's observables (eqs. 13-15), against the target (or the retrieved pattern)
        "soft_hamming_error": float(measured["soft_hamming_error"][0]),
        "hamming_error": float(measured["hamming_error"][0]),
        "perplexity": float(measured["perplexity"][0]),
        "convergence_time": rest,
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
        "form": trajectory.form,
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


def _traced_patterns(m: np.ndarray, g: np.ndarray, target: int | None) -> list[int]:
    """The patterns of largest |overlap| (so a mirror state's pattern too), always with the target and the
    pattern of the largest final gain; ordered by |overlap|."""
    must = {int(np.argmax(g))} | ({int(target)} if target is not None else set())
    by_overlap = [int(i) for i in np.argsort(-np.abs(m), kind="stable")]
    others = [mu for mu in by_overlap if mu not in must][:max(0, TRACED_PATTERNS - len(must))]
    chosen = must | set(others)
    return [mu for mu in by_overlap if mu in chosen]


def retrieved_name(record: dict) -> str:
    """'pattern 3', or 'the mirror of pattern 3' for a mirror state."""
    return f"{'the mirror of ' if record['mirror'] else ''}pattern {record['retrieved']}"


def summary(result: dict) -> str:
    """A few human lines about one retrieval."""
    form = ", replicator form" if result.get("form") == "replicator" else ""
    paper = result.get("paper_params") or {}
    temperature = f" (T = {paper['T']:g})" if paper.get("T") is not None else ""
    lines = [f"{result['backend']} backend, {result['method']}{form}: K = {result['K']} patterns, N = {result['N']} "
             f"neurons, beta = {result['params']['beta']:g}{temperature}"]
    mu = result["retrieved"]
    if result["mirror"]:
        retrieved = (f"retrieved the mirror state of pattern {mu} (the state is near -xi_{mu}: overlap "
                     f"{result['m'][mu]:.4f})")
    else:
        retrieved = f"retrieved pattern {mu} ({'exact' if result['exact_match'] else 'not exact'})"
    if result["target"] is not None:
        if mu == result["target"]:
            verdict = "WRONG: the target's mirror" if result["mirror"] else "correct"
        else:
            verdict = f"WRONG, target was {result['target']}"
        retrieved += f", {verdict}; overlap with target {result['final_overlap']:.4f} (cue {result['cue_overlap']:.4f})"
    lines.append(retrieved)
    lines.append(f"soft Hamming error {result['soft_hamming_error']:.4g}, Hamming error {result['hamming_error']:g}, "
                 f"perplexity {result['perplexity']:.4g}, convergence time {result['convergence_time']:.4g} ms")
    lines.append(f"max gain {result['max_gain']:.4f}; fixed-point residual max|g - softmax(beta F(m))| = "
                 f"{result['softmax_residual']:.2e}")
    if result.get("stop_rule") == "decided":
        when = f"outcome decided at t = {result['t_converged']:.1f} ms (stopped before the fixed point)"
    elif result["converged"] and result["t_converged"] is not None and np.isfinite(result["t_converged"]):
        when = f"converged at t = {result['t_converged']:.1f} ms"
    elif result["converged"]:  # the brian2 backend runs the full duration and judges the end state
        when = f"ran the full {result['t'][-1]:.1f} ms; converged by then"
    else:
        when = f"ran to the time limit t = {result['t'][-1]:.4g} ms (the fixed-point rule did not stop it)"
    if "spiking" in (result.get("brian2") or {}):
        energy = "L not traced (spiking neurons: no Lyapunov function)"
    elif result["energy_increase"] <= ROUND_OFF * result["energy_scale"]:
        energy = "L never increased (beyond round-off)"
    else:
        energy = f"L increased by up to {result['energy_increase']:.3g} between samples"
    lines.append(f"{when}; {energy}")
    return "\n".join(lines)
