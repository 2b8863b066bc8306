"""attention(Q, K, V): softmax attention computed by astrocytes routing values.

    result = attention(Q, K, V)                       # Q: T x d, K: n x d, V: n x D
    result.outputs (T x D), result.gains (T x n: the attention matrix)
    result.output_distance, result.gain_distance      # max |.| against softmax(Q K^T scale) V, written here

The defaults are scaled dot-product attention: query mode, F linear, scale 1/sqrt(d) (beta = scale * d, since
the astrocytes see beta F(xi q / d)), kappa_v = 1; query mode then converges to softmax(Q K^T / sqrt(d)) V.
models/attention.py has the equations and their Lyapunov function; network/attention.py the Brian2 network.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from astrogate.errors import InputError
from astrogate.models import checks
from astrogate.models.attention import MODES, HeteroAssociativeMemory, validate_qkv
from astrogate.models.parameters import Parameters
from astrogate.models.units import argument_in_units

# query mode: |a - beta F(m)| < tau_g tol at the stop, so tol = 1e-10 / ms leaves the gains ~1e-9 from the softmax
QUERY_TOL = 1e-10
QUERY_DURATION = 5000.0  # ms, a cap; query mode stops when converged (a few hundred ms)
RETRIEVAL_TOL = 1e-8
RETRIEVAL_DURATION = 500.0  # ms, the model's retrieval run (docs/model.md)
BACKENDS = ("abstract", "brian2")  # the NumPy model or the Brian2 network (network/attention.py)


@dataclass(frozen=True)
class AttentionSettings(checks.SettingsObject):
    """How `attention` computes: the similarity and its scale, the value neurons, the run's length and
    tolerance, and the Brian2 backend's options. Checked here, once, when made; times in ms (Brian2 times are
    converted), tol in 1/ms (or a Brian2 rate). None: the mode's default (see `attention`)."""

    kind = "attention setting"

    scale: float | None = None
    similarity: str | None = None
    kappa_v: float = 1.0
    tau_y: float = 10.0
    duration: float | None = None
    tol: float | None = None
    record_every: float | None = None
    target: str | None = None  # brian2: numpy or cython (None: Brian2's preference)
    chunk: float = 50.0  # brian2: ms between convergence checks
    layout: str = "batched"  # brian2, query mode: "batched" or "per_query" (network/attention.py's LAYOUTS)

    def __post_init__(self):
        set_field = object.__setattr__
        for name in ("tau_y", "duration", "record_every", "chunk"):
            set_field(self, name, argument_in_units(getattr(self, name), "ms", name))
        set_field(self, "tol", argument_in_units(self.tol, "1/ms", "tol"))
        if self.scale is not None:
            set_field(self, "scale", checks.positive_number(self.scale, "scale"))
        if self.similarity is not None:
            checks.instance(self.similarity, str, "similarity", "a name (linear, quadratic or power:n)")
        if self.duration is not None:
            set_field(self, "duration", checks.duration(self.duration))
        if self.tol is not None:
            set_field(self, "tol", checks.tolerance(self.tol))
        set_field(self, "record_every", checks.optional_duration(self.record_every, "record_every"))
        set_field(self, "chunk", checks.duration(self.chunk, "chunk"))
        checks.instance(self.layout, str, "layout", "a name (batched or per_query)")
        if self.target is not None:
            checks.instance(self.target, str, "target", "a name (numpy or cython)")


