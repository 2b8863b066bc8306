"""Hetero-associative astrocyte-gated memory: attention with separate queries, keys and values.

Keys xi (n x d) sit on the d key neurons, as the patterns of the model (docs/model.md) do; values zeta (n x D) on a second
population of D value neurons, driven by the same n astrocytes and feeding nothing back:

    key neurons     tau_u du/dt = -u + kappa n sum_mu g_mu F'(m_mu) xi[mu] + I,   v = tanh(gamma u)
    astrocytes      tau_g da/dt = beta F(m) - a,    g = softmax(a),    m = xi v / d
    value neurons   tau_y dy/dt = -y + kappa_v zeta^T g

Two modes; every array carries a leading batch axis of T queries, so many queries run as matrix products.

- query mode: the key rates are clamped at the query, v = q (no recurrent update), so m = xi q / d is constant,
  a(t) relaxes to beta F(m), g to softmax(beta F(xi q / d)) and y to kappa_v zeta^T g. With F linear and
  beta = d / sqrt(d) this fixed point is softmax(q K^T / sqrt(d)) V: scaled dot-product attention.
- retrieval mode: the key neurons run the gated dynamics of the model (docs/model.md) from u(0) = cue_scale * q (AstroGateModel,
  keys scaled to mean square 1 as there), cleaning a corrupted query; the values follow the gains of the pattern
  the key side settles on.

Lyapunov function (derived here; the model's L, docs/model.md, is L_key). Write e = y - kappa_v zeta^T g, sigma = ||zeta||_2
(largest singular value), f_mu = beta F(m_mu) - ln g_mu, fbar = sum g f, and

    L(u, a, y) = L_key(u, a) + (c / 2) |e|^2,      c = kappa n d tau_g / (beta tau_y kappa_v^2 sigma^2)

    L_key = sum_i G(v_i) - kappa n d sum_mu g_mu F(m_mu) + (kappa n d / beta) sum_mu g_mu ln g_mu   (retrieval)
    L_key = - kappa n d sum_mu g_mu F(m_mu) + (kappa n d / beta) sum_mu g_mu ln g_mu               (query: v = q)

The values do not feed back, so the system is a cascade: L_key alone still never increases, but it does not
depend on y and so says nothing about the values converging; the value term does, and it needs the weight c.
Along trajectories, with dg_mu/dt = g_mu (f_mu - fbar) / tau_g and tau_y de/dt = -e - tau_y kappa_v zeta^T dg/dt,
Young's inequality gives d(|e|^2/2)/dt <= -|e|^2 / (2 tau_y) + (tau_y / 2) kappa_v^2 sigma^2 |dg/dt|^2, and
|dg/dt|^2 <= sum g (f - fbar)^2 / tau_g^2 (as g_mu <= 1). With the weight c chosen above (half the largest
that works) the forcing uses half of the astrocytes' dissipation:

    dL/dt <= - sum_i tau_u gamma (1 - v_i^2) (du_i/dt)^2  -  (kappa n d / (2 beta tau_g)) sum_mu g_mu (f_mu - fbar)^2
             - (c / (2 tau_y)) |e|^2  <=  0,

zero only at a fixed point of all three populations (the neural term is absent in query mode). A weight that
ignores the size of the values (c = 1, say) is not a Lyapunov function: with large values the fast-moving gains
pull y away from its target faster than L_key falls (tests/test_attention.py shows such a trajectory).
For kappa_v sigma = 0 the values cannot move away from a target that does not move, and c = 1. beta must be > 0.

Times are in ms; forward Euler at params.dt, as AstroGateModel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from astrogate.errors import InputError
from astrogate.models import checks
from astrogate.models.abstract import AstroGateModel, sample_count, sample_steps
from astrogate.machine import require_memory
from astrogate.models.checks import euler_steps
from astrogate.models.parameters import Parameters
from astrogate.models.patterns import finite_nonempty, real_array

MODES = ("query", "retrieval")


def validate_matrix(array, what: str, rows: str, columns: str, one_row: bool = False) -> np.ndarray:
    """A finite, non-empty 2-D float64 array (a vector is one row if `one_row`); an InputError naming `what`
    otherwise."""
    x = real_array(array, what)
    if one_row and x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise InputError(f"{what}: expected a {rows} x {columns} matrix (2-D), got shape {x.shape}")
    return finite_nonempty(x, what)


def validate_qkv(queries, keys, values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q (T x d; one query of length d is T = 1), K (n x d), V (n x D), checked against each other."""
    K = validate_matrix(keys, "keys", "n", "d")
    V = validate_matrix(values, "values", "n", "D")
    if V.shape[0] != K.shape[0]:
        raise InputError(f"keys and values must pair up row by row: keys have n = {K.shape[0]} rows, "
                         f"values have {V.shape[0]}")
    Q = validate_matrix(queries, "queries", "T", "d", one_row=True)
    if Q.shape[1] != K.shape[1]:
        raise InputError(f"queries have width {Q.shape[1]} but keys have d = {K.shape[1]}: a query is one row "
                         f"of the same width as a key")
    return Q, K, V


