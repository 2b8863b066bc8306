"""The quasi-static map of the calcium astrocytes: with the neural state clamped, their steady-state (or
cycle-averaged) gains against the replicator's fixed point softmax(f / T), f = N m^2 / 2 (the paper's eq. 8).

The neural states are those of the paper's protocol (N = 30, K = 100, 6 flipped bits; docs/results/calcium.md):
stored patterns, mixtures of two and three patterns, and corrupted cues. For each, the overlaps m = xi v / N are
clamped, the astrocytes (network/calcium.py) run from rest for `settle` seconds of biological time and their
gains are averaged over the next `window` seconds. One temperature T_eff is fitted to all states at once (least
squares of g against softmax(f / T)); the report gives the correlation r of g with softmax(f / T_eff) over every
(state, pattern) pair, the largest deviation, the distance to the simplex (1 - sum g, and the lowest gain of any
step) and the convergence time in seconds.

Also here: one astrocyte's response to glutamate (`transfer_function`), the memory with calcium astrocytes
against the replicator model and Hopfield (`calcium_retrieval`), with spiking neurons
(`calcium_spiking_retrieval`), and the results page's studies as evaluations of the study engine, each with its
spec in runs/configs/:

    astrogate sweep calcium_map --out runs/calcium                 # the map per configuration (MapStudy)
    astrogate sweep calcium_transfer --out runs/calcium_transfer   # one astrocyte's response (TransferStudy)
    astrogate sweep calcium_memory --out runs/calcium_memory       # retrieval, mechanisms, cues (MemoryStudy)
    astrogate sweep calcium_spiking --out runs/calcium_spiking     # rate and spiking neurons (SpikingMemoryStudy)
    astrogate sweep calcium_coupling --out runs/calcium_coupling   # per coupling and strength (CouplingStudy)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import softmax

from astrogate.analysis.study import Evaluation, Field, Study, choice, finite_or_none, positive, valid_rows, whole
from astrogate.analysis.study import seed as seed_field
from astrogate.errors import InputError
from astrogate.network.calcium import CalciumSetup, run_clamped

KINDS = ("pattern", "mixture2", "mixture3", "cue")
STUDY_DT = 20.0  # ms: the study's gains move by < 1e-4 from dt = 1 ms (calcium's fastest rates are ~10/s)
CONVERGENCE_TOLERANCE = 0.05  # of a state's largest mean gain: how far each gain may stay from its window mean


@dataclass(frozen=True)
class ProtocolStates:
    """Clamped neural states v (S x N, entries in [-1, 1]) for patterns xi (K x N), with each state's kind and the
    pattern(s) it was made from."""

    patterns: np.ndarray
    states: np.ndarray
    kinds: tuple
    sources: tuple

    @property
    def overlaps(self) -> np.ndarray:
        return self.states @ self.patterns.T / self.patterns.shape[1]

    @property
    def f(self) -> np.ndarray:
        """The paper's similarity f_mu = N m_mu^2 / 2 (eq. 8), S x K."""
        return self.patterns.shape[1] * self.overlaps**2 / 2


