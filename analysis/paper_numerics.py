"""The paper's experiments integrated as batches of pattern sets (Vivet & Arenas 2026, Sec. II.3, appendix .5).

Each trial has its own patterns, so a batch is a stack xi (B, K, N) of pattern sets with one cue each (B, N); the
overlaps and the drive are batched matrix products over it. Three models, each from x(0) = the cue:

- gated: the paper's eqs. 4-8 in the replicator form, forward Euler on x and on the gains p (as
  `AstroGateModel.run(..., form="replicator")` integrates one trial; the parameters in the paper's names
  T, tau_p, tau_x, sigma, converted as `Parameters` converts them: beta = N / T, tau_g = tau_p / T),
  p(0) = 1/K;
- hopfield: classical continuous Hopfield (the paper's eq. 12), tau_x dx/dt = -x + W_H tanh(sigma x),
  W_H = Xi Xi^T / N: the gated model with the gains frozen at 1/K (tau_p -> infinity);
- naam: the neuron-astrocyte memory of Kozachkov, Slotine & Krotov (`NeuronAstrocyteMemory`, its equations, gain
  and step), run for the same horizon t_f.

Per-trial stopping (stop="decided", the gated model only): a trial leaves the batch once its outcome is decided by
`AstroGateModel.outcome_decided` held for DECIDED_WINDOW, as in the library's fast retrieval; it then keeps the
sign of every neuron, so its Hamming error (eq. 15) is final, but not its soft error or perplexity (which the
figures of the dynamics report at t_f: those run to t_f).
"""

from __future__ import annotations

import numpy as np

from astrogate.errors import InputError
from astrogate.models.abstract import (
    DECIDED_EPS,
    DECIDED_WINDOW,
    AstroGateModel,
    convergence_time,
    replicator_rates,
    sample_steps,
)
from astrogate.models.baselines import NeuronAstrocyteMemory
from astrogate.models.checks import euler_steps
from astrogate.models.parameters import Parameters
from astrogate.models.presets import PAPER_PRESET

PAPER_NAMES = ("T", "tau_p", "tau_x", "sigma")
STOP_RULES = ("none", "decided")


def paper_parameters(**changes) -> dict:
    """The paper's preset in its names (T, tau_p, tau_x, sigma) with some changed."""
    unknown = set(changes) - set(PAPER_NAMES)
    if unknown:
        raise InputError(f"unknown paper parameter(s): {', '.join(sorted(unknown))} (use {', '.join(PAPER_NAMES)})")
    return {name: float(changes.get(name, PAPER_PRESET.params[name])) for name in PAPER_NAMES}


def _per_trial(params: dict, B: int) -> dict:
    return {name: np.broadcast_to(np.asarray(params[name], float), (B,)).copy() for name in PAPER_NAMES}