def attention_bytes(T: int, n: int, d: int, D: int, samples: int) -> int:
    """Peak bytes of a run of T queries over n keys (d wide) and values (D wide), float64: the arrays, a few
    T x n and T x D working arrays, and `samples` traced gains (T x n), outputs (T x D) and energies."""
    return 8 * (T * d + n * (d + D) + 8 * T * (n + d + D) + samples * T * (n + D + 1))


def _check_finite(a: np.ndarray, y: np.ndarray, u: np.ndarray | None, t: float) -> None:
    """Stop a run whose state overflowed (never return NaN outputs), saying when and where."""
    for name, values in (("a (astrocyte logits)", a), ("y (value neurons)", y), ("u (key neurons)", u)):
        if values is not None and not np.all(np.isfinite(values)):
            raise InputError(f"the state became non-finite (overflow) by t = {t:g} ms in {name}: the parameters "
                             f"(kappa, beta, gamma, kappa_v) or the sizes of the queries, keys or values are too "
                             f"large for float64")


@dataclass
class AttentionTrajectory:
    """A simulated run of T queries: final state, sampled traces, how it ended."""

    t: np.ndarray  # (S,) sample times, ms
    a: np.ndarray  # (T, n) final logits
    y: np.ndarray  # (T, D) final value rates
    u: np.ndarray | None  # (T, d) final key-neuron state (retrieval mode), None in query mode
    gains: np.ndarray  # (T, n) final gains softmax(a)
    energy: np.ndarray  # (S, T) Lyapunov function L of the module docstring
    gain_trace: np.ndarray  # (S, T, n)
    output_trace: np.ndarray  # (S, T, D)
    converged: np.ndarray  # (T,) bool
    t_converged: np.ndarray  # (T,) ms, NaN where not converged
    steps: int
    mode: str
    stop_reason: str
    extra: dict = field(default_factory=dict)