def softmax_attention(Q, K, V, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The reference, independent of the model: (weights softmax(Q K^T scale), weights @ V); scale 1/sqrt(d)."""
    Q, K, V = (np.asarray(x, dtype=float) for x in (Q, K, V))
    scale = 1.0 / math.sqrt(K.shape[1]) if scale is None else scale
    scores = scale * (np.atleast_2d(Q) @ K.T)
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    return weights, weights @ V


def linear_attention(Q, K, V, scale: float | None = None) -> np.ndarray:
    """Attention without the softmax: (Q K^T scale) V, scale 1/d (the overlap m = k.q / d weights each value)."""
    Q, K, V = (np.asarray(x, dtype=float) for x in (Q, K, V))
    scale = 1.0 / K.shape[1] if scale is None else scale
    return scale * (np.atleast_2d(Q) @ K.T) @ V


@dataclass
class AttentionResult:
    """What `attention` returns: the outputs and gains at the end of the run, softmax attention computed apart
    from the model (reference_outputs, reference_gains) and their distances, and how the run went.

    Attributes
    ----------
    outputs : array (T, D)
        The value neurons' rates at the end of the run (dimensionless).
    gains : array (T, n)
        The astrocytes' gains, one row per query: the attention matrix (rows sum to 1).
    reference_outputs, reference_gains : array (T, D), (T, n)
        softmax(Q K^T scale) V and softmax(Q K^T scale), computed apart from the model.
    mode, backend, similarity : str
        "query" or "retrieval"; "abstract" or "brian2"; the similarity F.
    scale : float
        The scale of the reference softmax (default 1/sqrt(d)).
    beta : float
        The astrocytes' inverse temperature (scale * d in query mode).
    converged : array (T) of bool
        Whether each query's run met tol (1/ms) before the duration.
    runtime_seconds : float
        Wall time of the call (s).
    trajectory : object
        The abstract backend's AttentionTrajectory (None on Brian2).
    extra : dict
        Brian2: steps, layout, build_seconds and run_seconds (s), the network.
    """

    outputs: np.ndarray  # (T, D) value-neuron rates at the end of the run
    gains: np.ndarray  # (T, n) astrocytic gains: the attention matrix
    reference_outputs: np.ndarray  # (T, D) softmax(Q K^T scale) V
    reference_gains: np.ndarray  # (T, n) softmax(Q K^T scale)
    mode: str
    backend: str
    scale: float
    beta: float
    similarity: str
    converged: np.ndarray  # (T,) bool
    runtime_seconds: float
    trajectory: object = None  # abstract: models.attention.AttentionTrajectory
    extra: dict = field(default_factory=dict)

    @property
    def output_distance(self) -> float:
        """max |outputs - softmax attention|."""
        return float(np.max(np.abs(self.outputs - self.reference_outputs)))

    @property
    def gain_distance(self) -> float:
        """max |gains - softmax weights|."""
        return float(np.max(np.abs(self.gains - self.reference_gains)))

    def __repr__(self):
        T, n = self.gains.shape
        return (f"AttentionResult(mode={self.mode!r}, backend={self.backend!r}, T={T}, n={n}, D={self.outputs.shape[1]}, "
                f"converged={int(np.sum(self.converged))}/{T}, output_distance={self.output_distance:.3g}, "
                f"gain_distance={self.gain_distance:.3g})")

    def summary(self) -> str:
        T, D = self.outputs.shape
        state = "all converged" if np.all(self.converged) else f"{int(np.sum(~self.converged))} of {T} not converged"
        return (f"attention ({self.mode} mode, {self.backend}, F {self.similarity}, scale {self.scale:.6g}, "
                f"beta {self.beta:.6g}): {T} queries, {self.gains.shape[1]} keys, {D} value dimensions; {state}; "
                f"max |outputs - softmax attention| = {self.output_distance:.3e}, "
                f"max |gains - softmax weights| = {self.gain_distance:.3e}; {self.runtime_seconds:.2f} s"
                + (f" (Brian2 {self.extra['layout']} layout: {self.extra['steps']} steps, build "
                   f"{self.extra['build_seconds']:.2f} s, run {self.extra['run_seconds']:.2f} s)"
                   if self.backend == "brian2" else ""))


def attention(Q, K, V, mode: str = "query", backend: str = "abstract", *, params: Parameters | None = None,
              settings: AttentionSettings | None = None, **options) -> AttentionResult:
    """Attention of T queries Q (T x d) over keys K (n x d) and values V (n x D) by the astrocyte-gated network.

    mode "query": key rates clamped at each query; gains -> softmax(scale d F(K q / d)), outputs -> kappa_v V^T g.
        Defaults F linear and scale 1/sqrt(d): softmax(Q K^T / sqrt(d)) V.
    mode "retrieval": the key neurons run the gated dynamics (params, default the model's (docs/model.md): F quadratic,
        beta 20 d) from u(0) = cue_scale q, cleaning the query, and the values follow the gains.
        similarity and scale, if given, override params' F and beta (beta = scale * d).
    backend "abstract" (NumPy) or "brian2" (runtime device; `target` numpy or cython for the network's code
        objects, default Brian2's preference; `chunk` ms between convergence checks; query mode's `layout`
        "batched" or "per_query"; retrieval mode is one AstrocyteGatedMemory per query: network/attention.py).

    settings (AttentionSettings) or its fields as keywords: scale, similarity, kappa_v, tau_y, duration, tol,
    record_every, target, chunk, layout. duration (ms) caps the run, which stops once max|da/dt|, max|dy/dt|
    (max|du/dt|) < tol (1/ms) for every query. The times tau_y, duration, record_every and chunk are ms, or
    Brian2 times (``duration=20*ms``); tol is 1/ms, or a Brian2 rate.
    The distances to softmax attention use `scale` (default 1/sqrt(d)) whatever the mode and F."""
    if settings is not None:
        checks.instance(settings, AttentionSettings, "settings", "an AttentionSettings")
    settings = (settings or AttentionSettings()).changed(**options)
    scale, similarity, kappa_v, tau_y = settings.scale, settings.similarity, settings.kappa_v, settings.tau_y
    duration, tol, record_every = settings.duration, settings.tol, settings.record_every
    target, chunk, layout = settings.target, settings.chunk, settings.layout
    Q, K, V = validate_qkv(Q, K, V)
    checks.one_of(mode, MODES, f"unknown mode {checks.shown(mode)}")
    checks.one_of(backend, BACKENDS, f"unknown backend {checks.shown(backend)}")
    d = K.shape[1]
    if params is not None:
        checks.instance(params, Parameters, "params", "an astrogate Parameters")
    if mode == "query":
        params = (params or Parameters()).updated(similarity=similarity or "linear",
                                                  beta=(scale or 1.0 / math.sqrt(d)) * d)
    else:
        params = params or Parameters()
        if similarity is not None:
            params = params.updated(similarity=similarity)
        if scale is not None:
            params = params.updated(beta=scale * d)
    memory = HeteroAssociativeMemory(K, V, params, kappa_v, tau_y)
    reference_scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    ref_gains, ref_outputs = softmax_attention(Q, K, V, reference_scale)
    if not (np.all(np.isfinite(ref_gains)) and np.all(np.isfinite(ref_outputs))):
        raise InputError(f"softmax(Q K^T scale) V, the reference, overflows float64 (scale = {reference_scale:g}, "
                         f"max|Q| = {np.max(np.abs(Q)):g}, max|K| = {np.max(np.abs(K)):g}, max|V| = "
                         f"{np.max(np.abs(V)):g}): scale the arrays down")
    if duration is None:
        duration = QUERY_DURATION if mode == "query" else RETRIEVAL_DURATION
    if tol is None:
        tol = QUERY_TOL if mode == "query" else RETRIEVAL_TOL
    if backend == "abstract" and (target is not None or layout != "batched"):
        raise InputError("target and layout are options of the Brian2 backend (backend='brian2')")
    if mode == "retrieval" and layout != "batched":
        raise InputError("layout applies to query mode: retrieval mode on Brian2 is one AstrocyteGatedMemory per query")
    start = time.perf_counter()
    extra = {}
    if backend == "abstract":
        trajectory = memory.run(Q, mode, duration=duration, tol=tol, record_every=record_every)
        outputs, gains, converged = trajectory.y, trajectory.gains, trajectory.converged
    else:
        from astrogate.network.attention import run_query_network, run_retrieval_network

        trajectory = None
        if mode == "query":
            run = run_query_network(memory, Q, duration=duration, tol=tol, target=target, chunk=chunk, layout=layout)
        else:
            run = run_retrieval_network(memory, Q, duration=duration, tol=tol, target=target, chunk=chunk)
        outputs, gains, converged = run["outputs"], run["gains"], run["converged"]
        extra = {key: value for key, value in run.items() if key not in ("outputs", "gains", "converged")}
    result = AttentionResult(outputs=outputs, gains=gains, reference_outputs=ref_outputs, reference_gains=ref_gains,
                             mode=mode, backend=backend, scale=reference_scale, beta=memory.beta,
                             similarity=memory.F.name, converged=converged,
                             runtime_seconds=time.perf_counter() - start, trajectory=trajectory, extra=extra)
    for name in ("outputs", "gains"):  # the run checks its state; a NaN here would be a bug, never a result
        if not np.all(np.isfinite(getattr(result, name))):
            raise InputError(f"attention: the {name} are not finite; the run overflowed float64")
    return result
