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
from astrogate.models.baselines import DenseAssociativeMemory, ModernHopfield, NeuronAstrocyteMemory
from astrogate.models.checks import euler_steps
from astrogate.models.parameters import Parameters
from astrogate.models.presets import PAPER_PRESET

PAPER_NAMES = ("T", "tau_p", "tau_x", "sigma")
STOP_RULES = ("none", "decided")
FLOAT_TYPES = ("float64", "float32")


def paper_parameters(**changes) -> dict:
    """The paper's preset in its names (T, tau_p, tau_x, sigma) with some changed."""
    unknown = set(changes) - set(PAPER_NAMES)
    if unknown:
        raise InputError(f"unknown paper parameter(s): {', '.join(sorted(unknown))} (use {', '.join(PAPER_NAMES)})")
    return {name: float(changes.get(name, PAPER_PRESET.params[name])) for name in PAPER_NAMES}


def _per_trial(params: dict, B: int) -> dict:
    return {name: np.broadcast_to(np.asarray(params[name], float), (B,)).copy() for name in PAPER_NAMES}


def integrate_gated(xi, cues, params: dict, dt: float, duration: float, stop: str = "none", live=None,
                    dtype: str = "float64") -> dict:
    """Forward Euler of the gated model on a batch: xi (S, K, N) pattern sets and cues (S, N), one per set, or
    cues (S, F, N), F of each set (Fig. 4's corruptions of one set: their products are then matrix products
    over the set's patterns, several times faster than one per trial). params: the paper's T, tau_p, tau_x,
    sigma (scalars or arrays of one per cue, (S,) or (S, F)); step dt, horizon `duration`. live (S, K) bool: the
    real patterns of a padded stack (padding rows start and stay at gain 0; K in eq. 5 counts the live ones).
    dtype: the state's and patterns' float type (float32 halves the memory the products stream, but its rounding
    can decide a trial that ends near a saddle: analysis.paper_figures.FIG4_DTYPES).

    Returns, with the cues' leading shape: x (.., N), p (.., K), convergence_time (the function of
    models.abstract on the same samples as a run), steps each trial took, decided (bool)."""
    if stop not in STOP_RULES:
        raise InputError(f"unknown stopping rule {stop!r}: use {' or '.join(STOP_RULES)}")
    if dtype not in FLOAT_TYPES:
        raise InputError(f"unknown dtype {dtype!r}: use {' or '.join(FLOAT_TYPES)}")
    xi = np.asarray(xi, dtype)
    S, K, N = xi.shape
    cues = np.asarray(cues, float)
    shape = cues.shape[:-1]
    if cues.ndim not in (2, 3) or shape[0] != S or cues.shape[-1] != N:
        raise InputError(f"cues of shape {cues.shape} do not match pattern sets of shape {xi.shape}: expected "
                         f"({S}, {N}) or ({S}, F, {N})")
    F = 1 if cues.ndim == 2 else shape[1]
    B = S * F
    set_of = np.repeat(np.arange(S), F)  # trials are set-major: trial b uses pattern set b // F
    n_steps = euler_steps(duration, dt)
    p = {name: np.broadcast_to(np.asarray(params[name], float).reshape(-1), (B,)).copy()
         if np.size(params[name]) in (1, B) else _bad_params(name, params[name], shape) for name in PAPER_NAMES}
    live = np.ones((S, K), bool) if live is None else np.asarray(live, bool)
    k_live = live.sum(axis=1).astype(float)[set_of]
    similarity = PAPER_PRESET.parameters().F
    beta, tau_g = N / p["T"], p["tau_p"] / p["T"]
    for name, tau in (("tau_x", p["tau_x"]), ("tau_p / T", tau_g)):
        if np.any(dt >= tau):  # the check Parameters makes of one trial's dt
            raise InputError(f"dt = {dt:g} is not below {name} = {float(np.min(tau)):g}: forward Euler overshoots")
    x = cues.reshape(B, N).astype(dtype) * float(PAPER_PRESET.params["cue_scale"])
    g = (live[set_of] / k_live[:, None]).astype(dtype)
    sampled = set(sample_steps(n_steps, dt).tolist())
    window_checks = 1 + min(n_steps, int(np.ceil(min(DECIDED_WINDOW / dt, n_steps) - 1e-9)))
    final_x, final_g = x.astype(float), g.astype(float)
    steps = np.full(B, n_steps)
    decided = np.zeros(B, bool)
    # The working batch: the trials still integrated. A decided trial's outcome is kept when it is decided and
    # it stays in the batch (frozen: no longer checked or walked) while the products are taken per pattern set
    # (groups of F), or until an eighth of the batch is frozen once they are taken per trial (groups of 1).
    active = np.arange(B)
    frozen = np.zeros(B, bool)
    xw, gw = x, g
    groups = (S, F)
    xi_t = np.ascontiguousarray(np.swapaxes(xi, 1, 2))
    xiw, xiw_t = xi, xi_t
    per_trial = {"k": k_live, "sigma": p["sigma"], "beta": beta, "tau_g": tau_g, "tau_x": p["tau_x"]}
    w = {name: values.astype(dtype)[:, None] for name, values in per_trial.items()}
    held, last_lead = np.zeros(B, int), np.full(B, -1)
    path, previous = np.zeros(B), None
    checkpoint_t, checkpoint_path = [], []

    def walk(m, gains):
        nonlocal previous
        if previous is not None:
            moved = np.maximum(np.max(np.abs(m - previous[0]), axis=-1),
                               np.max(np.abs(gains - previous[1]), axis=-1))
            path[active] += np.where(frozen, 0.0, moved)
        previous = (m, gains)

    def terms(xw, gw):
        phi = np.tanh(w["sigma"] * xw).reshape(groups + (N,))
        m = np.matmul(phi, xiw_t).reshape(-1, K)  # the overlaps: (sets, F, N) x (sets, N, K)
        m /= N
        weights = gw * similarity.dF(m)
        weights *= w["k"]
        drive = np.matmul(weights.reshape(groups + (K,)), xiw).reshape(-1, N)
        return m, drive, w["beta"] * similarity.F(m)

    def compact(keep):
        nonlocal active, frozen, xw, gw, xiw, xiw_t, held, last_lead, previous, w, groups
        active, frozen, xw, gw = active[keep], frozen[keep], xw[keep], gw[keep]
        xiw, xiw_t = xi[set_of[active]], xi_t[set_of[active]]
        held, last_lead = held[keep], last_lead[keep]
        w = {name: values[keep] for name, values in w.items()}
        groups = (active.size, 1)
        if previous is not None:
            previous = (previous[0][keep], previous[1][keep])

    step = 0
    for step in range(n_steps):
        m, drive, target = terms(xw, gw)
        sampled_now = step in sampled
        if sampled_now:
            walk(m, gw)
        if stop == "decided":
            lead = np.argmax(gw, axis=-1)  # argmax of the gains is argmax of their logits
            holds = AstroGateModel.outcome_decided(xw, gw, gw, drive, target, DECIDED_EPS)
            held_now = np.where(holds & (lead == last_lead), held + 1, holds.astype(int))
            held, last_lead = held_now, lead
            done = (held_now >= window_checks) & ~frozen
            if np.any(done):
                if not sampled_now:
                    walk(m, gw)
                leaving = active[done]
                final_x[leaving], final_g[leaving] = xw[done], gw[done]
                steps[leaving], decided[leaving] = step, True
                frozen = frozen | done
                if np.all(frozen):
                    active = active[:0]
                    break
                dead = np.count_nonzero(frozen)
                # per set while fewer than half of the trials are done; per trial then (a per-set product is
                # several times cheaper per trial, so it pays while at least half of its trials are live)
                if dead * (2 if groups[1] > 1 else 8) >= active.size:
                    keep = ~frozen
                    compact(keep)
                    m, drive, target = m[keep], drive[keep], target[keep]
        if sampled_now:
            checkpoint_t.append(step * dt)
            checkpoint_path.append(path.copy())
        dg, _ = replicator_rates(gw, target, w["tau_g"])
        drive -= xw
        drive *= dt / w["tau_x"]
        xw = xw + drive
        dg *= dt
        gw = gw + dg
        AstroGateModel._check_simplex(gw, (step + 1) * dt)
    else:
        step = n_steps
        if active.size:
            m, _, _ = terms(xw, gw)
            walk(m, gw)
    running = ~frozen if active.size else frozen[:0]
    final_x[active[running]], final_g[active[running]] = xw[running], gw[running]
    checkpoint_t.append(step * dt)
    checkpoint_path.append(path.copy())
    t_end = np.where(decided, steps * dt, n_steps * dt)
    rest = convergence_time(np.array(checkpoint_t), np.array(checkpoint_path), t_end)
    return {"x": final_x.reshape(shape + (N,)), "p": final_g.reshape(shape + (K,)),
            "convergence_time": rest.reshape(shape), "steps": steps.reshape(shape),
            "decided": decided.reshape(shape)}