def integrate_gated(xi, cues, params: dict, dt: float, duration: float, stop: str = "none", live=None) -> dict:
    """Forward Euler of the gated model on a batch: xi (B, K, N) pattern sets, cues (B, N), params the paper's
    T, tau_p, tau_x, sigma (scalars or (B,) arrays), step dt, horizon `duration`. live (B, K) bool: the real
    patterns of a padded stack (padding rows start and stay at gain 0; K in eq. 5 counts the live ones).

    Returns x (B, N), p (B, K), convergence_time (B,) (the function of models.abstract on the same samples as a
    run), steps (B,) each trial took, decided (B,) bool."""
    if stop not in STOP_RULES:
        raise InputError(f"unknown stopping rule {stop!r}: use {' or '.join(STOP_RULES)}")
    xi = np.asarray(xi, float)
    B, K, N = xi.shape
    n_steps = euler_steps(duration, dt)
    p = _per_trial(params, B)
    live = np.ones((B, K), bool) if live is None else np.asarray(live, bool)
    k_live = live.sum(axis=1).astype(float)
    similarity = PAPER_PRESET.parameters().F
    beta, tau_g = N / p["T"], p["tau_p"] / p["T"]
    for name, tau in (("tau_x", p["tau_x"]), ("tau_p / T", tau_g)):
        if np.any(dt >= tau):  # the check Parameters makes of one trial's dt
            raise InputError(f"dt = {dt:g} is not below {name} = {float(np.min(tau)):g}: forward Euler overshoots")
    x = np.array(cues, float) * PAPER_PRESET.params["cue_scale"]
    g = live / k_live[:, None]
    sampled = set(sample_steps(n_steps, dt).tolist())
    window_checks = 1 + min(n_steps, int(np.ceil(min(DECIDED_WINDOW / dt, n_steps) - 1e-9)))
    final_x, final_g = x.copy(), g.copy()
    steps = np.full(B, n_steps)
    decided = np.zeros(B, bool)
    active = np.arange(B)
    xw, gw, xiw = x, g, xi
    kw, sigw, betaw, taugw, tauxw = k_live, p["sigma"], beta, tau_g, p["tau_x"]
    held, last_lead = np.zeros(B, int), np.full(B, -1)
    path, previous = np.zeros(B), None
    checkpoint_t, checkpoint_path = [], []

    def walk(m, gains):
        nonlocal previous
        if previous is not None:
            path[active] += np.maximum(np.max(np.abs(m - previous[0]), axis=-1),
                                       np.max(np.abs(gains - previous[1]), axis=-1))
        previous = (m, gains)

    def terms(xw, gw, xiw):
        phi = np.tanh(sigw[:, None] * xw)
        m = np.matmul(xiw, phi[:, :, None])[:, :, 0] / N
        drive = kw[:, None] * np.matmul((gw * similarity.dF(m))[:, None, :], xiw)[:, 0, :]
        return m, drive, betaw[:, None] * similarity.F(m)

    step = 0
    for step in range(n_steps):
        m, drive, target = terms(xw, gw, xiw)
        sampled_now = step in sampled
        if sampled_now:
            walk(m, gw)
        if stop == "decided":
            lead = np.argmax(gw, axis=-1)  # argmax of the gains is argmax of their logits
            holds = AstroGateModel.outcome_decided(xw, gw, gw, drive, target, DECIDED_EPS)
            held_now = np.where(holds & (lead == last_lead), held + 1, holds.astype(int))
            held, last_lead = held_now, lead
            done = held_now >= window_checks
            if np.any(done):
                if not sampled_now:
                    walk(m, gw)
                leaving = active[done]
                final_x[leaving], final_g[leaving] = xw[done], gw[done]
                steps[leaving], decided[leaving] = step, True
                keep = ~done
                active, xw, gw, xiw = active[keep], xw[keep], gw[keep], xiw[keep]
                m, drive, target = m[keep], drive[keep], target[keep]
                kw, sigw, betaw, taugw, tauxw = kw[keep], sigw[keep], betaw[keep], taugw[keep], tauxw[keep]
                held, last_lead = held[keep], last_lead[keep]
                previous = (previous[0][keep], previous[1][keep])
                if active.size == 0:
                    break
        if sampled_now:
            checkpoint_t.append(step * dt)
            checkpoint_path.append(path.copy())
        dg, _ = replicator_rates(gw, target, taugw[:, None])
        xw = xw + dt * (drive - xw) / tauxw[:, None]
        gw = gw + dt * dg
        AstroGateModel._check_simplex(gw, (step + 1) * dt)
    else:
        step = n_steps
        if active.size:
            m, _, _ = terms(xw, gw, xiw)
            walk(m, gw)
    final_x[active], final_g[active] = xw, gw
    checkpoint_t.append(step * dt)
    checkpoint_path.append(path.copy())
    t_end = np.where(decided, steps * dt, n_steps * dt)
    rest = convergence_time(np.array(checkpoint_t), np.array(checkpoint_path), t_end)
    return {"x": final_x, "p": final_g, "convergence_time": rest, "steps": steps, "decided": decided}


def gated_per_trial(xi, cues, params: dict, dt: float, duration: float) -> dict:
    """The same trials one at a time through `AstroGateModel.run` with the paper's preset (the reference the
    batched path is tested against, and the per-trial side of the speed measurement)."""
    xi = np.asarray(xi, float)
    B = xi.shape[0]
    p = _per_trial(params, B)
    xs, gs, rest = [], [], []
    for b in range(B):
        values = {**PAPER_PRESET.params, **{name: float(p[name][b]) for name in PAPER_NAMES}, "dt": dt}
        model = AstroGateModel(xi[b], Parameters(**values))
        run = model.run(cues[b], **{**PAPER_PRESET.run, "duration": duration}, traces=False)
        xs.append(run.u)
        gs.append(model.gains(run.a))
        rest.append(float(run.convergence_time))
    return {"x": np.array(xs), "p": np.array(gs), "convergence_time": np.array(rest)}


def integrate_hopfield(xi, cues, tau_x: float, sigma: float, dt: float, duration: float) -> np.ndarray:
    """Classical continuous Hopfield (eq. 12) on a batch, forward Euler to `duration`: the final x (B, N)."""
    xi = np.asarray(xi, float)
    N = xi.shape[2]
    W = np.matmul(np.swapaxes(xi, 1, 2), xi) / N  # W_H = Xi Xi^T / N, per pattern set
    x = np.array(cues, float) * PAPER_PRESET.params["cue_scale"]
    for _ in range(euler_steps(duration, dt)):
        drive = np.matmul(W, np.tanh(sigma * x)[:, :, None])[:, :, 0]
        x = x + dt * (drive - x) / tau_x
    return x