def protocol_states(N: int = 30, K: int = 100, flips: int = 6, per_kind: int = 15, seed: int = 0) -> ProtocolStates:
    """Random +-1 patterns and `per_kind` states of each kind: a stored pattern; a two-pattern mixture
    (xi_a + xi_b) / 2 (0 where they disagree); a three-pattern mixture sign(xi_a + xi_b + xi_c) (the classical
    spurious state); a pattern with `flips` bits flipped (the paper's cue, eta = flips / N)."""
    for label, value, low in (("N", N, 2), ("K", K, 3), ("per_kind", per_kind, 1), ("flips", flips, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{label} must be a whole number >= {low}, got {value!r}")
    if flips > N:
        raise InputError(f"flips must be at most N = {N}, got {flips}")
    rng = np.random.default_rng(seed)
    xi = rng.choice([-1.0, 1.0], size=(K, N))
    states, kinds, sources = [], [], []
    for kind in KINDS:
        for _ in range(per_kind):
            if kind == "pattern":
                mu = (int(rng.integers(K)),)
                v = xi[mu[0]].copy()
            elif kind == "mixture2":
                mu = tuple(int(x) for x in rng.choice(K, 2, replace=False))
                v = (xi[mu[0]] + xi[mu[1]]) / 2
            elif kind == "mixture3":
                mu = tuple(int(x) for x in rng.choice(K, 3, replace=False))
                v = np.sign(xi[list(mu)].sum(axis=0))
            else:
                mu = (int(rng.integers(K)),)
                v = xi[mu[0]].copy()
                v[rng.choice(N, flips, replace=False)] *= -1
            states.append(v)
            kinds.append(kind)
            sources.append(mu)
    return ProtocolStates(xi, np.array(states), tuple(kinds), tuple(sources))


def fit_temperature(gains, f, bounds=(1e-3, 1e3)) -> dict:
    """The T that brings softmax(f / T) (rows) closest to the gains in least squares, and how close:
    r (Pearson, over all entries), the largest |g - softmax| and the root-mean-square deviation."""
    g, f = np.asarray(gains, dtype=float), np.asarray(f, dtype=float)
    if g.shape != f.shape or g.ndim != 2:
        raise InputError(f"gains and f must be S x K arrays of one shape, got {g.shape} and {f.shape}")

    def loss(log_T):
        return float(np.sum((g - softmax(f / np.exp(log_T), axis=1)) ** 2))

    best = minimize_scalar(loss, bounds=np.log(bounds), method="bounded", options={"xatol": 1e-6})
    T = float(np.exp(best.x))
    return {"T_eff": T, **agreement(g, softmax(f / T, axis=1))}


def agreement(g, target) -> dict:
    diff = g - target
    r = float(np.corrcoef(g.ravel(), target.ravel())[0, 1]) if np.std(g) > 0 and np.std(target) > 0 else float("nan")
    return {"r": r, "max_deviation": float(np.max(np.abs(diff))), "rms_deviation": float(np.sqrt(np.mean(diff**2)))}


def convergence_times(t, g, g_mean, tolerance: float = CONVERGENCE_TOLERANCE) -> np.ndarray:
    """Per state, the first sample time after which every gain stays within `tolerance` times the state's largest
    window-averaged gain of its window average (NaN if the last sample is off by more: gains that keep
    oscillating with calcium)."""
    scale = tolerance * g_mean.max(axis=1, keepdims=True)  # S x 1
    off = np.max(np.abs(g - g_mean[:, :, None]), axis=1) > scale  # S x samples
    times = np.full(len(g), np.nan)
    for s, row in enumerate(off):
        if not row[-1]:
            bad = np.nonzero(row)[0]
            times[s] = t[0] if len(bad) == 0 else t[bad[-1] + 1]
    return times


def quasi_static_map(setup: CalciumSetup | None = None, states: ProtocolStates | None = None, settle: float = 300.0,
                     window: float = 200.0, device: str = "runtime", target: str = "cython",
                     calcium_first: float = 60.0) -> dict:
    """Run the clamped states (`run_clamped`: calcium alone for `calcium_first` s, then the release for `settle` s,
    then the averaging `window`), fit T_eff and measure; returns a summary dict and per-state arrays."""
    setup = setup or CalciumSetup()
    states = states or protocol_states()
    run = run_clamped(states.overlaps, setup, settle=settle, window=window, sample_every=min(1.0, window),
                      device=device, target=target, calcium_first=calcium_first)
    f, g = states.f, run["g_mean"]
    fit = fit_temperature(g, f)
    kinds = np.array(states.kinds)
    by_kind = {}
    for kind in dict.fromkeys(states.kinds):
        rows = kinds == kind
        by_kind[kind] = agreement(g[rows], softmax(f[rows] / fit["T_eff"], axis=1))
    in_window = run["t"] >= settle - 1e-9
    sums = run["bound"][:, in_window]
    oscillating = (run["C_high"] - run["C_low"]) > 0.01  # uM, over the window
    times = convergence_times(run["t"], run["g"], g)
    summary = {
        "setup": setup_record(setup), "states": len(kinds), "K": states.patterns.shape[0],
        "N": states.patterns.shape[1], "settle_s": settle, "window_s": window, **fit, "by_kind": by_kind,
        "sum_mean": float(sums.mean()), "sum_min": float(sums.min()), "sum_max": float(sums.max()),
        "free_low": float(np.nanmin(run["free_low"])) if np.any(np.isfinite(run["free_low"])) else None,
        "g_low": run["g_low"],
        "top_gain_mean": float(np.mean(g.max(axis=1))),
        "oscillating_astrocytes": int(oscillating.sum()), "oscillating_states": int(oscillating.any(axis=1).sum()),
        "convergence_s_median": float(np.nanmedian(times)) if np.any(np.isfinite(times)) else None,
        "convergence_s_max": float(np.nanmax(times)) if np.any(np.isfinite(times)) else None,
        "unconverged_states": int(np.isnan(times).sum()),
        "run_seconds": run["run_seconds"],
    }
    return {"summary": summary, "f": f, "g": g, "softmax": softmax(f / fit["T_eff"], axis=1), "kinds": kinds,
            "sums": sums, "convergence_s": times, "oscillating": oscillating, "run": run}


def setup_record(setup: CalciumSetup) -> dict:
    from astrogate.models.calcium import shown

    return {"pool": setup.pool, "gap_junctions": setup.gap_junctions, "dt_ms": setup.dt, "method": setup.method,
            "parameters": {name: shown(name, value) for name, value in setup.parameters.items()}}


def shape_agreement(g, f) -> dict:
    """The gains divided by their sum (the share of the bound resource: what the strongest capture would give)
    against softmax(f / T) with T fitted again: the shape of the allocation, apart from the free fraction."""
    g = np.asarray(g, dtype=float)
    total = g.sum(axis=1, keepdims=True)
    shares = np.divide(g, total, out=np.full_like(g, 1.0 / g.shape[1]), where=total > 0)
    return fit_temperature(shares, f)


def file_stem(label: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in label)


def plot_map(result: dict, path, title: str = "") -> Path:
    """Left: each (state, pattern) gain against softmax(f / T_eff), by kind of state; right: the sum of the gains
    (the bound fraction of the pool) against time, one line per state."""
    import matplotlib.pyplot as plt

    from astrogate.analysis.io import prepare_output, save_figure

    path = prepare_output(path, "plot")
    s = result["summary"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    markers = dict(pattern="o", mixture2="s", mixture3="^", cue="x")
    for kind in dict.fromkeys(result["kinds"]):
        rows = result["kinds"] == kind
        left.scatter(result["softmax"][rows].ravel(), result["g"][rows].ravel(), s=12, marker=markers.get(kind, "."),
                     label=kind, alpha=0.7)
    left.plot([0, 1], [0, 1], color="grey", lw=0.8, label="g = softmax")
    left.set(xlabel=f"softmax(f / T_eff), T_eff = {s['T_eff']:.3g}", ylabel="calcium gain $g_\\mu$ (window mean)",
             title=f"r = {s['r']:.3f}, max |dev| = {s['max_deviation']:.3f}")
    left.legend(fontsize=8)
    run = result["run"]
    colours = dict(pattern="C0", mixture2="C1", mixture3="C2", cue="C3")
    for kind, bound in zip(result["kinds"], run["bound"]):
        right.plot(run["t"], bound, color=colours.get(kind, "k"), lw=0.6)
    right.axvline(s["settle_s"], color="grey", ls="--", lw=0.8)
    right.set(xlabel="time (s)", ylabel="sum of gains $\\sum_\\mu g_\\mu$", ylim=(0, 1.05),
              title=f"sum in window: {s['sum_min']:.3f} .. {s['sum_max']:.3f}")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path


def plot_sweep(lines: list[dict], path) -> Path:
    """One row per configuration: r of the gains and of their shares against the fitted softmax (left), and the
    mean and the smallest sum of the gains in the window (right)."""
    import matplotlib.pyplot as plt

    from astrogate.analysis.io import prepare_output, save_figure

    path = prepare_output(path, "plot")
    labels = [line["label"] for line in lines]
    y = np.arange(len(lines))
    value = lambda key: np.array([np.nan if line[key] is None else float(line[key]) for line in lines])  # noqa: E731
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.35 * len(lines) + 1.5), sharey=True)
    left.barh(y - 0.2, value("r"), height=0.4, label="gains g")
    left.barh(y + 0.2, value("shape_r"), height=0.4, label="shares g / sum g")
    left.axvline(0.95, color="grey", ls="--", lw=0.8)
    left.set(xlabel="r against softmax(f / T_eff)", xlim=(min(0.5, np.nanmin(value("r")) - 0.05), 1), yticks=y,
             yticklabels=labels)
    left.invert_yaxis()
    left.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=2)
    right.barh(y - 0.2, value("sum_mean"), height=0.4, label="mean")
    right.barh(y + 0.2, value("sum_min"), height=0.4, label="smallest")
    right.set(xlabel="sum of the gains in the window", xlim=(0, 1.05))
    right.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=2)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path


def plot_transfer(response: dict, path) -> Path:
    """The window-averaged release of one astrocyte against the glutamate level (log-log), and calcium's range."""
    import matplotlib.pyplot as plt

    from astrogate.analysis.io import prepare_output, save_figure

    path = prepare_output(path, "plot")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 6), sharex=True)
    Y = response["glutamate_um"]
    shown = Y > 0
    top.loglog(Y[shown], np.maximum(response["release"][shown], 1e-12), "o-", ms=3, label="release (window mean)")
    top.set(ylabel="release activity", ylim=(1e-9, 2))
    top.legend(fontsize=8)
    bottom.fill_between(Y[shown], response["C_low"][shown], response["C_high"][shown], alpha=0.4, label="C range")
    bottom.semilogx(Y[shown], response["C_high"][shown], lw=0.8, label="C high")
    bottom.set(xlabel="glutamate Y (uM)", ylabel="calcium C (uM)")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path