def _bad_params(name, value, shape):
    raise InputError(f"parameter {name}: {np.size(value)} values for cues of shape {shape} (give one, or one per cue)")


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


def integrate_hopfield(xi, cues, tau_x: float, sigma: float, dt: float, duration: float,
                       dtype: str = "float64") -> np.ndarray:
    """Classical continuous Hopfield (eq. 12) on a batch, forward Euler to `duration`: xi (S, K, N) pattern sets,
    cues (S, N) or (S, F, N) (F cues of each set); the final x with the cues' shape."""
    shape = np.shape(cues)
    xi, cues, _ = _grouped(xi, cues, dtype)
    N = xi.shape[2]
    W = np.matmul(np.swapaxes(xi, 1, 2), xi) / N  # W_H = Xi Xi^T / N, per pattern set (symmetric)
    x = cues * float(PAPER_PRESET.params["cue_scale"])
    rate = dt / tau_x
    for _ in range(euler_steps(duration, dt)):
        drive = np.matmul(np.tanh(sigma * x), W)  # (S, F, N): phi W = (W phi)^T, W symmetric
        drive -= x
        drive *= rate
        x += drive
    return x.astype(float).reshape(shape)


def _grouped(xi, cues, dtype: str):
    """xi (S, K, N) and cues (S, N) or (S, F, N) as arrays of dtype, the cues as (S, F, N); and F."""
    if dtype not in FLOAT_TYPES:
        raise InputError(f"unknown dtype {dtype!r}: use {' or '.join(FLOAT_TYPES)}")
    xi = np.asarray(xi, dtype)
    cues = np.asarray(cues, dtype)
    S, K, N = xi.shape
    if cues.ndim not in (2, 3) or cues.shape[0] != S or cues.shape[-1] != N:
        raise InputError(f"cues of shape {cues.shape} do not match pattern sets of shape {xi.shape}: expected "
                         f"({S}, {N}) or ({S}, F, {N})")
    F = 1 if cues.ndim == 2 else cues.shape[1]
    return xi, cues.reshape(S, F, N), F


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
    """NeuronAstrocyteMemory with its own pattern set for each group of cues: stack (S, K, N), the cues
    set-major (cue b uses set b // F). Its dynamics, initial state and Euler step unchanged; only the tensor
    contraction T:q is taken per set, as two matrix products with the set's outer products xi_mu xi_mu^T."""

    def __init__(self, stack, b: float = 5.0, dt: float = 0.05, steps: int = 1000):
        stack = np.asarray(stack, float)
        super().__init__(stack[0], b=b, dt=dt, steps=steps)
        S, K, N = stack.shape
        self.outer = (stack[:, :, :, None] * stack[:, :, None, :]).reshape(S, K, N * N)
        self.outer_t = np.ascontiguousarray(np.swapaxes(self.outer, 1, 2))

    def contract(self, q: np.ndarray) -> np.ndarray:
        S, N = self.outer.shape[0], self.N
        per_pattern = np.matmul(np.ascontiguousarray(q).reshape(S, -1, N * N), self.outer_t)  # xi_mu^T q xi_mu
        per_pattern /= N**3
        return np.matmul(per_pattern, self.outer).reshape(q.shape)


