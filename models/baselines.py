"""Retrieval models compared by the benchmark, all with one interface.

    model = make_model(spec, patterns)          # patterns: K x N, entries +-1
    result = model.retrieve(cues)               # cues: B x N (+-1, or 0 where unknown)
    result.states (B x N, +-1, 0 where undecided), result.steps (B,), result.converged (B,)

Every model is vectorised over the batch of cues. "steps" counts the model's own unit of work:
full asynchronous sweeps for the discrete networks, update steps for modern Hopfield, Euler steps
for the continuous ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from astrogate.errors import InputError
from astrogate.models.abstract import FAST_SETTINGS, AstroGateModel, RunSettings, run_settings
from astrogate.models.parameters import Parameters
from astrogate.models.patterns import flip_cue, random_patterns, validate_cue


@dataclass
class RetrievalResult:
    states: np.ndarray  # B x N final states, +-1 (0 where a neuron ended exactly undecided)
    steps: np.ndarray  # (B,) work units until the state settled (or the cap)
    converged: np.ndarray  # (B,) bool: settled before the cap


def _sign_keep(field: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """sign(field), keeping the previous value where the field is exactly zero."""
    return np.where(field > 0, 1.0, np.where(field < 0, -1.0, previous))


def _patterns(patterns) -> np.ndarray:
    xi = np.asarray(patterns, dtype=float)
    if xi.ndim != 2 or xi.shape[0] < 1 or xi.shape[1] < 2:
        raise InputError(f"patterns: expected a K x N matrix with K >= 1 and N >= 2, got shape {xi.shape}")
    return xi


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
        self.max_sweeps = int(max_sweeps)
        self.rng = np.random.default_rng(seed)

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

    def __init__(self, patterns, power: int | str = 3, max_sweeps: int = 100, seed: int = 0):
        super().__init__(patterns, max_sweeps, seed)
        if power != "exp" and (not isinstance(power, int) or power < 2):
            raise InputError(f"dense associative memory: power must be an integer >= 2 or 'exp', got {power!r}")
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
        self.gain, self.dt, self.max_steps, self.tol = float(gain), float(dt), int(max_steps), float(tol)

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
        if not beta > 0:
            raise InputError(f"modern Hopfield: beta must be positive, got {beta!r}")
        self.beta, self.iterate, self.max_steps, self.tol = float(beta), bool(iterate), int(max_steps), float(tol)

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


@dataclass
class NaamState:
    """NAAM's state for B cues: neurons x (B x N), processes p and synapses s (B x N x N), rates v = tanh(gain x)."""
    x: np.ndarray
    p: np.ndarray
    s: np.ndarray
    v: np.ndarray