def transfer_function(glutamate_um, setup: CalciumSetup | None = None, settle: float = 300.0, window: float = 200.0,
                      target: str = "cython") -> dict:
    """One astrocyte's response to a constant glutamate level (uM), each level a copy of K = 1 with m = 1 and
    Y_pattern = the level: the window-averaged release, calcium's range (oscillation where C_high > C_low) and the
    mean gain of a private pool of one."""
    from brian2 import umolar

    levels = np.asarray(glutamate_um, dtype=float)
    if levels.ndim != 1 or not np.all(np.isfinite(levels)) or np.any(levels < 0):
        raise InputError("glutamate levels must be a 1-d array of finite values >= 0 (uM)")
    setup = setup or CalciumSetup(pool="private", dt=STUDY_DT)
    # Y_pattern is one value per group: the level is carried by m instead, Y = Y_top m^2 with m = sqrt(level / Y_top)
    top = float(levels.max()) if levels.max() > 0 else 1.0
    parameters = {**setup.parameters, "Y_pattern": top * umolar}
    run = run_clamped(np.sqrt(levels / top)[:, None], replace(setup, parameters=parameters), settle=settle,
                      window=window, sample_every=window, target=target)
    return {"glutamate_um": levels, "release": run["release_mean"][:, 0], "C_low": run["C_low"][:, 0],
            "C_high": run["C_high"][:, 0], "g": run["g_mean"][:, 0]}


# -- the memory with calcium astrocytes: retrieval, the replicator's Lyapunov function, the mechanisms -------------
# The neurons of the paper's protocol (PAPER_PRESET: tau_x = 1 ms, sigma = 3, kappa = 1, x(0) = the cue) at a
# step that calcium's speedup allows (speedup * dt <= 100 ms, network/calcium.py)
MEMORY_NEURONS = dict(tau_u=1.0, gamma=3.0, kappa=1.0, cue_scale=1.0, T=0.01, tau_p=1.0, dt=0.01)
MEMORY_SPEEDUP = 1000.0  # one second of calcium in 1 ms of the memory: calcium ~ the neurons' tau_u x 1000 / s
MEMORY_CAPTURE = 60.0  # 1/s: O_A of the memory study, strong enough that one calcium spike captures the pool


def replicator_lyapunov(patterns, params, u, g) -> np.ndarray:
    """The replicator model's Lyapunov function L(u, p) (models/abstract.py `energy`, docs/model.md) at states u
    (samples x N) with gains p = g / sum g (samples x K; the calcium gains renormalised onto the simplex, since L
    is defined there); NaN where no resource is bound."""
    from astrogate.models.abstract import AstroGateModel

    g = np.asarray(g, dtype=float)
    total = g.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        logits = np.log(np.where(g > 0, g, 1e-300))
    L = AstroGateModel(patterns, params).energy(np.asarray(u, dtype=float), logits)
    return np.where(total[:, 0] > 0, L, np.nan)


def energy_rises(L) -> dict:
    """How far a sampled L rose: the largest increase between two samples, relative to L's range (0 when it never
    rose), and the fraction of sample steps that rose by more than 1e-9 of the range."""
    L = np.asarray(L, dtype=float)
    L = L[np.isfinite(L)]
    if len(L) < 2:
        return {"largest_rise": float("nan"), "rising_steps": float("nan")}
    scale = max(float(L.max() - L.min()), 1e-300)
    steps = np.diff(L)
    return {"largest_rise": float(max(steps.max(), 0.0) / scale), "rising_steps": float(np.mean(steps > 1e-9 * scale))}


def retrieval_problems(Ks=(10, 30, 60), N: int = 20, flips: int = 2, sets: int = 10, seed: int = 0) -> list[dict]:
    """The pattern sets and cues of `calcium_retrieval`, in the order one generator seeded by `seed` draws them:
    for each K in turn, `sets` random +-1 sets of K patterns of N bits, each with its cue (pattern 0 with `flips`
    bits flipped). One dict per (K, set): K, N, flips, set, patterns, cue."""
    from astrogate.models.patterns import flip_cue

    rng = np.random.default_rng(seed)
    problems = []
    for K in Ks:
        for s in range(sets):
            xi = rng.choice([-1.0, 1.0], size=(K, N))
            problems.append({"K": K, "N": N, "flips": flips, "set": s, "patterns": xi,
                             "cue": flip_cue(xi[0], flips / N, rng)})
    return problems


def calcium_retrieval(Ks=(10, 30, 60), N: int = 20, flips: int = 2, sets: int = 10, calcium=None,
                      duration: float = 30.0, seed: int = 0, target: str = "cython") -> list[dict]:
    """A small version of the paper's Fig. 4 protocol: for each K, `sets` random +-1 pattern sets of N bits, the
    cue = pattern 0 with `flips` bits flipped (`retrieval_problems`), retrieved by `calcium_retrieval_runs`. One
    line per (K, set)."""
    return calcium_retrieval_runs(retrieval_problems(Ks, N, flips, sets, seed), calcium, duration, seed, target)


def calcium_retrieval_runs(problems: list[dict], calcium=None, duration: float = 30.0, seed: int = 0,
                           target: str = "cython") -> list[dict]:
    """Each problem of `retrieval_problems`: the sign(u) Hamming error (eq. 15) after `duration` ms of the memory
    with calcium astrocytes (`calcium`: a CalciumSetup or parameter overrides; MEMORY_NEURONS; speedup
    MEMORY_SPEEDUP and O_A = MEMORY_CAPTURE unless given; gains from 0; the runtime device, `target` cython or
    numpy), of the replicator model with the paper's preset and of classical Hopfield (seeded seed + set), on the
    same patterns and cues. Along each calcium run: the replicator's Lyapunov function (`replicator_lyapunov`,
    sampled every 0.1 ms), the gains' sum and lowest value. One network per K, restored for each of its sets. One
    line per problem."""
    import brian2 as b2
    from brian2 import second

    from astrogate.models.abstract import AstroGateModel
    from astrogate.models.baselines import ClassicalHopfield
    from astrogate.models.parameters import Parameters
    from astrogate.models.presets import PAPER_PRESET
    from astrogate.network import devices
    from astrogate.network.calcium import ORDER, calcium_setup
    from astrogate.network.memory import AstrocyteGatedMemory

    setup = calcium_setup(calcium)
    setup = replace(setup, parameters={"speedup": MEMORY_SPEEDUP, "O_A": MEMORY_CAPTURE / second,
                                       **setup.parameters})
    paper = PAPER_PRESET.parameters()
    memory_params = Parameters(**MEMORY_NEURONS)
    lines, net, built_K = [], None, None
    for problem in problems:
        xi, cue, K, N, s = problem["patterns"], problem["cue"], problem["K"], problem["N"], problem["set"]
        if K != built_K:
            devices.activate(devices.DeviceChoice("runtime", target), memory_params.dt)
            mem = AstrocyteGatedMemory(xi, memory_params, astrocyte="calcium", calcium=setup, name="calcium_memory")
            sample = dict(dt=0.1 * b2.ms, when="end", order=ORDER["monitors"])
            gains_monitor = b2.StateMonitor(mem.astrocytes, "g", record=True, **sample)
            neurons_monitor = b2.StateMonitor(mem.neurons, "u", record=True, **sample)
            net = b2.Network(mem, gains_monitor, neurons_monitor)
            net.store("built")
            built_K = K
        net.restore("built")
        mem.set_patterns(xi)
        mem.set_cue(cue)
        net.run(duration * b2.ms, namespace={})
        u_trace, g_trace = np.asarray(neurons_monitor.u[:]).T, np.asarray(gains_monitor.g[:]).T
        state = mem.state()
        replicator = AstroGateModel(xi, paper).run(cue, **PAPER_PRESET.run)
        hopfield = ClassicalHopfield(xi, seed=seed + s).retrieve(cue).states[0]
        L = replicator_lyapunov(xi, memory_params.updated(T=paper.T), u_trace, g_trace)
        sums = g_trace.sum(axis=1)
        lines.append({
            "K": K, "N": N, "load": K / N, "flips": problem["flips"], "set": s,
            "calcium_hamming": hamming(state["u"], xi[0]), "replicator_hamming": hamming(replicator.u, xi[0]),
            "hopfield_hamming": hamming(hopfield, xi[0]),
            "calcium_overlap": float(state["m"][0]), "calcium_top_gain": float(state["g"].max()),
            "calcium_winner_is_target": bool(np.argmax(state["g"]) == 0),
            "calcium_bound": state["bound"], "sum_max": float(sums.max()), "g_min": float(g_trace.min()),
            **energy_rises(L), "L_first": float(L[np.isfinite(L)][0]) if np.any(np.isfinite(L)) else float("nan"),
            "L_last": float(L[-1]),
        })
    devices.reset_runtime()
    return lines