def integrate_naam(xi, cues, duration: float, dtype: str = "float64") -> np.ndarray:
    """NAAM on a batch for `duration` at its own step (NeuronAstrocyteMemory's dt, 0.05): xi (S, K, N) pattern
    sets, cues (S, N) or (S, F, N); the final x with the cues' shape, NaN rows where its initial state is
    undefined (see NeuronAstrocyteMemory; those trials are integrated from zero and dropped)."""
    xi64, grouped, F = _grouped(xi, cues, "float64")
    S, K, N = xi64.shape
    model = StackedNaam(xi64)
    n_steps = euler_steps(duration, model.dt)
    state = model.initial_state(grouped.reshape(S * F, N))  # in float64: the artanh near +-1 needs it
    defined = np.isfinite(state.S).all(axis=(1, 2)) & np.isfinite(state.P).all(axis=(1, 2))
    model.outer, model.outer_t = model.outer.astype(dtype), model.outer_t.astype(dtype)
    for name in ("x", "S", "P"):
        values = getattr(state, name)
        values[~defined] = 0.0
        setattr(state, name, values.astype(dtype))
    for _ in range(n_steps):
        model.euler_step(state)
    x = np.where(defined[:, None], state.x.astype(float), np.nan)
    return x.reshape(np.shape(cues))


