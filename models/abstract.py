"""The abstract (NumPy) astrocyte-gated associative memory (the model page of the docs, docs/model.md).

    tau_u du/dt = -u + kappa K sum_mu g_mu F'(m_mu) xi[mu] + I(t)
    tau_g da/dt = beta F(m) - a,    g = softmax(a),    m = xi v / N,    v = tanh(gamma u)

the logit form (the default), or with the gains integrated as the paper's replicator equation (eq. 6),
form="replicator":

    tau_g dg/dt = g (f - <g, f>),    f = beta F(m) - ln g

Every method accepts one state (u of length N, a of length K) or a batch (B x N, B x K),
so that many cues run as matrix products. Times are in ms.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.integrate import solve_ivp
from scipy.special import logsumexp, softmax

from astrogate.errors import InputError
from astrogate.machine import require_memory
from astrogate.models import checks
from astrogate.models.checks import euler_steps
from astrogate.models.parameters import Parameters
from astrogate.models.patterns import finite_nonempty, real_array, validate_cue, validate_patterns

LN2 = float(np.log(2.0))
METHODS = ("euler", "exponential_euler", "adaptive")
FORMS = ("logit", "replicator")  # how the gains are integrated (docs/model.md, "Two forms of eq. 6")
STOP_RULES = ("fixed_point", "decided")
DTYPES = ("float64", "float32")
# the "decided" rule: the leading gain above 1 - DECIDED_EPS, held for DECIDED_WINDOW ms (see outcome_decided)
DECIDED_EPS = 1e-3
DECIDED_WINDOW = 0.5
# The adaptive solver's work bound: right-hand-side evaluations, at most this many times the steps that forward
# Euler takes at params.dt for the same duration (LSODA takes far fewer where it is the right tool: about 1000
# for a 500 ms retrieval, measured), and never fewer than ADAPTIVE_MIN_EVALUATIONS. A stiff or overflowing
# system (kappa = 1e300) otherwise shrinks LSODA's step without end.
ADAPTIVE_WORK_FACTOR = 10
ADAPTIVE_MIN_EVALUATIONS = 20_000
TRACE_SAMPLES = 450  # at most 400 log-spaced samples plus the last (sample_steps); more with record_every
# convergence_time: from then on the overlaps and gains move, in total, by at most this much (see convergence_time)
CONVERGENCE_DELTA = 1e-3
# the replicator form holds gains g; a gain that underflowed to 0 is written as this logit (ln of the smallest
# double, -744.4), so that softmax(a) gives it back
LOGIT_FLOOR = float(np.log(np.nextafter(0.0, 1.0)))


def check_finite(u: np.ndarray, a: np.ndarray, t: float) -> None:
    """Stop a run whose state has overflowed, saying when and where. The initial state and the current are
    checked finite before a run starts, so what overflows here is the dynamics: parameters or input values
    too large for float64."""
    for name, values in (("u (neuron potentials)", u), ("a (astrocyte logits)", a)):
        if not np.all(np.isfinite(values)):
            raise InputError(f"the state became non-finite (overflow) by t = {t:g} ms in {name}: the parameters "
                             f"(kappa, beta, gamma, dt) or the sizes of the cue, u0, a0 or current are too large "
                             f"for float64")


def log_cosh(x: np.ndarray) -> np.ndarray:
    """ln cosh(x) without overflow for large |x|."""
    ax = np.abs(x)
    return ax + np.log1p(np.exp(-2.0 * ax)) - LN2


def _stride(n_steps: int, dt: float, record_every: float) -> int:
    """Steps between samples for record_every ms: at least 1; beyond the run (record_every = 1e300, say), the
    whole run (only the start and the end are sampled)."""
    ratio = record_every / dt
    return n_steps + 1 if not ratio < n_steps + 1 else max(1, int(round(ratio)))


def sample_steps(n_steps: int, dt: float, record_every: float | None = None) -> np.ndarray:
    """Step indices at which traces are sampled: every record_every ms, or by default about 400
    steps spaced logarithmically (dense early, where the transient is)."""
    if record_every is not None:
        record_every = checks.duration(record_every, "record_every")
        return np.arange(0, n_steps + 1, _stride(n_steps, dt, record_every))
    return np.unique(np.concatenate([[0], np.round(np.geomspace(1, max(n_steps, 1), 400)).astype(int)]))


def convergence_time(t: np.ndarray, path: np.ndarray, t_end=None) -> np.ndarray:
    """The first of the sample times t (T,) after which the overlaps and gains move, in total, by at most
    CONVERGENCE_DELTA: path (T,) or (T, B) is the cumulative path length over the samples (the sum, over
    consecutive samples, of the largest change of any overlap m_mu or gain g_mu), so that from that time on every
    sample stays within CONVERGENCE_DELTA of the run's end state in every overlap and gain. It is the run's end
    when the state still moved that much in its last interval (read it with `converged`). t_end (B,) caps it
    at each cue's own end (a cue that stopped early). The samples are the traces' (about 400 spaced
    logarithmically in time, or every record_every), so its resolution is theirs."""
    path = np.asarray(path, dtype=float)
    settled = path[-1] - path <= CONVERGENCE_DELTA
    first = np.argmax(settled, axis=0)  # settled is monotone in time (path never decreases)
    times = np.asarray(t, dtype=float)[first]
    return times if t_end is None else np.minimum(times, t_end)


def path_length(overlaps: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """The cumulative path length of sampled traces (T, K) or (T, B, K) of overlaps and gains (see
    convergence_time), for runs known only at their samples (the adaptive method, Brian2)."""
    step = np.maximum(np.max(np.abs(np.diff(overlaps, axis=0)), axis=-1),
                      np.max(np.abs(np.diff(gains, axis=0)), axis=-1))
    return np.concatenate([np.zeros((1,) + step.shape[1:]), np.cumsum(step, axis=0)])


def gain_logits(g: np.ndarray) -> np.ndarray:
    """ln g, the logits whose softmax is g (a gain that underflowed to 0 gets LOGIT_FLOOR)."""
    return np.log(np.maximum(g, np.nextafter(0.0, 1.0)))


def replicator_rates(g: np.ndarray, target: np.ndarray, tau_g: float) -> tuple[np.ndarray, np.ndarray]:
    """The paper's replicator equation (eq. 6) in the model's units: (dg/dt, d ln g/dt) with
    tau_g dg/dt = g (f - <g, f>), f = beta F(m) - ln g (target = beta F(m)). A gain at 0 stays at 0 (a face of
    the simplex is invariant; g ln g -> 0), and its d ln g/dt is reported as 0."""
    positive = g > 0
    fitness = np.where(positive, target - np.log(np.where(positive, g, 1.0)), 0.0)
    excess = np.where(positive, fitness - np.sum(g * fitness, axis=-1, keepdims=True), 0.0)
    return g * excess / tau_g, excess / tau_g
def sample_count(n_steps: int, dt: float, record_every: float | None = None) -> int:
    """len(sample_steps(...)) plus the final sample, without making the array (it may be too large to make)."""
    if record_every is None:
        return TRACE_SAMPLES
    return n_steps // _stride(n_steps, dt, record_every) + 2


@dataclass(frozen=True)
class RunSettings(checks.SettingsObject):
    """How retrievals are integrated and stopped: the settings of AstroGateModel.run that are not the problem's
    nor the run's inputs. Checked here, once, when made (a bad name or value is an InputError)."""

    kind = "run setting"

    method: str = "euler"
    dt: float | None = None  # ms; None: the parameters' dt (the Brian2 clock)
    dtype: str = "float64"
    stop: str = "fixed_point"
    decided_eps: float = DECIDED_EPS
    decided_window: float = DECIDED_WINDOW
    form: str = "logit"  # the gains' equation: "logit" or "replicator" (the paper's eq. 6 on the gains)

    def __post_init__(self):
        checks.one_of(self.method, METHODS, f"unknown method {checks.shown(self.method)}")
        checks.one_of(self.stop, STOP_RULES, f"unknown stopping rule {checks.shown(self.stop)}")
        checks.one_of(self.dtype, DTYPES, f"unknown dtype {checks.shown(self.dtype)}")
        checks.one_of(self.form, FORMS, f"unknown form {checks.shown(self.form)}")
        decided_eps = checks.finite_number(self.decided_eps, "decided_eps")
        if not 0 < decided_eps < 0.5:
            raise InputError(f"decided_eps must be in (0, 0.5), got {self.decided_eps!r}")
        object.__setattr__(self, "decided_eps", decided_eps)
        object.__setattr__(self, "decided_window", checks.nonnegative_number(self.decided_window, "decided_window"))
        if self.dt is not None:
            object.__setattr__(self, "dt", checks.positive_number(self.dt, "dt"))
        if self.form == "replicator" and (self.method, self.stop, self.dtype) != ("euler", "fixed_point", "float64"):
            raise InputError(f"form 'replicator' is the paper's forward Euler on the gains: it takes method 'euler', "
                             f"stop 'fixed_point' and dtype 'float64', not {self.method!r}, {self.stop!r}, "
                             f"{self.dtype!r}")
        if self.method == "adaptive" and (self.stop != "fixed_point" or self.dtype != "float64" or self.dt is not None):
            raise InputError("method 'adaptive' takes stop='fixed_point', dtype='float64' and no dt")

    def options(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RunInputs:
    """What a run starts from and is driven by besides the cue: u(0) and a(0) (None: from the cue, uniform
    gains) and an input current I (the cue's shape) applied while t < t_current (ms)."""

    u0: object = None
    a0: object = None
    current: object = None
    t_current: float = 0.0


# the reference: forward Euler at the Brian2 clock, float64, stopped at the fixed point (what the theory tests use)
REFERENCE_SETTINGS = RunSettings()
# measured to give the reference's retrieval outcomes (docs/results/fast_retrieval.md): the reference's
# integrator and step (exponential Euler at the same step changes outcomes where tau_g = 2 ms), float32, and each
# cue stopped once its outcome is decided
FAST_SETTINGS = RunSettings(method="euler", dtype="float32", stop="decided")
SETTINGS = {"reference": REFERENCE_SETTINGS, "fast": FAST_SETTINGS}


def run_settings(name: str = "fast", **changes) -> RunSettings:
    """A named preset ("fast" or "reference") with some of its fields changed."""
    if not isinstance(name, str) or name not in SETTINGS:  # a str first: a list is not hashable
        raise InputError(f"unknown run settings {checks.shown(name)}: use {' or '.join(SETTINGS)}")
    return SETTINGS[name].changed(**changes)


@dataclass(frozen=True)
class StepRules:
    """When a cue of a fixed-step run stops (see AstroGateModel.run)."""

    tol: float  # fixed-point rule: max|du/dt|, max|da/dt| below tol (1/ms)
    decided: bool  # also the "decided" rule
    eps: float  # leading gain above 1 - eps
    window_checks: int  # consecutive step starts at which the decided conditions must hold


@dataclass
class Trajectory:
    """A simulated run: final state, sampled traces and how it ended."""

    t: np.ndarray  # (T,) sample times, ms
    u: np.ndarray  # final u, (N,) or (B, N)
    a: np.ndarray  # final logits, (K,) or (B, K)
    overlaps: np.ndarray  # (T, K) or (T, B, K)
    gains: np.ndarray  # (T, K) or (T, B, K)
    energy: np.ndarray  # (T,) or (T, B)
    converged: np.ndarray  # bool, () or (B,): stopped by a rule before the time limit
    t_converged: np.ndarray  # ms, when the cue stopped; NaN at the time limit
    steps: int  # time steps taken (Euler) or right-hand-side evaluations (adaptive)
    method: str
    stop_reason: str  # "converged" (all at the fixed point), "outcome decided" (all stopped) or "time limit"
    # per cue: "fixed point", "decided" or "time limit"; () or (B,)
    stop_rule: np.ndarray = field(default_factory=lambda: np.array("time limit"))
    cue_steps: np.ndarray | None = None  # steps each cue took, () or (B,); None for the adaptive method
    dt: float | None = None  # ms, the fixed step (None: adaptive)
    dtype: str = "float64"
    form: str = "logit"
    # ms, () or (B,): when the run came to rest (see the function convergence_time); None: not computed
    convergence_time: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


class _WorkBoundReached(Exception):
    """Raised inside LSODA's right-hand side to stop an adaptive run at its work bound."""

    def __init__(self, t: float):
        super().__init__(t)
        self.t = float(t)


class AstroGateModel:
    """Patterns plus parameters; the right-hand side, energy, fixed points and integrators."""

    def __init__(self, patterns, params: Parameters | None = None):
        self.xi = validate_patterns(patterns)
        self.K, self.N = self.xi.shape
        if params is not None:
            checks.instance(params, Parameters, "params", "an astrogate Parameters")
        self.params = (params or Parameters()).resolved(self.N)
        self.beta = float(self.params.beta)
        self.F = self.params.F
        self._cast: dict[str, np.ndarray] = {}

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
        _, _, _, drive, target = self.step_terms(self.xi, u, a)
        if current is not None:
            drive = drive + current
        return (drive - u) / self.params.tau_u, (target - a) / self.params.tau_g

    @property
    def kappa_K(self) -> float:
        return self.params.kappa * self.K

    def energy(self, u, a) -> np.ndarray:
        """Lyapunov function L(u, a) of the model (docs/model.md, valid for I = 0).
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

    def attention_readout(self, v, g=None) -> np.ndarray:
        """The value mixture xi^T g. With g = softmax((beta/N) xi v) and F linear this is
        scaled dot-product attention with query v and keys = values = the patterns."""
        if g is None:
            g = self.gains(self.beta * self.F.F(self.overlaps(v)))
        return g @ self.xi

    # -- integration -----------------------------------------------------------------------
    def patterns_as(self, dtype: str) -> np.ndarray:
        """The patterns in the working precision of a run (a float32 copy made once)."""
        if dtype == "float64":
            return self.xi
        if dtype not in self._cast:
            self._cast[dtype] = self.xi.astype(dtype)
        return self._cast[dtype]

    def run(self, cue, duration: float = 500.0, settings: RunSettings | None = None, *, tol: float = 1e-8,
            record_every: float | None = None, traces: bool = True, inputs: RunInputs | None = None,
            **changes) -> Trajectory:
        """Integrate from the cue; each cue stops on its own (and leaves the batch) when a stopping rule
        holds, or at `duration` ms.

        settings: how to integrate and stop (RunSettings; the reference settings if None); `changes` are
        RunSettings fields changed for this run (``method="adaptive"``, ``stop="decided"``, ``dtype="float32"``).

        Stopping rules (`stop`; `Trajectory.stop_rule` says which one stopped each cue):

          "fixed_point": max|du/dt| and max|da/dt| below tol (1/ms), the rule the theory tests use;

          "decided": the fixed-point rule, or the outcome is decided (`outcome_decided`): the leading gain
             is above 1 - decided_eps, it also leads the targets beta F(m), every u_i has the sign of its
             drive, all of it held for decided_window ms.

        method: "euler" (forward Euler, the reference the Brian2 network matches step for step),
            "exponential_euler" (what Brian2's method='exponential_euler' computes on the network's
            equations: the linear decays of u and a exact over a step, the drive held) or "adaptive"
            (SciPy LSODA, all cues together, fixed-point rule only).

        dt: the step in ms (None: params.dt, the Brian2 clock). dtype: "float64" or "float32".
        cue: (N,) or (B, N); gives u(0) = cue_scale * cue unless inputs.u0 is given.
        inputs: RunInputs: u0, a0, and an input current I (same shape as cue) applied while t < t_current; no cue
        stops meanwhile.
        record_every: sampling interval of the traces in ms; by default about 400 samples spaced
        logarithmically in time, since the retrieval transient lasts a few ms of a long run.
        traces: False records no traces (t, overlaps, gains and energy are empty), for throughput.

        form: "logit" (tau_g da/dt = beta F(m) - a, g = softmax(a): the simplex holds to round-off) or
            "replicator" (the paper's eq. 6, forward Euler on the gains g themselves, step for step as the paper
            integrates it; method "euler", stop "fixed_point", float64). The two agree to O(dt). A replicator
            step that would make a gain negative (dt too large for the fitness differences) is refused with an
            InputError saying when; a gain that underflows to 0 stays at 0 (docs/model.md).

        Every run reports `convergence_time` (ms): the first time after which the overlaps and gains move, in
        total, by at most CONVERGENCE_DELTA (function convergence_time).
        """
        if settings is not None:
            checks.instance(settings, RunSettings, "settings", "a RunSettings (astrogate.run_settings)")
        settings = (settings or REFERENCE_SETTINGS).changed(**changes)
        inputs = RunInputs() if inputs is None else checks.instance(inputs, RunInputs, "inputs", "a RunInputs")
        method, dt, dtype, stop, form = settings.method, settings.dt, settings.dtype, settings.stop, settings.form
        u0, a0, current = inputs.u0, inputs.a0, inputs.current
        duration = checks.duration(duration)
        tol = checks.tolerance(tol)
        record_every = checks.optional_duration(record_every, "record_every")
        traces = checks.flag(traces, "traces")
        t_current = checks.finite_number(inputs.t_current, "t_current")
        if dt is not None:
            # a step given here replaces params.dt, so it gets the stability check that Parameters gives params.dt
            checks.euler_stable_dt(dt, {"tau_u": self.params.tau_u, "tau_g": self.params.tau_g})
        step_ms = self.params.dt if dt is None else dt
        n_steps = euler_steps(duration, step_ms)  # refuses an absurd number of steps before int() overflows
        u_init, a_init = self.initial_state(cue)
        if not np.all(np.isfinite(u_init)):
            raise InputError(f"u(0) = cue_scale * cue overflows float64 (cue_scale = {self.params.cue_scale:g}, "
                             f"max|cue| = {np.max(np.abs(validate_cue(cue, self.N))):g})")
        batch = int(np.prod(u_init.shape[:-1]))
        if traces:
            samples = sample_count(n_steps, self.params.dt if method == "adaptive" else step_ms, record_every)
            # fixed steps keep overlaps and gains (B x K) per sample; LSODA's output also holds u and a
            per_sample = 2 * batch * self.K if method != "adaptive" else batch * (2 * self.N + 4 * self.K)
            require_memory(8 * samples * per_sample, f"tracing {samples} samples of {batch} cue(s) with K = "
                           f"{self.K} patterns and N = {self.N} neurons (record_every = {record_every} ms)")
        if u0 is not None:
            u_init = validate_cue(u0, self.N, "u0").astype(float).copy()
        if a0 is not None:
            a_init = finite_nonempty(real_array(a0, "a0"), "a0").copy()
            if a_init.shape != u_init.shape[:-1] + (self.K,):
                raise InputError(f"a0: expected shape {u_init.shape[:-1] + (self.K,)}, got {a_init.shape}")
        if current is not None:
            current = validate_cue(current, self.N, "current")
            if t_current <= 0:
                current = None
        if method == "adaptive":
            state = batch * (self.N + self.K)  # LSODA integrates every cue's u and a as one system
            require_memory(2 * 8 * state**2, f"the adaptive solver (its dense Jacobian and LU factors of {state} "
                           f"variables: {batch} cue(s) of N = {self.N} neurons and K = {self.K} patterns; method "
                           f"'euler' holds none)")
            return self._run_adaptive(u_init, a_init, duration, tol, record_every, current, t_current)
        rules = StepRules(tol=tol, decided=stop == "decided", eps=settings.decided_eps,
                          window_checks=1 + min(n_steps, int(np.ceil(min(settings.decided_window / step_ms, n_steps) - 1e-9))))
        return self._run_fixed_step(u_init, a_init, method, step_ms, n_steps, rules, dtype,
                                    sample_steps(n_steps, step_ms, record_every), traces, current, t_current, form)

    def step_terms(self, xi, u, a, g=None):
        """The quantities of one step at state (u, a), in the precision of xi: v, m, g, the recurrent drive
        kappa K sum_mu g_mu F'(m_mu) xi[mu] and the logit targets beta F(m). g: the gains themselves where the
        state holds them (the replicator form), instead of softmax(a)."""
        v = np.tanh(self.params.gamma * u)
        m = v @ xi.T / self.N
        if g is None:
            g = softmax(a, axis=-1)
        drive = (self.kappa_K * g * self.F.dF(m)) @ xi
        return v, m, g, drive, self.beta * self.F.F(m)

    @staticmethod
    def outcome_decided(u, a, g, drive, target, eps: float) -> np.ndarray:
        """Per cue: the leading gain is above 1 - eps, the same pattern leads the targets beta F(m), and
        every u_i has the sign of its drive. While this holds, u_i moves toward its drive (a convex
        combination of u_i and the drive in both integrators) and so keeps its sign: sign(v) cannot change;
        and the leading logit relaxes toward the largest target, so no other gain can overtake it."""
        lead = np.argmax(a, axis=-1)
        committed = np.take_along_axis(g, lead[..., None], axis=-1)[..., 0] > 1.0 - eps
        leads_targets = np.argmax(target, axis=-1) == lead
        aligned = np.all(np.sign(u) == np.sign(drive), axis=-1)
        return committed & leads_targets & aligned

    def _run_fixed_step(self, u, a, method, dt, n_steps, rules, dtype, sampled, traces, current, t_current,
                        form="logit") -> Trajectory:
        """Forward or exponential Euler; each cue leaves the batch when a stopping rule holds for it. The
        astrocytes' state is the logits a (logit form) or the gains g themselves (replicator form)."""
        p = self.params
        replicator = form == "replicator"
        single = u.ndim == 1
        u_all = np.array(np.atleast_2d(u), dtype=dtype)
        a_all = np.array(np.atleast_2d(a), dtype=dtype)
        if replicator:
            a_all = self.gains(a_all)  # the state is the gains: g(0) = softmax(a(0)), uniform by default
        n_cues = u_all.shape[0]
        drive_in = None if current is None else np.broadcast_to(np.atleast_2d(current), u_all.shape).astype(dtype)
        xi = self.patterns_as(dtype)
        # Python floats: a NumPy float64 scalar would promote float32 states to float64 (NEP 50)
        decay_u, decay_a = math.exp(-dt / p.tau_u), math.exp(-dt / p.tau_g)
        active = np.arange(n_cues)
        uw, aw = u_all.copy(), a_all.copy()  # the active cues' state, compacted
        held = np.zeros(n_cues, int)  # consecutive checks at which the decided conditions held (active cues)
        last_lead = np.full(n_cues, -1)
        rule = np.full(n_cues, "time limit", dtype=object)
        t_stop = np.full(n_cues, np.nan)
        cue_steps = np.full(n_cues, n_steps)
        recorded = set(sampled.tolist())
        times, m_trace, g_trace, energy = [], [], [], []
        # convergence_time: the path length of (m, g) per cue over the sampled steps (and each cue's last step)
        path = np.zeros(n_cues)
        previous = None  # (m, g) of the active cues at the previous sample
        checkpoint_t, checkpoint_path = [], []

        def logits(state):
            return gain_logits(state) if replicator else state

        def record(step):
            u_all[active], a_all[active] = uw, aw
            checkpoint_t.append(step * dt)
            checkpoint_path.append(path.copy())
            if not traces:
                return
            u64, a64 = u_all.astype(float), logits(a_all.astype(float))
            times.append(step * dt)
            m_trace.append(self.overlaps(self.rates(u64)))
            g_trace.append(self.gains(a64))
            energy.append(self.energy(u64, a64))

        def walk(m, g):
            nonlocal previous
            if previous is not None:
                path[active] += np.maximum(np.max(np.abs(m - previous[0]), axis=-1),
                                           np.max(np.abs(g - previous[1]), axis=-1))
            previous = (m, g)

        step = 0
        for step in range(n_steps):
            t = step * dt
            drive_on = drive_in is not None and t < t_current
            v, m, g, drive, target = self.step_terms(xi, uw, aw, g=aw if replicator else None)
            sampled_now = step in recorded
            if sampled_now:
                walk(m, g)
            if replicator:
                dg, dlog_g = replicator_rates(aw, target, p.tau_g)
            if drive_on:
                drive = drive + drive_in[active]
            else:
                gain_rate = np.max(np.abs(dlog_g if replicator else (target - aw) / p.tau_g), axis=-1)
                rate = np.maximum(np.max(np.abs(drive - uw), axis=-1) / p.tau_u, gain_rate)
                at_fixed_point = rate < rules.tol
                done = at_fixed_point.copy()
                if rules.decided:
                    lead = np.argmax(aw, axis=-1)
                    holds = self.outcome_decided(uw, aw, g, drive, target, rules.eps)
                    held_now = np.where(holds & (lead == last_lead[: active.size]), held[: active.size] + 1,
                                        holds.astype(int))
                    held[: active.size], last_lead[: active.size] = held_now, lead
                    decided = held_now >= rules.window_checks
                    rule[active[decided & ~at_fixed_point]] = "decided"
                    done |= decided
                if np.any(done):
                    if not sampled_now:  # the leaving cues' last stretch of path
                        walk(m, g)
                    leaving = active[done]
                    rule[active[at_fixed_point]] = "fixed point"
                    t_stop[leaving], cue_steps[leaving] = t, step
                    u_all[leaving], a_all[leaving] = uw[done], aw[done]
                    keep = ~done
                    active, uw, aw = active[keep], uw[keep], aw[keep]
                    v, drive, target = v[keep], drive[keep], target[keep]
                    previous = (previous[0][keep], previous[1][keep])
                    if replicator:
                        dg = dg[keep]
                    n_left = active.size
                    held[:n_left], last_lead[:n_left] = held[: keep.size][keep], last_lead[: keep.size][keep]
                    if n_left == 0:
                        break
            if sampled_now:
                record(step)
            if method == "euler":
                du = (drive - uw) / p.tau_u
                uw += dt * du
                if replicator:  # eq. 6 as the paper integrates it: forward Euler on the gains
                    aw = aw + dt * dg
                    self._check_simplex(aw, (step + 1) * dt)
                else:
                    da = (target - aw) / p.tau_g
                    aw += dt * da
            else:  # exponential Euler, as Brian2 writes it: x <- target + (x - target) exp(-dt / tau)
                uw = drive + (uw - drive) * decay_u
                aw = target + (aw - target) * decay_a
            check_finite(uw, aw, (step + 1) * dt)
        else:
            step = n_steps
            if active.size:  # the final state's (m, g)
                _, m, g, _, _ = self.step_terms(xi, uw, aw, g=aw if replicator else None)
                walk(m, g)
        record(step)
        stopped = ~np.isnan(t_stop)
        rest = convergence_time(np.array(checkpoint_t), np.array(checkpoint_path),
                                np.where(stopped, t_stop, step * dt))

        def shaped(x):
            return x[0] if single else x

        def traced(x):
            x = np.array(x)
            return x[:, 0] if single and x.ndim > 1 else x  # no traces: empty

        if np.all(rule == "fixed point"):
            reason = "converged"
        elif np.all(stopped):
            reason = "outcome decided"
        else:
            reason = "time limit"
        extra = {}
        if replicator:  # the gains' sum drifts from 1 by round-off only (eq. 6 conserves it)
            extra["simplex_error"] = float(np.max(np.abs(np.sum(a_all, axis=-1) - 1.0)))
        return Trajectory(
            t=np.array(times),
            u=shaped(u_all.astype(float)),
            a=shaped(logits(a_all.astype(float))),
            overlaps=traced(m_trace),
            gains=traced(g_trace),
            energy=traced(energy),
            converged=shaped(stopped),
            t_converged=shaped(t_stop),
            steps=step,
            method=method,
            stop_reason=reason,
            stop_rule=shaped(rule.astype(str)),
            cue_steps=shaped(cue_steps),
            dt=dt,
            dtype=str(uw.dtype),  # the working precision as it ended (a promotion to float64 would show here)
            form=form,
            convergence_time=shaped(rest),
            extra=extra,
        )

    @staticmethod
    def _check_simplex(g: np.ndarray, t: float) -> None:
        """Refuse a replicator step that made a gain negative: forward Euler on eq. 6 overshoots when
        dt / tau_g times a fitness deficit exceeds 1 (docs/model.md)."""
        if np.any(g < 0):
            raise InputError(f"form 'replicator': a gain became negative ({float(np.min(g)):.3g}) at t = {t:g} ms: "
                             f"forward Euler on eq. 6 overshoots when dt / tau_g times a pattern's fitness deficit "
                             f"exceeds 1; use a smaller dt, or the logit form")

    def adaptive_work_bound(self, duration: float) -> int:
        """The most right-hand-side evaluations an adaptive run of `duration` ms may take (ADAPTIVE_WORK_FACTOR)."""
        return max(ADAPTIVE_MIN_EVALUATIONS, ADAPTIVE_WORK_FACTOR * euler_steps(duration, self.params.dt))

    def _run_adaptive(self, u, a, duration, tol, record_every, current, t_current) -> Trajectory:
        shape_u, shape_a = u.shape, a.shape
        n_u = u.size
        counter = {"rhs": 0}
        bound = self.adaptive_work_bound(duration)

        def unpack(y):
            return y[:n_u].reshape(shape_u), y[n_u:].reshape(shape_a)

        def rhs(t, y, drive):
            counter["rhs"] += 1
            if counter["rhs"] > bound:
                raise _WorkBoundReached(t)
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
        converged_at = np.nan
        try:
            if current is not None and t_current > 0:
                t_end = min(t_current, duration)
                segments.append(self._solve(rhs, None, (t0, t_end), y0, record_every, current))
                y0, t0 = segments[-1].y[:, -1], t_end
            if t0 < duration:
                sol = self._solve(rhs, settled, (t0, duration), y0, record_every, None)
                segments.append(sol)
                if sol.status == 1 and sol.t_events[0].size:
                    converged_at = float(sol.t_events[0][0])
        except _WorkBoundReached as stop:
            p = self.params
            raise InputError(f"the adaptive solver (LSODA) stopped after {bound} evaluations of the right-hand side, "
                             f"at t = {stop.t:.3g} ms of {duration:g} ms ({ADAPTIVE_WORK_FACTOR} times the forward-Euler "
                             f"steps of dt = {p.dt:g} ms, or {ADAPTIVE_MIN_EVALUATIONS}): the system is too stiff for "
                             f"it (kappa = {p.kappa:g}, beta = {p.beta:g}, gamma = {p.gamma:g}); use method 'euler', or "
                             f"smaller parameters") from None
        t = np.concatenate([s.t for s in segments])
        ys = np.concatenate([s.y for s in segments], axis=1)
        keep = np.concatenate([[True], np.diff(t) > 0])
        t, ys = t[keep], ys[:, keep]
        us = np.stack([unpack(y)[0] for y in ys.T])
        as_ = np.stack([unpack(y)[1] for y in ys.T])
        u_final, a_final = unpack(ys[:, -1])
        batch_shape = shape_u[:-1]
        conv = np.full(batch_shape, not np.isnan(converged_at))
        overlaps, gains = self.overlaps(self.rates(us)), self.gains(as_)
        return Trajectory(
            t=t,
            u=u_final.copy(),
            a=a_final.copy(),
            overlaps=overlaps,
            gains=gains,
            energy=self.energy(us, as_),
            converged=conv,
            t_converged=np.full(batch_shape, converged_at),
            steps=counter["rhs"],
            method="adaptive",
            stop_reason="converged" if np.all(conv) else "time limit",
            stop_rule=np.where(conv, "fixed point", "time limit"),
            convergence_time=convergence_time(t, path_length(overlaps, gains)),
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