class HeteroAssociativeMemory:
    """Keys on the key neurons, values on value neurons driven by the same astrocytes.

    params: the gated dynamics (docs/model.md; beta made explicit for d key neurons); kappa_v and tau_y (ms): the
    value neurons. Query mode uses the keys as given; retrieval mode runs AstroGateModel on them (which scales
    each key to mean square 1)."""

    def __init__(self, keys, values, params: Parameters | None = None, kappa_v: float = 1.0, tau_y: float = 10.0):
        self.xi = validate_matrix(keys, "keys", "n", "d")
        self.zeta = validate_matrix(values, "values", "n", "D")
        if self.zeta.shape[0] != self.xi.shape[0]:
            raise InputError(f"keys and values must pair up row by row: keys have n = {self.xi.shape[0]} rows, "
                             f"values have {self.zeta.shape[0]}")
        self.n, self.d = self.xi.shape
        self.D = self.zeta.shape[1]
        if params is not None:
            checks.instance(params, Parameters, "params", "an astrogate Parameters")
        self.params = (params or Parameters()).resolved(self.d)
        self.beta = float(self.params.beta)
        if not self.beta > 0:
            raise InputError(f"beta must be > 0 for attention (softmax of beta F), got {self.beta!r}")
        self.kappa_v = checks.finite_number(kappa_v, "kappa_v")
        self.tau_y = checks.positive_number(tau_y, "tau_y")
        # forward Euler at params.dt integrates the value neurons too: the stability check of Parameters' dt
        checks.euler_stable_dt(self.params.dt, {"tau_u": self.params.tau_u, "tau_g": self.params.tau_g,
                                                "tau_y": self.tau_y})
        # |y| never exceeds |kappa_v| max|zeta| (a convex mix of the values, approached by Euler steps that do
        # not overshoot); room for a factor 4 keeps every intermediate of a step finite
        peak = float(np.max(np.abs(self.zeta)))
        if not np.isfinite(4.0 * abs(self.kappa_v) * peak):
            raise InputError(f"kappa_v * max|values| = {self.kappa_v:g} * {peak:g} is beyond float64's range (about "
                             f"1e308, with room for a step): the outputs would overflow; scale the values or kappa_v")
        self.F = self.params.F
        self._key_model = None
        self._value_weight = None

    @property
    def key_model(self) -> AstroGateModel:
        """The key side's gated dynamics (retrieval mode), on the keys scaled to mean square 1."""
        if self._key_model is None:
            self._key_model = AstroGateModel(self.xi, self.params)
        return self._key_model

    # -- functions of the state ---------------------------------------------------------------
    def query_overlaps(self, Q: np.ndarray) -> np.ndarray:
        """m = xi q / d for clamped key rates v = q, (T, n)."""
        return Q @ self.xi.T / self.d

    def value_drive(self, g: np.ndarray) -> np.ndarray:
        """kappa_v zeta^T g: where the value neurons go for gains g, (T, D)."""
        return self.kappa_v * (g @ self.zeta)

    @property
    def value_weight(self) -> float:
        """c of the module docstring: the weight of |y - kappa_v zeta^T g|^2 / 2 in L (inf where kappa_v sigma is
        so small that its square underflows; value_energy never uses c itself, see there)."""
        if self._value_weight is None:
            scale = self._value_scale
            with np.errstate(over="ignore", divide="ignore"):
                self._value_weight = 1.0 if scale == 0 else float(self._astro_weight / np.float64(scale) ** 2)
        return self._value_weight

    @property
    def _astro_weight(self) -> float:
        """kappa n d tau_g / (beta tau_y): c times (kappa_v sigma)^2."""
        return self.params.kappa * self.n * self.d * self.params.tau_g / (self.beta * self.tau_y)

    @property
    def _value_scale(self) -> float:
        """kappa_v sigma (sigma = ||zeta||_2, computed on zeta / max|zeta| so that it neither overflows nor underflows)."""
        peak = float(np.max(np.abs(self.zeta)))
        return 0.0 if peak == 0 else abs(self.kappa_v) * peak * float(np.linalg.norm(self.zeta / peak, 2))

    def astrocyte_energy(self, a: np.ndarray, m: np.ndarray) -> np.ndarray:
        """-kappa n d sum g F(m) + (kappa n d / beta) sum g ln g: L_key without the neural term, (T,)."""
        scale = self.params.kappa * self.n * self.d
        g = AstroGateModel.gains(a)
        log_g = a - logsumexp(a, axis=-1, keepdims=True)
        return -scale * np.sum(g * self.F.F(m), axis=-1) + (scale / self.beta) * np.sum(g * log_g, axis=-1)

    def value_energy(self, a: np.ndarray, y: np.ndarray, weight: float | None = None) -> np.ndarray:
        """(c / 2) |y - kappa_v zeta^T g|^2, (T,); `weight` replaces c (to show what a wrong one does)."""
        e = y - self.value_drive(AstroGateModel.gains(a))
        if weight is not None:
            return 0.5 * weight * np.sum(e * e, axis=-1)
        scale = self._value_scale
        if scale == 0:
            return 0.5 * np.sum(e * e, axis=-1)
        # c |e|^2 = (c (kappa_v sigma)^2) |e / (kappa_v sigma)|^2: no square of kappa_v (1e300 or 1e-200) is formed
        e = e / scale
        return 0.5 * self._astro_weight * np.sum(e * e, axis=-1)

    def energy(self, a, y, Q=None, u=None, value_weight: float | None = None) -> np.ndarray:
        """L of the module docstring: query mode with the clamped queries Q, retrieval mode with the key state u."""
        if (Q is None) == (u is None):
            raise InputError("energy: give the queries Q (query mode) or the key-neuron state u (retrieval mode)")
        key = self.astrocyte_energy(a, self.query_overlaps(Q)) if u is None else self.key_model.energy(u, a)
        return key + self.value_energy(a, y, value_weight)

    # -- integration ------------------------------------------------------------------------------
    def run(self, queries, mode: str = "query", duration: float = 5000.0, tol: float = 1e-10,
            record_every: float | None = None, value_weight: float | None = None) -> AttentionTrajectory:
        """Forward Euler at params.dt from a(0) = 0 (uniform gains), y(0) = 0 and, in retrieval mode,
        u(0) = cue_scale * q, until every query has max|da/dt|, max|dy/dt| (and max|du/dt|) < tol, in 1/ms,
        or `duration` ms. At the stop |a - beta F(m)| < tau_g tol in query mode, so the gains are within
        about 2 tau_g tol of softmax(beta F(m)).
        value_weight: the weight of the value term in the recorded L (default c of the module docstring)."""
        checks.one_of(mode, MODES, f"unknown mode {checks.shown(mode)}")
        duration, tol = checks.duration(duration), checks.tolerance(tol)
        record_every = checks.optional_duration(record_every, "record_every")
        if value_weight is not None:
            value_weight = checks.nonnegative_number(value_weight, "value_weight")
        Q = validate_matrix(queries, "queries", "T", "d", one_row=True)
        if Q.shape[1] != self.d:
            raise InputError(f"queries have width {Q.shape[1]} but keys have d = {self.d}")
        p = self.params
        dt = p.dt
        n_steps = euler_steps(duration, dt)
        T = Q.shape[0]
        require_memory(attention_bytes(T, self.n, self.d, self.D, sample_count(n_steps, dt, record_every)),
                       f"attention of T = {T} queries over n = {self.n} keys (d = {self.d}, D = {self.D}) with its "
                       f"traces")
        a = np.zeros((T, self.n))
        y = np.zeros((T, self.D))
        if mode == "query":
            u = None
            drive = self.beta * self.F.F(self.query_overlaps(Q))  # constant: the key rates are clamped
            if not np.all(np.isfinite(drive)):
                raise InputError(f"beta F(K q / d) overflows float64 (beta = {self.beta:g}, max|queries| = "
                                 f"{np.max(np.abs(Q)):g}, max|keys| = {np.max(np.abs(self.xi)):g}): scale the queries, "
                                 f"the keys or beta down")
        else:
            u, _ = self.key_model.initial_state(Q)
            if not np.all(np.isfinite(u)):
                raise InputError(f"u(0) = cue_scale * queries overflows float64 (max|queries| = {np.max(np.abs(Q)):g})")
        recorded = set(sample_steps(n_steps, dt, record_every).tolist())
        t_conv = np.full(T, np.nan)
        times, energy, gain_trace, output_trace = [], [], [], []

        def record(step):
            times.append(step * dt)
            energy.append(self.energy(a, y, Q if u is None else None, u, value_weight))
            gain_trace.append(AstroGateModel.gains(a))
            output_trace.append(y.copy())

        step = 0
        for step in range(n_steps):
            if u is None:
                da = (drive - a) / p.tau_g
                rate = np.max(np.abs(da), axis=1)
            else:
                du, da = self.key_model.derivatives(u, a)
                rate = np.maximum(np.max(np.abs(du), axis=1), np.max(np.abs(da), axis=1))
            dy = (self.value_drive(AstroGateModel.gains(a)) - y) / self.tau_y
            rate = np.maximum(rate, np.max(np.abs(dy), axis=1))
            newly = (rate < tol) & np.isnan(t_conv)
            t_conv[newly] = step * dt
            if not np.any(np.isnan(t_conv)):
                break
            if step in recorded:
                record(step)
            a = a + dt * da
            y = y + dt * dy
            if u is not None:
                u = u + dt * du
            _check_finite(a, y, u, (step + 1) * dt)
        else:
            step = n_steps
        record(step)
        converged = ~np.isnan(t_conv)
        return AttentionTrajectory(
            t=np.array(times), a=a, y=y, u=u, gains=AstroGateModel.gains(a), energy=np.array(energy),
            gain_trace=np.array(gain_trace), output_trace=np.array(output_trace), converged=converged,
            t_converged=t_conv, steps=step, mode=mode,
            stop_reason="converged" if np.all(converged) else "time limit")