def hamming(state, pattern) -> float:
    """The paper's eq. 15: (1/2) sum_i |xi_i - sign(s_i)|."""
    return float(0.5 * np.sum(np.abs(np.asarray(pattern) - np.sign(state))))


def retrieval_summary(lines: list[dict]) -> list[dict]:
    """Per K: the mean Hamming error of each model (with its standard error), the fraction of calcium runs whose
    largest gain is the target's, and the Lyapunov function's behaviour along the calcium runs."""
    out = []
    for K in dict.fromkeys(line["K"] for line in lines):
        rows = [line for line in lines if line["K"] == K]
        summary = {"K": K, "load": rows[0]["load"], "sets": len(rows)}
        for model in ("calcium", "replicator", "hopfield"):
            errors = np.array([r[f"{model}_hamming"] for r in rows])
            summary[f"{model}_hamming"] = float(errors.mean())
            summary[f"{model}_hamming_se"] = float(errors.std(ddof=1) / np.sqrt(len(errors))) if len(errors) > 1 else 0.0
        summary["calcium_winner_is_target"] = float(np.mean([r["calcium_winner_is_target"] for r in rows]))
        summary["calcium_top_gain"] = float(np.mean([r["calcium_top_gain"] for r in rows]))
        summary["calcium_overlap"] = float(np.mean([r.get("calcium_overlap", np.nan) for r in rows]))
        summary["sum_max"] = float(max(r["sum_max"] for r in rows))
        summary["g_min"] = float(min(r["g_min"] for r in rows))
        summary["largest_rise"] = float(np.nanmax([r["largest_rise"] for r in rows]))
        summary["rising_steps"] = float(np.nanmean([r["rising_steps"] for r in rows]))
        summary["L_fell"] = float(np.mean([r["L_last"] < r["L_first"] for r in rows]))
        out.append(summary)
    return out


# -- spiking neurons driving the calcium astrocytes ----------------------------------------------------------------
# Neurons at a physiological time constant (tau_u = 10 ms, dt = 0.1 ms) with calcium 100 times faster (1 s of
# calcium in 10 ms, the same ratio of time scales as MEMORY_SPEEDUP with tau_u = 1 ms); the spikes' readout
# tau_r = 5 ms, short against the run, so that the astrocytes' drive is the spikes' and not the readout's start.
SPIKING_NEURONS = dict(tau_u=10.0, gamma=3.0, kappa=1.0, cue_scale=1.0, T=0.01, tau_p=1.0, dt=0.1)
SPIKING_SPEEDUP = 100.0
SPIKING_RATES = {"poisson": dict(nu_max=200.0, tau_r=5.0), "lif": dict(nu_max=400.0, tau_r=5.0)}


def calcium_spiking_retrieval(K: int = 10, N: int = 100, flips: int = 10, sets: int = 10, neuron: str = "rate",
                              duration: float = 150.0, seed: int = 0) -> list[dict]:
    """The calcium memory with `neuron` neurons ("rate", or spiking "poisson" or "lif": SPIKING_NEURONS; the spiking
    rates SPIKING_RATES; speedup SPIKING_SPEEDUP, O_A = MEMORY_CAPTURE, the other calcium parameters the defaults)
    on `sets` pattern sets and cues (pattern 0 with `flips` of N bits flipped) drawn from one generator seeded by
    `seed` (the same for every neuron model), `duration` ms each, runtime device (cython); Brian2's seed is the
    set's index. One line per set: the sign(u) Hamming error (eq. 15), the final overlap of the rate-coded state
    with the target, whether the target's gain is the largest, the top gain, the largest sum and the smallest gain
    at every step, the number of spikes."""
    import brian2 as b2
    from brian2 import second

    from astrogate.models.patterns import flip_cue
    from astrogate.network import devices
    from astrogate.network.calcium import ORDER
    from astrogate.network.memory import AstrocyteGatedMemory

    rng = np.random.default_rng(seed)
    problems = []
    for _ in range(sets):
        xi = rng.choice([-1.0, 1.0], size=(K, N))
        problems.append((xi, flip_cue(xi[0], flips / N, rng)))
    calcium = {"speedup": SPIKING_SPEEDUP, "O_A": MEMORY_CAPTURE / second}
    devices.activate(devices.DeviceChoice("runtime", "cython"), SPIKING_NEURONS["dt"])
    options = {} if neuron == "rate" else {"neuron": neuron, **SPIKING_RATES[neuron]}
    params = {k: v for k, v in SPIKING_NEURONS.items() if k not in ("T", "tau_p")}
    mem = AstrocyteGatedMemory(problems[0][0], astrocyte="calcium", calcium=calcium, name="calcium_memory",
                               **params, **options)
    gains = b2.StateMonitor(mem.astrocytes, "g", record=True, when="end", order=ORDER["monitors"])
    spikes = b2.SpikeMonitor(mem.neurons, record=False) if neuron != "rate" else None
    net = b2.Network(mem, gains, *([spikes] if spikes is not None else []))
    net.store("built")
    lines = []
    for s, (xi, cue) in enumerate(problems):
        net.restore("built")
        mem.set_patterns(xi)
        mem.set_cue(cue)
        b2.seed(s)
        net.run(duration * b2.ms, namespace={})
        state, g = mem.state(), np.asarray(gains.g[:])
        lines.append({"neuron": neuron, "K": K, "N": N, "flips": flips, "set": s,
                      "calcium_hamming": hamming(state["u"], xi[0]), "overlap": float(state["m"][0]),
                      "winner_is_target": bool(np.argmax(state["g"]) == 0), "top_gain": float(state["g"].max()),
                      "sum_max": float(g.sum(axis=0).max()), "g_min": float(g.min()),
                      "spikes": int(spikes.num_spikes) if spikes is not None else 0})
    devices.reset_runtime()
    return lines