def hopfield_per_trial(xi, cues, tau_x: float, sigma: float, dt: float, duration: float) -> np.ndarray:
    """Eq. 12 one trial at a time, as the gated model with beta = 0 (its gains then stay at 1/K)."""
    xs = []
    for b in range(len(xi)):
        params = Parameters(beta=0.0, tau_g=1.0, tau_x=tau_x, sigma=sigma, dt=dt, cue_scale=1.0)
        run = AstroGateModel(xi[b], params).run(cues[b], **{**PAPER_PRESET.run, "duration": duration},
                                                 traces=False)
        xs.append(run.u)
    return np.array(xs)


class StackedNaam(NeuronAstrocyteMemory):
    """NeuronAstrocyteMemory with one pattern set per cue (a stack (B, K, N)): its dynamics, initial state and
    Euler step unchanged, only the tensor contraction T:q taken per cue with the cue's own patterns."""

    def __init__(self, stack, b: float = 5.0, dt: float = 0.05, steps: int = 1000):
        stack = np.asarray(stack, float)
        super().__init__(stack[0], b=b, dt=dt, steps=steps)
        self.stack = stack

    def contract(self, q: np.ndarray) -> np.ndarray:
        N = self.N
        projected = np.matmul(q, np.swapaxes(self.stack, 1, 2))  # (B, N, K): sum_l q_kl xi_mu,l
        per_pattern = np.einsum("bkm,bmk->bm", projected, self.stack) / N**3
        return np.matmul(np.swapaxes(self.stack, 1, 2) * per_pattern[:, None, :], self.stack)


def integrate_naam(xi, cues, duration: float) -> np.ndarray:
    """NAAM on a batch for `duration` at its own step (NeuronAstrocyteMemory's dt, 0.05): the final x (B, N),
    NaN rows where its initial state is undefined (see NeuronAstrocyteMemory)."""
    model = StackedNaam(xi)
    n_steps = euler_steps(duration, model.dt)
    state = model.initial_state(cues)
    defined = np.isfinite(state.S).all(axis=(1, 2)) & np.isfinite(state.P).all(axis=(1, 2))
    x = np.full(state.x.shape, np.nan)
    if np.any(defined):
        model.stack = model.stack[defined]
        state.x, state.S, state.P = state.x[defined], state.S[defined], state.P[defined]
        for _ in range(n_steps):
            model.euler_step(state)
        x[defined] = state.x
    return x


def naam_per_trial(xi, cues, duration: float) -> np.ndarray:
    """NAAM one pattern set at a time (NeuronAstrocyteMemory.integrate, the same horizon)."""
    rows = []
    for b in range(len(xi)):
        model = NeuronAstrocyteMemory(xi[b])
        model.steps = euler_steps(duration, model.dt)
        rows.append(model.integrate(cues[b])[0])
    return np.array(rows)


def naam_states(x: np.ndarray) -> np.ndarray:
    """NAAM's readout sign(tanh(b x)) = sign(x); 0 (undecided) where its initial state was undefined."""
    return np.where(np.isfinite(x), np.sign(np.nan_to_num(x)), 0.0)


# The smallest step taken: 0.05 alpha at alpha = 1e-3, the smallest time constant of Figs. 1-2. The paper's rule
# would give T = 1e-4 a step of 5e-6 (2e6 steps to t_f); T is not a time scale (the Euler stability of eq. 6
# depends on dt / tau_p times the fitness differences, which a small T does not raise), so T below 1e-3 keeps
# this step (docs/results/paper_figures.md measures what that changes).
SMALLEST_DT = 5e-5


def paper_dt(name: str, value: float) -> float:
    """The paper's step (appendix .5): dt = 0.001, or 0.05 alpha where the varied parameter alpha <= 0.01 (the
    time constants and T; sigma is not a time scale), never below SMALLEST_DT."""
    base = PAPER_PRESET.params["dt"]
    if name in ("tau_p", "tau_x", "T") and value <= 0.01:
        return max(0.05 * value, SMALLEST_DT)
    return base


def flipped_cues(targets: np.ndarray, flips: int, rng: np.random.Generator) -> np.ndarray:
    """Each target (B, N) with exactly `flips` bits negated."""
    targets = np.asarray(targets, float)
    B, N = targets.shape
    chosen = np.argsort(rng.random((B, N)), axis=1)[:, :flips]
    cues = targets.copy()
    np.put_along_axis(cues, chosen, -np.take_along_axis(cues, chosen, axis=1), axis=1)
    return cues


def pattern_sets(N: int, K: int, sets: int, seed: int = 0, correlation: float = 0.0) -> np.ndarray:
    """`sets` independent pattern sets (sets, K, N) of random +-1 patterns; set s is the same whatever the other
    arguments of a study (its own generator, keyed by seed, N, K and s), so cells are paired."""
    from astrogate.models.patterns import random_patterns

    return np.stack([random_patterns(K, N, np.random.default_rng([seed, N, K, s, int(round(1000 * correlation))]),
                                     correlation) for s in range(sets)])


def cue_generator(seed: int, N: int, K: int, flips: int) -> np.random.Generator:
    return np.random.default_rng([seed, N, K, flips, 1])
