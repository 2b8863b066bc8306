"""The quasi-static map of the calcium astrocytes: with the neural state clamped, their steady-state (or
cycle-averaged) gains against the replicator's fixed point softmax(f / T), f = N m^2 / 2 (the paper's eq. 8).

The neural states are those of the paper's protocol (N = 30, K = 100, 6 flipped bits; docs/results/calcium.md):
stored patterns, mixtures of two and three patterns, and corrupted cues. For each, the overlaps m = xi v / N are
clamped, the astrocytes (network/calcium.py) run from rest for `settle` seconds of biological time and their
gains are averaged over the next `window` seconds. One temperature T_eff is fitted to all states at once (least
squares of g against softmax(f / T)); the report gives the correlation r of g with softmax(f / T_eff) over every
(state, pattern) pair, the largest deviation, the distance to the simplex (1 - sum g, and the lowest gain of any
step) and the convergence time in seconds.

    python -m astrogate.analysis.calcium --out runs/calcium          # the results page's map and sweep
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import softmax

from astrogate.errors import InputError
from astrogate.network.calcium import CalciumSetup, run_clamped

KINDS = ("pattern", "mixture2", "mixture3", "cue")
CONVERGENCE_TOLERANCE = 0.02  # |g - its window average| below which a state counts as converged


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
    """Per state, the first sample time after which every gain stays within `tolerance` of its window average
    (NaN if the last sample is off by more)."""
    off = np.max(np.abs(g - g_mean[:, :, None]), axis=1) > tolerance  # S x samples
    times = np.full(len(g), np.nan)
    for s, row in enumerate(off):
        if not row[-1]:
            bad = np.nonzero(row)[0]
            times[s] = t[0] if len(bad) == 0 else t[bad[-1] + 1]
    return times


def quasi_static_map(setup: CalciumSetup | None = None, states: ProtocolStates | None = None, settle: float = 400.0,
                     window: float = 200.0, device: str = "runtime", target: str = "cython") -> dict:
    """Run the clamped states, fit T_eff and measure; returns a summary dict and per-state arrays."""
    setup = setup or CalciumSetup()
    states = states or protocol_states()
    run = run_clamped(states.overlaps, setup, settle=settle, window=window, sample_every=1.0, device=device,
                      target=target)
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