def spiking_summary(lines: list[dict]) -> list[dict]:
    """Per neuron model: the mean Hamming error (its standard error), final overlap and top gain, the fraction
    of runs whose largest gain is the target's, the largest sum and smallest gain of any step."""
    out = []
    for neuron in dict.fromkeys(line["neuron"] for line in lines):
        rows = [line for line in lines if line["neuron"] == neuron]
        errors = np.array([r["calcium_hamming"] for r in rows])
        out.append({"neuron": neuron, "K": rows[0]["K"], "N": rows[0]["N"], "flips": rows[0]["flips"],
                    "sets": len(rows), "calcium_hamming": float(errors.mean()),
                    "calcium_hamming_se": float(errors.std(ddof=1) / np.sqrt(len(errors))) if len(rows) > 1 else 0.0,
                    "overlap": float(np.mean([r["overlap"] for r in rows])),
                    "winner_is_target": float(np.mean([r["winner_is_target"] for r in rows])),
                    "top_gain": float(np.mean([r["top_gain"] for r in rows])),
                    "sum_max": float(max(r["sum_max"] for r in rows)), "g_min": float(min(r["g_min"] for r in rows)),
                    "spikes_per_run": float(np.mean([r["spikes"] for r in rows]))})
    return out


# -- the coupling study on the study engine: the quasi-static map and retrieval per mechanism and strength -------

MECHANISMS = {"shared pool": ("shared", "none"), "private pools": ("private", "none"),
              "gap junctions ring": ("shared", "ring"), "gap junctions all": ("shared", "all")}
STRENGTHS = ("O_A", "F_GJ")  # the capture strength of a pool (1/s), the gap junctions' permeability (uM/s)
MAP_METRICS = ("T_eff", "r", "max_deviation", "shape_T_eff", "shape_r", "sum_mean", "sum_min", "sum_max", "free_low",
               "g_low", "top_gain_mean", "convergence_s_median", "unconverged_states")
RETRIEVAL_METRICS = ("calcium_hamming", "replicator_hamming", "hopfield_hamming", "calcium_overlap",
                     "calcium_winner_is_target", "calcium_top_gain", "retrieval_sum_max", "retrieval_g_min", "L_fell")


def calcium_setup_of(values: dict, dt=STUDY_DT) -> CalciumSetup:
    """A point's calcium astrocytes: its `mechanism` (MECHANISMS) and the calcium parameters among its fields
    (O_A in 1/s, F_GJ in uM/s, Y_pattern in uM, n_A, speedup); F_GJ > 0 without gap junctions is refused (it
    would change nothing), and F_GJ is passed only where there are gap junctions."""
    from brian2 import second, umolar

    pool, gap_junctions = MECHANISMS[values["mechanism"]]
    if gap_junctions == "none" and values.get("F_GJ", 0.0) > 0:
        raise InputError(f"F_GJ = {values['F_GJ']:g} uM/s needs gap junctions: mechanism {values['mechanism']!r} "
                         f"has none")
    units = {"O_A": 1 / second, "Y_pattern": umolar, "n_A": 1.0, "speedup": 1.0}
    if gap_junctions != "none":
        units["F_GJ"] = umolar / second
    parameters = {name: values[name] * unit for name, unit in units.items() if name in values}
    return CalciumSetup(pool, gap_junctions, parameters, dt=dt)


def check_map_point(values: dict, bits: str) -> None:
    """A quasi-static map's point: its astrocytes, cues of at most values[bits] flipped bits, a window of at
    least one sample."""
    calcium_setup_of(values)
    if values["flips"] > values[bits]:
        raise InputError(f"flips must be at most {bits} = {values[bits]}, got {values['flips']}")
    if values["window"] < 1.0:
        raise InputError(f"window must be at least 1 s (the gains are sampled every second), got {values['window']}")


def mechanism_field():
    return Field("str", choice("mechanism", tuple(MECHANISMS)))


class CouplingStudy(Evaluation):
    """A point is one coupling of the calcium astrocytes (`mechanism`: a shared pool, private pools, or IP3 gap
    junctions on a ring or all-to-all on top of the shared pool) at one strength (the capture O_A, 1/s; the
    gap junctions' permeability F_GJ, uM/s), measured two ways on patterns of its own seed:

    - the quasi-static map (`quasi_static_map`): `per_kind` protocol states of each kind over K = map_K patterns
      of N = map_N bits (cues with `flips` flipped), physiological time (60 s of calcium alone, `settle`, then
      the averaging `window`, in seconds; dt = STUDY_DT): T_eff, r, the largest deviation, the shares' fit, the
      sums of the gains (sum_max: the largest sampled sum of the whole run; free_low: the smallest free fraction
      of any step, shared pools only; g_low: the smallest gain of any step) and the convergence;
    - retrieval (`calcium_retrieval`, skipped where retrieval_sets = 0): K = retrieval_K, N = 20, `retrieval_flips`
      flipped bits, calcium compressed MEMORY_SPEEDUP-fold; the mean Hamming errors of the calcium memory, the
      replicator model and classical Hopfield on the same cues, the gains' largest sum and smallest value at
      every 0.1 ms sample, the fraction of runs whose replicator Lyapunov function ended lower.

    `varied` names the strength the study varies for this mechanism (the figure's x axis), as the spiking
    study's `axis` (runs/configs/calcium_coupling.toml)."""

    name = "calcium_coupling"
    fields = {"mechanism": mechanism_field(),
              "varied": Field("str", choice("varied strength", STRENGTHS)),
              "O_A": Field("float", positive("O_A", zero=True)), "F_GJ": Field("float", positive("F_GJ", zero=True)),
              "Y_pattern": Field("float", positive("Y_pattern", zero=True)), "seed": Field("int", seed_field()),
              "map_K": Field("int", whole("map_K", 3), fixed_only=True),
              "map_N": Field("int", whole("map_N", 2), fixed_only=True),
              "flips": Field("int", whole("flips", 0), fixed_only=True),
              "per_kind": Field("int", whole("per_kind", 1), fixed_only=True),
              "settle": Field("float", positive("settle"), fixed_only=True),
              "window": Field("float", positive("window"), fixed_only=True),
              "retrieval_K": Field("int", whole("retrieval_K", 3), fixed_only=True),
              "retrieval_flips": Field("int", whole("retrieval_flips", 0), fixed_only=True),
              "retrieval_sets": Field("int", whole("retrieval_sets", 0), fixed_only=True),
              "target": Field("str", choice("runtime code generation target", ("numpy", "cython")), fixed_only=True)}
    metrics = MAP_METRICS + RETRIEVAL_METRICS + ("run_seconds",)
    default_metrics = metrics
    outputs = ("coupling.png",)
    DEFAULTS = {"mechanism": "shared pool", "varied": "O_A", "O_A": 60.0, "F_GJ": 0.0, "Y_pattern": 0.3, "seed": 0,
                "map_K": 30, "map_N": 30, "flips": 6, "per_kind": 4, "settle": 300.0, "window": 200.0,
                "retrieval_K": 60, "retrieval_flips": 2, "retrieval_sets": 3, "target": "cython"}

    def check_point(self, values: dict) -> None:
        check_map_point(values, "map_N")
        if values["retrieval_flips"] > 20:
            raise InputError(f"retrieval_flips must be at most N = 20, got {values['retrieval_flips']}")

    def run(self, values: dict, settings: dict, context: dict) -> dict:
        import time

        from astrogate.network.devices import quiet_brian2

        quiet_brian2()
        start = time.perf_counter()
        setup = calcium_setup_of(values)
        states = protocol_states(values["map_N"], values["map_K"], values["flips"], values["per_kind"], values["seed"])
        result = quasi_static_map(setup, states, settle=values["settle"], window=values["window"],
                                  target=values["target"])
        s = result["summary"]
        shape = shape_agreement(result["g"], result["f"])
        metrics = {key: s[key] for key in MAP_METRICS if key in s}
        metrics.update(shape_T_eff=shape["T_eff"], shape_r=shape["r"], g_low=float(np.min(s["g_low"])),
                       sum_max=float(np.max(result["run"]["bound"])))
        metrics.update({key: None for key in RETRIEVAL_METRICS})
        if values["retrieval_sets"] > 0:
            lines = calcium_retrieval((values["retrieval_K"],), flips=values["retrieval_flips"],
                                      sets=values["retrieval_sets"], calcium=setup, seed=values["seed"],
                                      target=values["target"])
            summary = retrieval_summary(lines)[0]
            metrics.update({key: summary[key] for key in RETRIEVAL_METRICS if key in summary},
                           retrieval_sum_max=summary["sum_max"], retrieval_g_min=summary["g_min"])
        metrics["run_seconds"] = time.perf_counter() - start
        return {"metrics": finite_or_none(metrics)}

    def finish(self, study: Study, finished, stage) -> list[str]:
        table = finished.table
        table = table[table["status"] == "ok"]
        if len(table):
            plot_coupling(table.to_dict("records"), stage / "coupling.png")
        return ["coupling.png"]