def naam_per_trial(xi, cues, duration: float) -> np.ndarray:
    """NAAM one pattern set at a time (NeuronAstrocyteMemory.integrate, the same horizon)."""
    rows = []
    for b in range(len(xi)):
        model = NeuronAstrocyteMemory(xi[b])
        model.steps = euler_steps(duration, model.dt)
        rows.append(model.integrate(cues[b])[0])
    return np.array(rows)


# Modern Hopfield's inverse temperature, beta = MODERN_BETA_OVER_N / N: the value the retrieval benchmark's
# tuning chose (docs/results/retrieval.md, grid 1 to 256 / N), not tuned on the figure's grid
MODERN_BETA_OVER_N = 256.0
DAM_POWER = 3


def discrete_baseline_states(kind: str, xi, cues) -> np.ndarray:
    """The retrieved states (S, F, N) of modern Hopfield ("modern": Ramsauer et al., iterated to convergence,
    beta = MODERN_BETA_OVER_N / N) or the dense associative memory ("dam3": Krotov & Hopfield, F(z) = z^3,
    asynchronous sweeps in a random order seeded by the set's index) from the same cues (S, F, N) of the same
    pattern sets (S, K, N); the models of models/baselines.py, one pattern set at a time. Neither is a flow
    in time, so the horizon does not apply: each runs until its state stops changing."""
    xi = np.asarray(xi, float)
    cues = np.asarray(cues, float)
    N = xi.shape[2]
    rows = []
    for s, (patterns, set_cues) in enumerate(zip(xi, cues)):
        if kind == "modern":
            model = ModernHopfield(patterns, beta=MODERN_BETA_OVER_N / N, iterate=True)
        elif kind == "dam3":
            model = DenseAssociativeMemory(patterns, power=DAM_POWER, seed=s)
        else:
            raise InputError(f"unknown discrete baseline {kind!r}: use modern or dam3")
        rows.append(model.retrieve(set_cues).states)
    return np.array(rows)


def naam_states(x: np.ndarray) -> np.ndarray:
    """NAAM's readout sign(tanh(b x)) = sign(x); 0 (undecided) where its initial state was undefined."""
    return np.where(np.isfinite(x), np.sign(np.nan_to_num(x)), 0.0)


# The smallest step taken: 0.05 alpha at alpha = 1e-3, the smallest time constant of Figs. 1-2. The paper's rule
# would give T = 1e-4 a step of 5e-6 (2e6 steps to t_f); T is not a time scale (the Euler stability of eq. 6
# depends on dt / tau_p times the fitness differences, which a small T does not raise), so T below 1e-3 keeps
# this step (docs/results/paper_figures.md measures what that changes).
SMALLEST_DT = 5e-5


# Fig. 4 varies the load and the corruption, neither a time scale nor T: the paper's base step
FIG4_DT = PAPER_PRESET.params["dt"]


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