class NeuronAstrocyteMemory(_Model):
    """Neuron-astrocyte associative memory after Kozachkov, Slotine & Krotov (arXiv 2311.08135).

    A RECONSTRUCTION from the paper's description (neurons x_i, N^2 synapses s_ij, N^2 astrocytic
    processes p_ij coupled by T_ijkl = sum_mu xi_mu,i xi_mu,j xi_mu,k xi_mu,l / N^3), not the authors' code:

        tau_n dx_i/dt  = -x_i + sum_j s_ij v_j,                 v = tanh(gain x)
        tau_p dp_ij/dt = -p_ij + v_i v_j                         (the process senses its synapse's pre/post activity)
        tau_s ds_ij/dt = -s_ij + sum_kl T_ijkl tanh(p_kl)        (processes couple distant synapses)

    With fast synapses and processes, s_ij -> xi_i xi_j m^2 / N and the neurons feel
    sum_mu xi_mu,i tanh-scaled m_mu^3: a dense associative memory with F(m) ~ m^4. T is never built:
    sum_kl T_ijkl q_kl = sum_mu xi_mu,i xi_mu,j (xi_mu^T q xi_mu) / N^3 costs O(K N^2) per cue.
    Synapses and processes start at equilibrium with the cue; time in units of tau_n.
    """

    def __init__(self, patterns, gain: float = 3.0, tau_s: float = 0.5, tau_p: float = 0.5, dt: float = 0.1,
                 max_steps: int = 300, tol: float = 1e-3, cue_scale: float = 0.5):
        super().__init__(patterns)
        self.gain, self.tau_s, self.tau_p, self.dt = float(gain), float(tau_s), float(tau_p), float(dt)
        self.max_steps, self.tol, self.cue_scale = int(max_steps), float(tol), float(cue_scale)

    def contract(self, q: np.ndarray) -> np.ndarray:
        """sum_kl T_ijkl q_kl for a batch q (B x N x N), in O(B K N^2)."""
        per_pattern = np.einsum("kn,bnm,km->bk", self.xi, q, self.xi, optimize=True)  # xi_mu^T q xi_mu
        return np.matmul(self.xi.T[None] * per_pattern[:, None, :], self.xi[None]) / self.N**3

    def initial_state(self, cues) -> NaamState:
        """Neurons at cue_scale x cue; processes and synapses at their equilibrium with those neurons."""
        x = self.cue_scale * self._cues(cues)
        v = np.tanh(self.gain * x)
        p = v[:, :, None] * v[:, None, :]
        return NaamState(x=x, p=p, s=self.contract(np.tanh(p)), v=v)

    def derivatives(self, state: NaamState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dx/dt, dp/dt, ds/dt) at `state`, time in units of tau_n."""
        dx = np.einsum("bij,bj->bi", state.s, state.v) - state.x
        dp = (state.v[:, :, None] * state.v[:, None, :] - state.p) / self.tau_p
        ds = (self.contract(np.tanh(state.p)) - state.s) / self.tau_s
        return dx, dp, ds

    def euler_step(self, state: NaamState, derivatives=None) -> NaamState:
        """One forward-Euler step of dt, in place; `derivatives` if already computed at `state`."""
        dx, dp, ds = self.derivatives(state) if derivatives is None else derivatives
        state.x += self.dt * dx
        state.p += self.dt * dp
        state.s += self.dt * ds
        state.v = np.tanh(self.gain * state.x)
        return state

    def retrieve(self, cues):
        state = self.initial_state(cues)
        B = state.x.shape[0]
        steps = np.full(B, self.max_steps)
        converged = np.zeros(B, bool)
        for step in range(self.max_steps):
            derivatives = dx, dp, ds = self.derivatives(state)
            rate = np.maximum(np.abs(dx).max(1), np.maximum(np.abs(dp).max((1, 2)), np.abs(ds).max((1, 2)) * self.N))
            still = rate < self.tol
            steps[still & ~converged] = step
            converged |= still
            if np.all(converged):
                break
            self.euler_step(state, derivatives)
        return RetrievalResult(np.sign(state.x), steps, converged)


class NaamStepper:
    """One cue of NAAM, stepped in place: each call is one `NeuronAstrocyteMemory.euler_step`."""

    def __init__(self, model: NeuronAstrocyteMemory, cue):
        self.model = model
        self.state = model.initial_state(cue)

    def __call__(self) -> NaamState:
        return self.model.euler_step(self.state)


def naam_stepper(N: int, K: int, seed: int = 0, flip: float = 0.1) -> NaamStepper:
    """NAAM on K random +-1 patterns of N neurons, started from pattern 0 with a fraction `flip` of its
    entries negated; calling it takes one forward-Euler step (O(K N^2), N x N processes and synapses)."""
    rng = np.random.default_rng(seed)
    model = NeuronAstrocyteMemory(random_patterns(K, N, rng))
    return NaamStepper(model, flip_cue(model.xi[0], flip, rng))


class AstroGated(_Model):
    """The astrocyte-gated network of MODEL.md (AstroGateModel) on the whole batch. Each cue stops on the
    model's own rules (AstroGateModel.run; by default the fast settings: stopped once its outcome is
    decided) and leaves the batch. steps = integration steps of each cue."""

    def __init__(self, patterns, params: Parameters | None = None, settings: RunSettings = FAST_SETTINGS,
                 max_duration: float = 300.0, tol: float = 1e-6):
        super().__init__(patterns)
        self.model = AstroGateModel(self.xi, params or Parameters())
        self.settings, self.max_duration, self.tol = settings, float(max_duration), float(tol)
        self.last_stop_rules = None

    def retrieve(self, cues):
        run = self.model.run(self._cues(cues), duration=self.max_duration, tol=self.tol, traces=False,
                             **self.settings.options())
        self.last_stop_rules = run.stop_rule  # which rule stopped each cue of the last call
        return RetrievalResult(np.sign(run.u), run.cue_steps, run.converged)


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
    the RunSettings fields method, stop, dtype, decided_eps, decided_window; a given dt is the step)."""
    if kind not in KINDS:
        raise InputError(f"unknown model kind {kind!r}: use one of {', '.join(KINDS)}")
    if kind == "gated":
        setting_keys = set(RunSettings.__dataclass_fields__) - {"dt"}
        changes = {k: v for k, v in options.items() if k in setting_keys}
        if "dt" in options:  # a step given for this model is the step, whatever the preset's
            changes["dt"] = options["dt"]
        settings = run_settings(options.get("settings", "fast"), **changes)
        run_options = {k: v for k, v in options.items() if k in ("max_duration", "tol")}
        params = Parameters().updated(**{k: v for k, v in options.items()
                                         if k not in setting_keys | {"settings", "max_duration", "tol"}})
        return AstroGated(patterns, params, settings, **run_options)
    try:
        return KINDS[kind](patterns, **options)
    except TypeError as exc:
        raise InputError(f"model kind {kind!r}: {exc}") from None
