"""The abstract (NumPy) astrocyte-gated associative memory of MODEL.md.

    tau_u du/dt = -u + kappa K sum_mu g_mu F'(m_mu) xi[mu] + I(t)
    tau_g da/dt = beta F(m) - a,    g = softmax(a),    m = xi v / N,    v = tanh(gamma u)

Every method accepts one state (u of length N, a of length K) or a batch (B x N, B x K),
so that many cues run as matrix products. Times are in ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import solve_ivp
from scipy.special import logsumexp, softmax

from astrogate.errors import InputError
from astrogate.models.checks import euler_steps, require_memory
from astrogate.models.parameters import Parameters
from astrogate.models.patterns import validate_cue, validate_patterns

LN2 = float(np.log(2.0))
TRACE_SAMPLES = 450  # at most 400 log-spaced samples plus the last (sample_steps); more with record_every


def check_finite(u: np.ndarray, a: np.ndarray, t: float) -> None:
    """Stop a run whose state has overflowed (parameters too large for float64), saying when and where."""
    for name, values in (("u (neuron potentials)", u), ("a (astrocyte logits)", a)):
        if not np.all(np.isfinite(values)):
            raise InputError(f"the state became non-finite (overflow) by t = {t:g} ms in {name}: the parameters "
                             f"(kappa, beta, gamma, dt) are too large for float64")


def log_cosh(x: np.ndarray) -> np.ndarray:
    """ln cosh(x) without overflow for large |x|."""
    ax = np.abs(x)
    return ax + np.log1p(np.exp(-2.0 * ax)) - LN2


def sample_steps(n_steps: int, dt: float, record_every: float | None = None) -> np.ndarray:
    """Step indices at which traces are sampled: every record_every ms, or by default about 400
    steps spaced logarithmically (dense early, where the transient is)."""
    if record_every is not None:
        if record_every <= 0:
            raise InputError(f"record_every must be positive, got {record_every!r}")
        stride = max(1, int(round(record_every / dt)))
        return np.arange(0, n_steps + 1, stride)
    return np.unique(np.concatenate([[0], np.round(np.geomspace(1, max(n_steps, 1), 400)).astype(int)]))


@dataclass
class Trajectory:
    """A simulated run: final state, sampled traces and how it ended."""

    t: np.ndarray  # (T,) sample times, ms
    u: np.ndarray  # final u, (N,) or (B, N)
    a: np.ndarray  # final logits, (K,) or (B, K)
    overlaps: np.ndarray  # (T, K) or (T, B, K)
    gains: np.ndarray  # (T, K) or (T, B, K)
    energy: np.ndarray  # (T,) or (T, B)
    converged: np.ndarray  # bool, () or (B,)
    t_converged: np.ndarray  # ms, NaN where not converged
    steps: int  # time steps taken (Euler) or right-hand-side evaluations (adaptive)
    method: str
    stop_reason: str  # "converged" or "time limit"
    extra: dict = field(default_factory=dict)


class AstroGateModel:
    """Patterns plus parameters; the right-hand side, energy, fixed points and integrators."""

    def __init__(self, patterns, params: Parameters | None = None):
        self.xi = validate_patterns(patterns)
        self.K, self.N = self.xi.shape
        self.params = (params or Parameters()).resolved(self.N)
        self.beta = float(self.params.beta)
        self.F = self.params.F

    # -- the state and its functions -------------------------------------------------------
    def rates(self, u: np.ndarray) -> np.ndarray:
        return np.tanh(self.params.gamma * u)

    def overlaps(self, v: np.ndarray) -> np.ndarray:
        return v @ self.xi.T / self.N

    @staticmethod
    def gains(a: np.ndarray) -> np.ndarray:
        return softmax(a, axis=-1)

    def initial_state(self, cue: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """u(0) = cue_scale * cue and uniform gains (a(0) = 0)."""
        cue = validate_cue(cue, self.N)
        u0 = self.params.cue_scale * cue
        a0 = np.zeros(cue.shape[:-1] + (self.K,))
        return u0, a0

    def derivatives(self, u, a, current=None) -> tuple[np.ndarray, np.ndarray]:
        """(du/dt, da/dt) in 1/ms."""
        p = self.params
        m = self.overlaps(self.rates(u))
        g = self.gains(a)
        drive = (self.kappa_K * g * self.F.dF(m)) @ self.xi
        if current is not None:
            drive = drive + current
        du = (drive - u) / p.tau_u
        da = (self.beta * self.F.F(m) - a) / p.tau_g
        return du, da

    @property
    def kappa_K(self) -> float:
        return self.params.kappa * self.K

    def energy(self, u, a) -> np.ndarray:
        """Lyapunov function L(u, a) of MODEL.md (valid for I = 0).
        For beta = 0 the entropy term is left out: the gains then stay uniform from a(0) = 0 and
        L is the classical continuous Hopfield energy."""
        gamma = self.params.gamma
        x = gamma * u
        v = np.tanh(x)
        neural = np.sum(v * x - log_cosh(x), axis=-1) / gamma
        m = self.overlaps(v)
        g = self.gains(a)
        scale = self.kappa_K * self.N
        L = neural - scale * np.sum(g * self.F.F(m), axis=-1)
        if self.beta > 0:
            log_g = a - logsumexp(a, axis=-1, keepdims=True)
            L = L + (scale / self.beta) * np.sum(g * log_g, axis=-1)
        return L

    def softmax_target(self, u) -> np.ndarray:
        """softmax(beta F(m)) for the rates of u: where the gains are at a fixed point."""
        return self.gains(self.beta * self.F.F(self.overlaps(self.rates(u))))

    def fixed_point_residual(self, u, a) -> np.ndarray:
        """max_mu |g_mu - softmax(beta F(m))_mu|."""
        return np.max(np.abs(self.gains(a) - self.softmax_target(u)), axis=-1)

    def neural_fixed_point(self, u, a) -> np.ndarray:
        """u* = kappa K sum_mu g_mu F'(m_mu) xi[mu] for the current gains and rates."""
        m = self.overlaps(self.rates(u))
        return (self.kappa_K * self.gains(a) * self.F.dF(m)) @ self.xi

    def attention_readout(self, v, g=None) -> np.ndarray:
        """The value mixture xi^T g. With g = softmax((beta/N) xi v) and F linear this is
        scaled dot-product attention with query v and keys = values = the patterns."""
        if g is None:
            g = self.gains(self.beta * self.F.F(self.overlaps(v)))
        return g @ self.xi

    # -- integration -----------------------------------------------------------------------
    def run(
        self,
        cue,
        duration: float = 500.0,
        method: str = "euler",
        tol: float = 1e-8,
        record_every: float | None = None,
        current=None,
        t_current: float = 0.0,
        u0=None,
        a0=None,
    ) -> Trajectory:
        """Integrate from the cue until converged (max|du/dt| and max|da/dt| below tol, in 1/ms,
        for every trial) or until `duration` ms, whichever comes first.

        cue: (N,) or (B, N); gives u(0) = cue_scale * cue unless u0 is given.
        current: optional input I (same shape as cue) applied while t < t_current.
        record_every: sampling interval of the traces in ms; by default about 400 samples spaced
            logarithmically in time, since the retrieval transient lasts a few ms of a long run.
        """
        if not np.isfinite(duration) or duration <= 0:
            raise InputError(f"duration must be a positive number of ms, got {duration!r}")
        if tol < 0 or not np.isfinite(tol):
            raise InputError(f"tol must be >= 0, got {tol!r}")
        euler_steps(duration, self.params.dt)  # refuses an absurd number of steps before int() overflows
        u_init, a_init = self.initial_state(cue)
        batch = int(np.prod(u_init.shape[:-1]))
        require_memory(2 * 8 * TRACE_SAMPLES * batch * self.K, f"tracing the overlaps and gains of {batch} cue(s) "
                       f"with K = {self.K} patterns")
        if u0 is not None:
            u_init = validate_cue(u0, self.N, "u0").astype(float).copy()
        if a0 is not None:
            a_init = np.array(a0, dtype=float)
            if a_init.shape != u_init.shape[:-1] + (self.K,):
                raise InputError(f"a0: expected shape {u_init.shape[:-1] + (self.K,)}, got {a_init.shape}")
        if current is not None:
            current = validate_cue(current, self.N, "current")
            if t_current <= 0:
                current = None
        if method == "euler":
            return self._run_euler(u_init, a_init, duration, tol, record_every, current, t_current)
        if method == "adaptive":
            return self._run_adaptive(u_init, a_init, duration, tol, record_every, current, t_current)
        raise InputError(f"unknown method {method!r}: use 'euler' or 'adaptive'")

    def _run_euler(self, u, a, duration, tol, record_every, current, t_current) -> Trajectory:
        dt = self.params.dt
        n_steps = int(round(duration / dt))
        if n_steps < 1:
            raise InputError(f"duration {duration} ms is shorter than one step dt = {dt} ms")
        recorded = set(sample_steps(n_steps, dt, record_every).tolist())
        u, a = u.copy(), a.copy()
        batch_shape = u.shape[:-1]
        t_conv = np.full(batch_shape, np.nan)
        times, m_trace, g_trace, energy = [], [], [], []

        def record(step):
            times.append(step * dt)
            m_trace.append(self.overlaps(self.rates(u)))
            g_trace.append(self.gains(a))
            energy.append(self.energy(u, a))

        step = 0
        for step in range(n_steps):
            t = step * dt
            drive_on = current is not None and t < t_current
            du, da = self.derivatives(u, a, current if drive_on else None)
            if not drive_on:
                still = np.maximum(np.max(np.abs(du), axis=-1), np.max(np.abs(da), axis=-1)) < tol
                newly = still & np.isnan(t_conv)
                t_conv = np.where(newly, t, t_conv)
                if np.all(~np.isnan(t_conv)):
                    break
            if step in recorded:
                record(step)
            u += dt * du
            a += dt * da
            check_finite(u, a, (step + 1) * dt)
        else:
            step = n_steps
        record(step)
        converged = ~np.isnan(t_conv)
        return Trajectory(
            t=np.array(times),
            u=u,
            a=a,
            overlaps=np.array(m_trace),
            gains=np.array(g_trace),
            energy=np.array(energy),
            converged=converged,
            t_converged=t_conv,
            steps=step,
            method="euler",
            stop_reason="converged" if np.all(converged) else "time limit",
        )

    def _run_adaptive(self, u, a, duration, tol, record_every, current, t_current) -> Trajectory:
        shape_u, shape_a = u.shape, a.shape
        n_u = u.size
        counter = {"rhs": 0}

        def unpack(y):
            return y[:n_u].reshape(shape_u), y[n_u:].reshape(shape_a)

        def rhs(t, y, drive):
            counter["rhs"] += 1
            du, da = self.derivatives(*unpack(y), drive)
            return np.concatenate([du.ravel(), da.ravel()])

        def settled(t, y, drive):
            dy = rhs(t, y, drive)
            return np.max(np.abs(dy)) - tol

        settled.terminal = True
        settled.direction = -1

        segments = []
        y0 = np.concatenate([u.ravel(), a.ravel()])
        t0 = 0.0
        if current is not None and t_current > 0:
            t_end = min(t_current, duration)
            segments.append(self._solve(rhs, None, (t0, t_end), y0, record_every, current))
            y0, t0 = segments[-1].y[:, -1], t_end
        converged_at = np.nan
        if t0 < duration:
            sol = self._solve(rhs, settled, (t0, duration), y0, record_every, None)
            segments.append(sol)
            if sol.status == 1 and sol.t_events[0].size:
                converged_at = float(sol.t_events[0][0])
        t = np.concatenate([s.t for s in segments])
        ys = np.concatenate([s.y for s in segments], axis=1)
        keep = np.concatenate([[True], np.diff(t) > 0])
        t, ys = t[keep], ys[:, keep]
        us = np.stack([unpack(y)[0] for y in ys.T])
        as_ = np.stack([unpack(y)[1] for y in ys.T])
        u_final, a_final = unpack(ys[:, -1])
        batch_shape = shape_u[:-1]
        conv = np.full(batch_shape, not np.isnan(converged_at))
        return Trajectory(
            t=t,
            u=u_final.copy(),
            a=a_final.copy(),
            overlaps=self.overlaps(self.rates(us)),
            gains=self.gains(as_),
            energy=self.energy(us, as_),
            converged=conv,
            t_converged=np.full(batch_shape, converged_at),
            steps=counter["rhs"],
            method="adaptive",
            stop_reason="converged" if np.all(conv) else "time limit",
        )

    def _solve(self, rhs, event, span, y0, record_every, drive):
        dt = self.params.dt
        t_eval = sample_steps(int(np.ceil(span[1] / dt)), dt, record_every) * dt
        t_eval = np.unique(np.clip(t_eval, span[0], span[1]))
        sol = solve_ivp(
            rhs,
            span,
            y0,
            method="LSODA",
            t_eval=t_eval,
            events=event,
            args=(drive,),
            rtol=1e-9,
            atol=1e-11,
        )
        if sol.status < 0:
            raise InputError(f"adaptive integration failed: {sol.message}")
        n_u = self.N * (y0.size // (self.N + self.K))
        bad = ~np.all(np.isfinite(sol.y), axis=0)
        if np.any(bad):
            first = int(np.argmax(bad))
            check_finite(sol.y[:n_u, first], sol.y[n_u:, first], float(sol.t[first]))
        if sol.status == 1:  # stopped at the event: append the exact final state
            sol.t = np.append(sol.t, sol.t_events[0][0])
            sol.y = np.concatenate([sol.y, sol.y_events[0][0][:, None]], axis=1)
        return sol