COUPLING_STUDY = CouplingStudy()


def coupling_curves(rows: list[dict], metric: str) -> dict:
    """{mechanism: (strengths, means over seeds)} of `metric`, each mechanism against the strength it varies."""
    curves = {}
    for mechanism in dict.fromkeys(row["mechanism"] for row in rows):
        sub = [row for row in rows if row["mechanism"] == mechanism]
        varied = sub[0]["varied"]
        x = sorted({float(row[varied]) for row in sub})
        y = [float(np.nanmean([np.nan if row[metric] is None else row[metric] for row in sub
                               if float(row[varied]) == v])) for v in x]
        curves[mechanism] = (np.array(x), np.array(y))
    return curves


COUPLING_PANELS = (("r", "map: r of g against softmax(f / T_eff)"), ("T_eff", "map: $T_{eff}$ (fitted)"),
                   ("sum_mean", "map: mean sum of the gains (window)"),
                   ("calcium_overlap", "memory: final overlap with the target"),
                   ("calcium_hamming", "memory: Hamming error (eq. 15)"))


def plot_coupling(rows: list[dict], path) -> Path:
    """Per mechanism, against its strength (log axis; O_A in 1/s for the pools, F_GJ in uM/s for the gap
    junctions): the map's r and T_eff, the mean sum of the gains, and the calcium memory's final overlap with
    the target and Hamming error (means over the seeds)."""
    from astrogate.analysis.io import prepare_output, save_figure
    from astrogate.analysis.plots import plt

    path = prepare_output(path, "plot")
    fig, axes = plt.subplots(1, len(COUPLING_PANELS), figsize=(3.6 * len(COUPLING_PANELS), 3.6))
    markers = dict(zip(MECHANISMS, "osv^"))
    for ax, (metric, label) in zip(axes, COUPLING_PANELS):
        for mechanism, (x, y) in coupling_curves(rows, metric).items():
            varied = next(row["varied"] for row in rows if row["mechanism"] == mechanism)
            unit = "1/s" if varied == "O_A" else "uM/s"
            ax.plot(x, y, marker=markers.get(mechanism, "."), label=f"{mechanism} ({varied}, {unit})")
        ax.set(xscale="log", xlabel="strength: O_A (1/s) or F_GJ (uM/s)", ylabel=label)
        if metric == "T_eff":
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path



# -- the results page's studies on the engine: the map per configuration, one astrocyte, the memory, spiking ------

