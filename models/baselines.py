"""Retrieval models compared by the benchmark, all with one interface.

    model = make_model(spec, patterns)          # patterns: K x N, entries +-1
    result = model.retrieve(cues)               # cues: B x N (+-1, or 0 where unknown)
    result.states (B x N, +-1, 0 where undecided), result.steps (B,), result.converged (B,)

Every model is vectorised over the batch of cues. "steps" counts the model's own unit of work:
full asynchronous sweeps for the discrete networks, update steps for modern Hopfield, Euler steps
for the continuous ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from astrogate.errors import InputError
from astrogate.models.abstract import FAST_SETTINGS, AstroGateModel, RunSettings, run_settings
from astrogate.models.parameters import Parameters
from astrogate.models import checks
from astrogate.models.patterns import finite_nonempty, flip_cue, random_patterns, real_array, validate_cue


@dataclass
class RetrievalResult:
    states: np.ndarray  # B x N final states, +-1 (0 where a neuron ended exactly undecided)
    steps: np.ndarray  # (B,) work units until the state settled (or the cap)
    converged: np.ndarray  # (B,) bool: settled before the cap
    # models with continuous rates and gains (the gated network) report them, for the paper's observables
    rates: np.ndarray | None = None  # B x N final rates tanh(gamma u)
    gains: np.ndarray | None = None  # B x K final gains
    convergence_time: np.ndarray | None = None  # (B,) ms (models/abstract.py convergence_time)


def _sign_keep(field: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """sign(field), keeping the previous value where the field is exactly zero."""
    return np.where(field > 0, 1.0, np.where(field < 0, -1.0, previous))


def _patterns(patterns) -> np.ndarray:
    """The patterns as given (not normalised: the discrete networks store +-1 as they are), refused where
    validate_patterns refuses them: not a finite real K x N array with K >= 1 and N >= 2."""
    xi = real_array(patterns, "patterns")
    if xi.ndim != 2 or xi.shape[0] < 1 or xi.shape[1] < 2:
        raise InputError(f"patterns: expected a K x N matrix with K >= 1 and N >= 2, got shape {xi.shape}")
    return finite_nonempty(xi, "patterns")


class _Model:
    name = "model"

    def __init__(self, patterns):
        self.xi = _patterns(patterns)
        self.K, self.N = self.xi.shape

    def _cues(self, cues) -> np.ndarray:
        cues = validate_cue(cues, self.N)
        return np.atleast_2d(cues).astype(float)

    def retrieve(self, cues) -> RetrievalResult:
        raise NotImplementedError


# -- reference points ---------------------------------------------------------------------
class CueUnchanged(_Model):
    """The cue itself, returned as is: the floor every model should beat."""

    def retrieve(self, cues):
        cues = self._cues(cues)
        B = cues.shape[0]
        return RetrievalResult(np.sign(cues), np.zeros(B, int), np.ones(B, bool))


class NearestPattern(_Model):
    """Oracle: the stored pattern with the largest overlap with the cue (not a network)."""

    def retrieve(self, cues):
        cues = self._cues(cues)
        best = np.argmax(cues @ self.xi.T, axis=1)
        B = cues.shape[0]
        return RetrievalResult(self.xi[best].copy(), np.zeros(B, int), np.ones(B, bool))


# -- asynchronous discrete networks -------------------------------------------------------
class _AsyncNetwork(_Model):
    """Asynchronous sign updates in a random order per sweep, until a sweep changes no bit."""

    def __init__(self, patterns, max_sweeps: int = 100, seed: int = 0):
        super().__init__(patterns)
        self.max_sweeps = checks.whole_number(max_sweeps, f"{self.name}: option max_sweeps", 1)
        self.rng = np.random.default_rng(checks.seed(seed, f"{self.name}: option seed"))

    def retrieve(self, cues):
        state = self._cues(cues)
        B = state.shape[0]
        steps = np.full(B, self.max_sweeps)
        converged = np.zeros(B, bool)
        context = self._context(state)
        for sweep in range(1, self.max_sweeps + 1):
            changed = np.zeros(B, bool)
            for i in self.rng.permutation(self.N):
                new = _sign_keep(self._field(context, state, i), state[:, i])
                flipped = new != state[:, i]
                if np.any(flipped):
                    self._update(context, state, i, new)
                    state[:, i] = new
                    changed |= flipped
            newly = ~changed & ~converged
            steps[newly] = sweep
            converged |= ~changed
            if np.all(converged):
                break
        return RetrievalResult(state, steps, converged)


class ClassicalHopfield(_AsyncNetwork):
    """Hopfield (1982): W = xi^T xi / N with zero diagonal, asynchronous sign updates."""

    name = "classical Hopfield"

    def _context(self, state):
        W = self.xi.T @ self.xi / self.N
        np.fill_diagonal(W, 0.0)
        return {"W": W}

    def _field(self, context, state, i):
        return state @ context["W"][i]

    def _update(self, context, state, i, new):
        pass


class DenseAssociativeMemory(_AsyncNetwork):
    """Krotov & Hopfield (2016): s_i <- sign(sum_mu F(xi_mu,i + h_mu,not i) - F(-xi_mu,i + h_mu,not i)),
    h_mu,not i = sum_{j != i} xi_mu,j s_j; F(z) = z^n, or exp(z) (Demircigil et al. 2017).
    For +-1 patterns the bracket is xi_mu,i D(h) with D(h) = F(h + 1) - F(h - 1), so the field of
    neuron i is one product D(h_not i) @ xi[:, i]."""

    name = "dense associative memory"

    def __init__(self, patterns, power: int | str = 3, max_sweeps: int = 100, seed: int = 0):
        super().__init__(patterns, max_sweeps, seed)
        if power != "exp" and (isinstance(power, (bool, np.bool_)) or not isinstance(power, (int, np.integer))
                               or power < 2):
            raise InputError(f"dense associative memory: power must be an integer >= 2 or 'exp', got "
                             f"{checks.shown(power)}")
        # the fields h have |h| <= N, so each term of D(h) @ xi is below 2 (N + 1)^power: it must stay finite
        if power != "exp" and power * math.log(self.N + 1) + math.log(2 * self.K) >= math.log(np.finfo(float).max):
            raise InputError(f"dense associative memory: power {int(power)} overflows float64 for N = {self.N} "
                             f"((N + 1)^power); use a smaller power or 'exp'")
        if not np.all(np.abs(self.xi) == 1):
            raise InputError("dense associative memory: patterns must have entries +-1")
        self.power = power

    def _context(self, state):
        return {"h": state @ self.xi.T}  # B x K fields, kept current as bits change

    def _field(self, context, state, i):
        h_rest = context["h"] - np.outer(state[:, i], self.xi[:, i])
        if self.power == "exp":  # exp(h+1) - exp(h-1) = 2 sinh(1) exp(h); rescaled per row: exp(N) overflows
            D = np.exp(h_rest - h_rest.max(axis=1, keepdims=True))
        else:
            D = (h_rest + 1.0) ** self.power - (h_rest - 1.0) ** self.power
        return D @ self.xi[:, i]

    def _update(self, context, state, i, new):
        context["h"] += np.outer(new - state[:, i], self.xi[:, i])


# -- continuous and one-shot networks -----------------------------------------------------
class ContinuousHopfield(_Model):
    """Hopfield (1984): du/dt = -u + W tanh(gain u), W = xi^T xi / N with zero diagonal, forward Euler
    from u(0) = cue (time in units of the neuron time constant); settled when max|du/dt| < tol."""

    def __init__(self, patterns, gain: float = 3.0, dt: float = 0.05, max_steps: int = 2000, tol: float = 1e-4):
        super().__init__(patterns)
        what = "continuous Hopfield: option"
        self.gain = checks.finite_number(gain, f"{what} gain")
        self.dt = checks.positive_number(dt, f"{what} dt")
        if self.dt >= 1.0:  # time in units of the neuron time constant: forward Euler overshoots from dt = 1
            raise InputError(f"{what} dt must be below 1 (the neuron time constant), got {self.dt!r}")
        self.max_steps = checks.whole_number(max_steps, f"{what} max_steps", 1)
        self.tol = checks.tolerance(tol, f"{what} tol")

    def retrieve(self, cues):
        u = self._cues(cues).copy()
        W = self.xi.T @ self.xi / self.N
        np.fill_diagonal(W, 0.0)
        B = u.shape[0]
        steps = np.full(B, self.max_steps)
        converged = np.zeros(B, bool)
        for step in range(self.max_steps):
            du = np.tanh(self.gain * u) @ W - u
            still = np.max(np.abs(du), axis=1) < self.tol
            steps[still & ~converged] = step
            converged |= still
            if np.all(converged):
                break
            u += self.dt * du * ~converged[:, None]
        return RetrievalResult(np.sign(u), steps, converged)


class ModernHopfield(_Model):
    """Ramsauer et al. (2020): x <- xi^T softmax(beta xi x); one step, or iterated until
    max|x_new - x| < tol. The retrieved state is sign(x)."""

    def __init__(self, patterns, beta: float, iterate: bool = False, max_steps: int = 100, tol: float = 1e-6):
        super().__init__(patterns)
        self.beta = checks.positive_number(beta, "modern Hopfield: beta")
        self.iterate = checks.flag(iterate, "modern Hopfield: option iterate")
        self.max_steps = checks.whole_number(max_steps, "modern Hopfield: option max_steps", 1)
        self.tol = checks.tolerance(tol, "modern Hopfield: option tol")

    def retrieve(self, cues):
        x = self._cues(cues)
        B = x.shape[0]
        limit = self.max_steps if self.iterate else 1
        steps = np.full(B, limit)
        converged = np.zeros(B, bool) if self.iterate else np.ones(B, bool)
        for step in range(1, limit + 1):
            new = softmax(self.beta * (x @ self.xi.T), axis=1) @ self.xi
            if self.iterate:
                still = np.max(np.abs(new - x), axis=1) < self.tol
                steps[still & ~converged] = step
                converged |= still
            x = new
            if np.all(converged):
                break
        return RetrievalResult(np.sign(x), steps, converged)


# Bytes one NAAM batch may hold at once (N x N states and step temporaries per cue); larger batches of cues
# run in chunks of this size, so a benchmark cell never holds B x N x N arrays beyond it.
NAAM_BATCH_BYTES = 256 * 2**20
# A cue counts as settled (RetrievalResult.converged) when every |rate| at the final state is below this;
# a diagnostic only: the integration itself always takes its fixed number of steps.
NAAM_SETTLED_RATE = 1e-3


def naam_bytes_per_cue(N: int, K: int) -> int:
    """Peak bytes a NAAM cue holds during a step: S, P, g, psi and the new dP (N x N each), the contraction's
    two N x K temporaries, and slack for the small vectors."""
    return 8 * (6 * N**2 + 3 * N * K)


def naam_peak_bytes(N: int, K: int, n_cues: int) -> int:
    """Peak bytes of NAAM's states on a batch of n_cues (run in chunks of at most NAAM_BATCH_BYTES)."""
    per_cue = naam_bytes_per_cue(N, K)
    return per_cue * min(n_cues, max(1, NAAM_BATCH_BYTES // per_cue))


@dataclass
class NaamState:
    """NAAM's state for B cues: neurons x (B x N), synapses S and astrocytic processes P (B x N x N)."""
    x: np.ndarray
    S: np.ndarray
    P: np.ndarray


class NeuronAstrocyteMemory(_Model):
    """The neuron-astrocyte associative memory of Kozachkov, Slotine & Krotov ("Neuron-astrocyte associative
    memory", arXiv 2311.08135), with the dynamics, constants, initial state, step and stop of the authors'
    demonstration: github.com/kozleo/naam, notebooks/Basic-Neuron-Astrocyte-Associative-Memory-Network-Tutorial.ipynb
    at commit ffd04674301a54a11ee258f8674a8fa4497fb524 (the equations are implemented here, not their code).

    Neurons x_i, synapses S_ij and astrocytic processes P_ij, every time constant 1, gain b:

        h = tanh(b x),  g = tanh(b S),  psi = tanh(b P)
        dx/dt = -x + g h                          (g h: the N x N synapse matrix times the rates)
        dS/dt = -S + h h^T + psi
        dP/dt = -P + T:psi / N^3 + g,             T_ijkl = sum_mu xi_mu,i xi_mu,j xi_mu,k xi_mu,l

    (T normalised by N^3, not by K). Initial state: x(0) = the cue, psi(0) = -h0 h0^T, i.e.
    P(0) = artanh(-h0 h0^T) / b, and S(0) = artanh(T:(h0 h0^T) / N^3) / b. Forward Euler with every term from
    the same state, dt = 0.05, a fixed number of steps (1000: no stopping rule); the readout is sign(h).
    The notebook integrates one cue in float32 on a GPU; here a batch of cues in float64.

    T is never built: sum_kl T_ijkl q_kl = sum_mu xi_mu,i xi_mu,j (xi_mu^T q xi_mu), two matrix products of
    O(K N^2) per cue. A cue's S(0) is undefined where |T:(h0 h0^T)| / N^3 >= 1 (many strongly correlated
    patterns: the entries are about (1/N) sum_mu m_mu^2, m_mu the cue's overlaps): such a cue is not integrated,
    its x is NaN and its retrieved state 0 (undecided), never a guess (likewise P(0) for a cue entry so large
    that tanh(b x) rounds to 1).
    """

    def __init__(self, patterns, b: float = 5.0, dt: float = 0.05, steps: int = 1000):
        super().__init__(patterns)
        self.b = checks.positive_number(b, "neuron-astrocyte memory: gain b")
        self.dt = checks.positive_number(dt, "neuron-astrocyte memory: dt")
        if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise InputError(f"neuron-astrocyte memory: steps must be a positive integer, got {checks.shown(steps)}")
        self.steps = checks.whole_number(steps, "neuron-astrocyte memory: steps", 1, checks.MAX_STEPS)

    def contract(self, q: np.ndarray) -> np.ndarray:
        """T:q / N^3 = sum_kl T_ijkl q_kl / N^3 for a batch q (B x N x N), in O(B K N^2) without building T."""
        B, N, K = q.shape[0], self.N, self.K
        projected = (q.reshape(B * N, N) @ self.xi.T).reshape(B, N, K)  # sum_l q_kl xi_mu,l
        per_pattern = np.einsum("bkm,mk->bm", projected, self.xi) / N**3  # xi_mu^T q xi_mu / N^3
        weighted = self.xi.T[None] * per_pattern[:, None, :]  # B x N x K
        return (weighted.reshape(B * N, K) @ self.xi).reshape(B, N, N)

    def bytes_per_cue(self) -> int:
        return naam_bytes_per_cue(self.N, self.K)

    def batch_size(self) -> int:
        """Cues integrated at once: as many as fit in NAAM_BATCH_BYTES (at least one)."""
        return max(1, NAAM_BATCH_BYTES // self.bytes_per_cue())

    def initial_state(self, cues) -> NaamState:
        """x(0) = cue, P(0) = artanh(-h0 h0^T) / b, S(0) = artanh(T:(h0 h0^T) / N^3) / b (h0 = tanh(b x0));
        S is inf or NaN for a cue where the artanh is undefined."""
        x = self._cues(cues).copy()
        h = np.tanh(self.b * x)
        hh = h[:, :, None] * h[:, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            S = np.arctanh(self.contract(hh)) / self.b
        return NaamState(x=x, S=S, P=np.arctanh(-hh) / self.b)

    def derivatives(self, state: NaamState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dx/dt, dS/dt, dP/dt) at `state`, all from the same state."""
        h = np.tanh(self.b * state.x)
        g = np.multiply(state.S, self.b)  # in place from here on: N x N temporaries cost a quarter of a step
        np.tanh(g, out=g)
        psi = np.multiply(state.P, self.b)
        np.tanh(psi, out=psi)
        dx = np.matmul(g, h[:, :, None])[:, :, 0]
        dx -= state.x
        dP = self.contract(psi)
        dP += g
        dP -= state.P
        dS = psi  # psi is not needed again: dS is built in its place
        dS += h[:, :, None] * h[:, None, :]
        dS -= state.S
        return dx, dS, dP

    def euler_step(self, state: NaamState) -> NaamState:
        """One forward-Euler step of dt, in place."""
        dx, dS, dP = self.derivatives(state)
        state.x += self.dt * dx
        dS *= self.dt
        state.S += dS
        dP *= self.dt
        state.P += dP
        return state

    def _integrate(self, cues) -> tuple[np.ndarray, np.ndarray]:
        """(final x, B x N, NaN for cues with an undefined initial state; settled, (B,) bool), in chunks."""
        cues = self._cues(cues)
        B = cues.shape[0]
        x = np.full((B, self.N), np.nan)
        settled = np.zeros(B, bool)
        size = self.batch_size()
        for start in range(0, B, size):
            state = self.initial_state(cues[start:start + size])
            defined = np.isfinite(state.S).all(axis=(1, 2)) & np.isfinite(state.P).all(axis=(1, 2))
            rows = np.arange(start, start + defined.size)[defined]
            if rows.size == 0:
                continue
            state = NaamState(state.x[defined], state.S[defined], state.P[defined])
            for _ in range(self.steps):
                self.euler_step(state)
            dx, dS, dP = self.derivatives(state)
            rate = np.maximum(np.abs(dx).max(1), np.maximum(np.abs(dS).max((1, 2)), np.abs(dP).max((1, 2))))
            x[rows] = state.x
            settled[rows] = rate < NAAM_SETTLED_RATE
        return x, settled

    def integrate(self, cues) -> np.ndarray:
        """The neurons' continuous states x (B x N) after the fixed number of steps (NaN rows: see the class)."""
        return self._integrate(cues)[0]

    def retrieve(self, cues):
        x, settled = self._integrate(cues)
        defined = np.isfinite(x).all(axis=1)
        states = np.zeros_like(x)
        states[defined] = np.sign(np.tanh(self.b * x[defined]))
        return RetrievalResult(states, np.where(defined, self.steps, 0), settled)


class NaamStepper:
    """One cue of NAAM, stepped in place: each call is one `NeuronAstrocyteMemory.euler_step`."""

    def __init__(self, model: NeuronAstrocyteMemory, cue):
        self.model = model
        self.state = model.initial_state(cue)

    def __call__(self) -> NaamState:
        return self.model.euler_step(self.state)


def naam_stepper(N: int, K: int, seed: int = 0, flip: float = 0.1) -> NaamStepper:
    """NAAM on K random +-1 patterns of N neurons, started from pattern 0 with a fraction `flip` of its
    entries negated; calling it takes one forward-Euler step (O(K N^2), N x N synapses and processes)."""
    rng = np.random.default_rng(seed)
    model = NeuronAstrocyteMemory(random_patterns(K, N, rng))
    return NaamStepper(model, flip_cue(model.xi[0], flip, rng))


class AstroGated(_Model):
    """The astrocyte-gated network of the model (docs/model.md; AstroGateModel) on the whole batch. Each cue stops on the
    model's own rules (AstroGateModel.run; by default the fast settings: stopped once its outcome is
    decided) and leaves the batch. steps = integration steps of each cue."""

    def __init__(self, patterns, params: Parameters | None = None, settings: RunSettings = FAST_SETTINGS,
                 max_duration: float = 300.0, tol: float = 1e-6):
        super().__init__(patterns)
        if params is not None:
            checks.instance(params, Parameters, "gated: params", "an astrogate Parameters")
        self.model = AstroGateModel(self.xi, params or Parameters())
        self.settings = checks.instance(settings, RunSettings, "gated: settings", "a RunSettings")
        self.max_duration = checks.duration(max_duration, "gated: option max_duration")
        self.tol = checks.tolerance(tol, "gated: option tol")
        self.last_stop_rules = None

    def retrieve(self, cues):
        run = self.model.run(self._cues(cues), self.max_duration, self.settings, tol=self.tol, traces=False)
        self.last_stop_rules = run.stop_rule  # which rule stopped each cue of the last call
        return RetrievalResult(np.sign(run.u), run.cue_steps, run.converged, rates=self.model.rates(run.u),
                               gains=self.model.gains(run.a), convergence_time=run.convergence_time)


# -- the registry ---------------------------------------------------------------------------
KINDS = {
    "cue": CueUnchanged,
    "oracle": NearestPattern,
    "hopfield": ClassicalHopfield,
    "hopfield-continuous": ContinuousHopfield,
    "dense": DenseAssociativeMemory,
    "modern": ModernHopfield,
    "naam": NeuronAstrocyteMemory,
    "gated": AstroGated,
}


def make_model(kind: str, patterns, **options) -> _Model:
    """A model of the given kind; options are its constructor's keywords (for 'gated', the
    Parameters fields, max_duration, tol, settings = "fast" or "reference" (AstroGateModel's presets) and
    the RunSettings fields method, stop, dtype, decided_eps, decided_window, form; a given dt is the step)."""
    checks.one_of(kind, tuple(KINDS), f"unknown model kind {checks.shown(kind)}")
    if kind == "gated":
        setting_keys = set(RunSettings.__dataclass_fields__) - {"dt"}
        changes = {k: v for k, v in options.items() if k in setting_keys}
        if "dt" in options:  # a step given for this model is the step, whatever the preset's
            changes["dt"] = options["dt"]
        preset = options.get("settings", "fast")
        checks.one_of(preset, ("fast", "reference"), f"unknown run settings {checks.shown(preset)}")
        settings = run_settings(preset, **changes)
        run_options = {k: v for k, v in options.items() if k in ("max_duration", "tol")}
        params = Parameters().updated(**{k: v for k, v in options.items()
                                         if k not in setting_keys | {"settings", "max_duration", "tol"}})
        return AstroGated(patterns, params, settings, **run_options)
    try:
        return KINDS[kind](patterns, **options)
    except TypeError as exc:
        raise InputError(f"model kind {kind!r}: {exc}") from None