def ok_lines(finished, missing=None) -> list[dict]:
    """The rows of a finished study's table whose point ran, as dicts; NaN (an absent value: None in the point
    file) becomes `missing`."""
    table = finished.table
    if "status" in table:
        table = table[table["status"] == "ok"]
    return [{k: (missing if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in table.to_dict("records")]


def by_point(lines: list[dict]) -> list[list[dict]]:
    """Lines grouped by their point, in the table's order."""
    groups = {}
    for line in lines:
        groups.setdefault(line["point"], []).append(line)
    return list(groups.values())


class RowsEvaluation(Evaluation):
    """A point whose result is several rows, one per index of its dimension (a pattern set, a glutamate level;
    `count` of them): the table holds the point's fields and each row; the rows of a point that failed hold its
    status and error."""

    count = "sets"  # the field that says how many rows a point has

    def valid(self, record: dict) -> bool:
        return valid_rows(record.get("rows"), self.text_columns)

    def rows(self, point, record: dict, study: Study) -> list[dict]:
        if record["status"] == "ok":
            return [{"point": point.id, **point.values, **row, "status": "ok", "error": ""} for row in record["rows"]]
        return [{"point": point.id, **point.values, self.dims[0]: i, "status": record["status"],
                 "error": record.get("error") or ""} for i in range(point.values[self.count])]


MAP_COLUMNS = ("group", "label", "pool", "gap_junctions", "T_eff", "r", "max_deviation", "rms_deviation",
               "shape_T_eff", "shape_r", "shape_max_deviation", "sum_mean", "sum_min", "free_low", "g_low",
               "top_gain_mean", "oscillating_states", "convergence_s_median", "convergence_s_max",
               "unconverged_states", "run_seconds")


class MapStudy(Evaluation):
    """A point is one configuration of the calcium astrocytes (a row of the results page's map table, named by
    `group` and `label`): its `mechanism` (MECHANISMS) and calcium parameters (Y_pattern in uM, O_A in 1/s, n_A,
    F_GJ in uM/s; the model's defaults 0.3, 0.6, 8 and no gap junctions), measured by `quasi_static_map` on the
    protocol states (`per_kind` of each kind over K patterns of N bits, cues with `flips` flipped, `seed`):
    60 s of calcium alone, `settle` s of release, the averaging `window` (s), dt = STUDY_DT. The finished study
    writes sweep.csv (one line per configuration), per configuration <label>.json (its summary), <label>.npz (f,
    g, kinds, the sampled sums, the release and calcium's range) and calcium_map_<label>.png, and
    calcium_sweep.png (runs/configs/calcium_map.toml)."""

    name = "calcium_map"
    fields = {"group": Field("str"), "label": Field("str"), "mechanism": mechanism_field(),
              "Y_pattern": Field("float", positive("Y_pattern", zero=True)),
              "O_A": Field("float", positive("O_A", zero=True)), "n_A": Field("float", positive("n_A")),
              "F_GJ": Field("float", positive("F_GJ", zero=True)),
              "N": Field("int", whole("N", 2), fixed_only=True), "K": Field("int", whole("K", 3), fixed_only=True),
              "flips": Field("int", whole("flips", 0), fixed_only=True),
              "per_kind": Field("int", whole("per_kind", 1), fixed_only=True),
              "seed": Field("int", seed_field(), fixed_only=True),
              "settle": Field("float", positive("settle"), fixed_only=True),
              "window": Field("float", positive("window"), fixed_only=True),
              "target": Field("str", choice("runtime code generation target", ("numpy", "cython")), fixed_only=True)}
    metrics = MAP_COLUMNS[4:]
    default_metrics = metrics
    outputs = ("sweep.csv", "calcium_sweep.png")
    DEFAULTS = {"group": "", "label": "defaults", "mechanism": "shared pool", "Y_pattern": 0.3, "O_A": 0.6,
                "n_A": 8.0, "F_GJ": 0.0, "N": 30, "K": 100, "flips": 6, "per_kind": 10, "seed": 0, "settle": 300.0,
                "window": 200.0, "target": "cython"}

    def check_point(self, values: dict) -> None:
        check_map_point(values, "N")

    def run(self, values: dict, settings: dict, context: dict) -> dict:
        from astrogate.network.devices import quiet_brian2

        quiet_brian2()
        states = protocol_states(values["N"], values["K"], values["flips"], values["per_kind"], values["seed"])
        result = quasi_static_map(calcium_setup_of(values), states, settle=values["settle"], window=values["window"],
                                  target=values["target"])
        summary = result["summary"]
        shape = shape_agreement(result["g"], result["f"])
        summary.update({f"shape_{k}": v for k, v in shape.items() if k != "rms_deviation"}, group=values["group"],
                       label=values["label"])
        run = result["run"]
        arrays = {"f": result["f"], "g": result["g"], "kinds": list(result["kinds"]), "t": run["t"],
                  "bound": run["bound"], "release": run["release_mean"], "C_low": run["C_low"], "C_high": run["C_high"]}
        return {"metrics": finite_or_none({m: summary[m] for m in self.metrics}), "summary": summary, "arrays": arrays}

    def valid(self, record: dict) -> bool:
        return super().valid(record) and all(isinstance(record.get(key), dict) for key in ("summary", "arrays"))

    def finish(self, study: Study, finished, stage) -> list[str]:
        from astrogate.analysis.io import write_csv, write_json

        written, lines = [], []
        for line in ok_lines(finished):
            record = finished.records[line["point"]]
            pool, gap_junctions = MECHANISMS[line["mechanism"]]
            lines.append({**{c: line.get(c) for c in MAP_COLUMNS}, "pool": pool, "gap_junctions": gap_junctions})
            stem = file_stem(line["label"])
            write_json(stage / f"{stem}.json", record["summary"])
            arrays = {k: np.array(v, dtype=str if k == "kinds" else float) for k, v in record["arrays"].items()}
            np.savez_compressed(stage / f"{stem}.npz", T_eff=record["summary"]["T_eff"], **arrays)
            plot_map({"summary": record["summary"], "kinds": arrays["kinds"], "g": arrays["g"],
                      "softmax": softmax(arrays["f"] / record["summary"]["T_eff"], axis=1),
                      "run": {"t": arrays["t"], "bound": arrays["bound"]}},
                     stage / f"calcium_map_{stem}.png", line["label"])
            written += [f"{stem}.json", f"{stem}.npz", f"calcium_map_{stem}.png"]
        if lines:
            write_csv(stage / "sweep.csv", lines, MAP_COLUMNS, float_format=".6g")
            plot_sweep(lines, stage / "calcium_sweep.png")
            written += ["sweep.csv", "calcium_sweep.png"]
        return written


class TransferStudy(RowsEvaluation):
    """A point is one astrocyte's response (`transfer_function`: a private pool of one, dt = STUDY_DT) at `levels`
    glutamate levels spaced evenly in log from `glutamate_low` to `glutamate_high` (uM): one row per level with
    the window-averaged release, calcium's range in the window and the mean gain. The finished study writes
    transfer.csv and calcium_transfer.png (runs/configs/calcium_transfer.toml)."""

    name = "calcium_transfer"
    fields = {"glutamate_low": Field("float", positive("glutamate_low")),
              "glutamate_high": Field("float", positive("glutamate_high")),
              "levels": Field("int", whole("levels", 2)),
              "settle": Field("float", positive("settle"), fixed_only=True),
              "window": Field("float", positive("window"), fixed_only=True),
              "target": Field("str", choice("runtime code generation target", ("numpy", "cython")), fixed_only=True)}
    metrics = ("glutamate_um", "release", "C_low", "C_high", "g")
    default_metrics = metrics
    dims = ("level",)
    count = "levels"
    outputs = ("transfer.csv", "calcium_transfer.png")
    DEFAULTS = {"glutamate_low": 1e-3, "glutamate_high": 30.0, "levels": 41, "settle": 300.0, "window": 200.0,
                "target": "cython"}

    def check_point(self, values: dict) -> None:
        if values["glutamate_low"] >= values["glutamate_high"]:
            raise InputError(f"glutamate_low = {values['glutamate_low']:g} uM must be below glutamate_high = "
                             f"{values['glutamate_high']:g} uM")

    def run(self, values: dict, settings: dict, context: dict) -> dict:
        from astrogate.network.devices import quiet_brian2

        quiet_brian2()
        levels = np.geomspace(values["glutamate_low"], values["glutamate_high"], values["levels"])
        response = transfer_function(levels, settle=values["settle"], window=values["window"], target=values["target"])
        return {"rows": [finite_or_none({"level": i, **{k: float(response[k][i]) for k in self.metrics}})
                         for i in range(len(levels))]}

    def finish(self, study: Study, finished, stage) -> list[str]:
        from astrogate.analysis.io import write_csv

        lines = ok_lines(finished, missing=float("nan"))
        if not lines:
            return []
        write_csv(stage / "transfer.csv", [{k: line[k] for k in self.metrics} for line in lines], self.metrics,
                  float_format=".6g")
        plot_transfer({k: np.array([line[k] for line in lines], dtype=float) for k in self.metrics},
                      stage / "calcium_transfer.png")
        return list(self.outputs)


RUN_COLUMNS = ("K", "N", "load", "flips", "set", "calcium_hamming", "replicator_hamming", "hopfield_hamming",
               "calcium_overlap", "calcium_top_gain", "calcium_winner_is_target", "calcium_bound", "sum_max", "g_min",
               "largest_rise", "rising_steps", "L_first", "L_last")
MEMORY_PARTS = ("retrieval", "mechanisms", "flips", "drive")


class MemoryStudy(RowsEvaluation):
    """A point is one configuration of the memory with calcium astrocytes (`mechanism`, O_A in 1/s, F_GJ in uM/s,
    `speedup`, Y_pattern in uM) retrieving `sets` pattern sets of K patterns of N bits, each cue pattern 0 with
    `flips` bits flipped (`calcium_retrieval_runs`: the calcium memory, the replicator model and classical
    Hopfield on the same cues, `duration` ms): one row per set. The sets are drawn as `calcium_retrieval` draws
    them: points that differ only in K share one generator seeded by `seed`, which draws the sets of their K
    values in the grid's order (a point draws those of the K values before its own first).

    `part` says which of the results page's tables a point belongs to, and the finished study writes them:
    retrieval.csv (every run of the "retrieval" points) and retrieval_summary.csv (per K); mechanisms.csv (per
    "mechanisms" point, with its `group` and `label`); flips.csv (per "flips" point); drive.csv (per "drive"
    point, with its Y_pattern) (runs/configs/calcium_memory.toml)."""

    name = "calcium_memory"
    fields = {"part": Field("str", choice("part", MEMORY_PARTS)), "group": Field("str"), "label": Field("str"),
              "mechanism": mechanism_field(), "O_A": Field("float", positive("O_A", zero=True)),
              "F_GJ": Field("float", positive("F_GJ", zero=True)), "speedup": Field("float", positive("speedup")),
              "Y_pattern": Field("float", positive("Y_pattern", zero=True)), "K": Field("int", whole("K", 1)),
              "flips": Field("int", whole("flips", 0)), "sets": Field("int", whole("sets", 1)),
              "seed": Field("int", seed_field()), "N": Field("int", whole("N", 2), fixed_only=True),
              "duration": Field("float", positive("duration"), fixed_only=True),
              "target": Field("str", choice("runtime code generation target", ("numpy", "cython")), fixed_only=True)}
    metrics = RUN_COLUMNS[5:]
    default_metrics = metrics
    dims = ("set",)
    outputs = ("retrieval.csv", "retrieval_summary.csv", "mechanisms.csv", "flips.csv", "drive.csv")
    DEFAULTS = {"part": "retrieval", "group": "", "label": "", "mechanism": "shared pool", "O_A": MEMORY_CAPTURE,
                "F_GJ": 0.0, "speedup": MEMORY_SPEEDUP, "Y_pattern": 0.3, "K": 10, "flips": 2, "sets": 10, "seed": 0,
                "N": 20, "duration": 30.0, "target": "cython"}

    def check_point(self, values: dict) -> None:
        from astrogate.network.calcium import CALCIUM_STEP_LIMIT

        calcium_setup_of(values, dt=MEMORY_NEURONS["dt"])
        if values["flips"] > values["N"]:
            raise InputError(f"flips must be at most N = {values['N']}, got {values['flips']}")
        if values["speedup"] * MEMORY_NEURONS["dt"] * 1e-3 * 10 > CALCIUM_STEP_LIMIT:
            raise InputError(f"speedup = {values['speedup']:g} is too large for the memory's dt = "
                             f"{MEMORY_NEURONS['dt']:g} ms (speedup * dt <= {CALCIUM_STEP_LIMIT * 100:g} ms)")

    @staticmethod
    def stream_key(values: dict) -> str:
        return json.dumps({k: v for k, v in values.items() if k != "K"}, sort_keys=True)

    def prepare(self, study: Study) -> Study:
        """Each stream's K values in the order they draw their sets (the grid's order)."""
        from astrogate.analysis.study import point_values

        streams = {}
        for _, values in point_values(study):
            Ks = streams.setdefault(self.stream_key(values), [])
            if values["K"] not in Ks:
                Ks.append(values["K"])
        return replace(study, settings={**study.settings, "streams": streams})

    def run(self, values: dict, settings: dict, context: dict) -> dict:
        from astrogate.network.devices import quiet_brian2

        quiet_brian2()
        Ks = settings["streams"][self.stream_key(values)]
        Ks = Ks[:Ks.index(values["K"]) + 1]
        problems = [p for p in retrieval_problems(Ks, values["N"], values["flips"], values["sets"], values["seed"])
                    if p["K"] == values["K"]]
        lines = calcium_retrieval_runs(problems, calcium_setup_of(values, dt=MEMORY_NEURONS["dt"]),
                                       values["duration"], values["seed"], values["target"])
        return {"rows": [finite_or_none({k: line[k] for k in RUN_COLUMNS}) for line in lines]}

    def finish(self, study: Study, finished, stage) -> list[str]:
        from astrogate.analysis.io import write_csv

        lines = ok_lines(finished, missing=float("nan"))
        written = []

        def write(name, rows, columns=None, float_format=".4g"):
            if rows:
                write_csv(stage / name, rows, columns, float_format=float_format)
                written.append(name)

        retrieval = [line for line in lines if line["part"] == "retrieval"]
        write("retrieval.csv", [{k: line[k] for k in RUN_COLUMNS} for line in retrieval], RUN_COLUMNS, ".6g")
        write("retrieval_summary.csv", retrieval_summary(retrieval))
        per_point = {part: [(group[0], retrieval_summary(group)[0]) for group in by_point(lines)
                            if group[0]["part"] == part] for part in MEMORY_PARTS[1:]}
        write("mechanisms.csv", [{"group": first["group"], "label": first["label"], **summary}
                                 for first, summary in per_point["mechanisms"]])
        write("flips.csv", [{"flips": first["flips"], **summary} for first, summary in per_point["flips"]])
        write("drive.csv", [{"Y_pattern_uM": first["Y_pattern"], "flips": first["flips"], **summary}
                            for first, summary in per_point["drive"]])
        return written


class SpikingMemoryStudy(RowsEvaluation):
    """A point is one neuron model (`neuron`: "rate", or spiking "poisson" or "lif") of the calcium memory on
    `sets` pattern sets of K patterns of N bits, each cue pattern 0 with `flips` bits flipped
    (`calcium_spiking_retrieval`: `duration` ms, Brian2's seed = the set; every neuron model on the same sets of
    the same `seed`): one row per set. The finished study writes spiking_summary.csv, one line per point
    (`spiking_summary`) (runs/configs/calcium_spiking.toml)."""

    name = "calcium_spiking"
    fields = {"neuron": Field("str", choice("neuron model", ("rate", *SPIKING_RATES))),
              "K": Field("int", whole("K", 1)), "flips": Field("int", whole("flips", 0)),
              "N": Field("int", whole("N", 2)), "sets": Field("int", whole("sets", 1)),
              "duration": Field("float", positive("duration")), "seed": Field("int", seed_field())}
    metrics = ("calcium_hamming", "overlap", "winner_is_target", "top_gain", "sum_max", "g_min", "spikes")
    default_metrics = metrics
    dims = ("set",)
    text_columns = ("neuron",)
    outputs = ("spiking_summary.csv",)
    DEFAULTS = {"neuron": "rate", "K": 10, "flips": 10, "N": 100, "sets": 10, "duration": 150.0, "seed": 0}

    def check_point(self, values: dict) -> None:
        if values["flips"] > values["N"]:
            raise InputError(f"flips must be at most N = {values['N']}, got {values['flips']}")

    def run(self, values: dict, settings: dict, context: dict) -> dict:
        from astrogate.network.devices import quiet_brian2

        quiet_brian2()
        lines = calcium_spiking_retrieval(values["K"], values["N"], values["flips"], values["sets"], values["neuron"],
                                          values["duration"], values["seed"])
        return {"rows": [finite_or_none(line) for line in lines]}

    def finish(self, study: Study, finished, stage) -> list[str]:
        from astrogate.analysis.io import write_csv

        summaries = [spiking_summary(group)[0] for group in by_point(ok_lines(finished, missing=float("nan")))]
        if not summaries:
            return []
        write_csv(stage / "spiking_summary.csv", summaries, float_format=".4g")
        return list(self.outputs)


MAP_STUDY = MapStudy()
TRANSFER_STUDY = TransferStudy()
MEMORY_STUDY = MemoryStudy()
SPIKING_MEMORY_STUDY = SpikingMemoryStudy()
