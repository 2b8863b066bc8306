"""Retrieval metrics per trial and their confidence intervals.

Every retrieval in the project is measured here: the retrieval benchmark, the sweeps and the record of one
`recall` (which names the same quantities the same way in CSV, xarray and JSON).

Per trial (a final state s, +-1 or continuous rates, the stored patterns xi, the target index t, the cue c),
with overlaps m_mu = xi_mu . s / N:

- exact_match: sign(s) equals xi_t in every bit.
- nearest_accuracy: argmax_mu m_mu = t (the state is closer to the target than to any other memory).
- final_overlap: m_t; improvement: m_t minus the cue's overlap with the target.
- sign_flip: m_t <= -0.9 (the network fell into the target's negative image).
- mixture: a spurious mixture state: no stored pattern has |m_mu| >= 0.9, yet s has overlap >= 0.9
  (in absolute value) with sign(sum of the three patterns of largest |m_mu|, each signed by its m_mu).

The paper's observables (Vivet & Arenas 2026, Sec. II.3), in its names:

- soft_hamming_error (eq. 13): (1/2) sum_i |xi_t,i - s_i|, with s the rates phi(x) = tanh(gamma u) (for a
  model whose state is +-1, the Hamming error itself).
- hamming_error (eq. 15): (1/2) sum_i |xi_t,i - sign(s_i)|.
- perplexity (eq. 14): exp(H[g]) = exp(-sum_mu g_mu ln g_mu) of the final gains, in [1, K]; NaN for a model
  without gains.
- convergence_time (not a function of the final state: the run reports it, models/abstract.py
  convergence_time).

Rates get Wilson 95 % intervals, means a percentile bootstrap 95 % interval.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax, xlogy
from scipy.stats import norm

NEAR = 0.9  # overlap that counts as "at" a pattern or a mixture
Z95 = float(norm.ppf(0.975))


def trial_metrics(states: np.ndarray, patterns: np.ndarray, targets: np.ndarray, cues: np.ndarray,
                  gains: np.ndarray | None = None, rates: np.ndarray | None = None) -> dict:
    """Per-trial arrays (B,) for one batch of states (B x N). gains (B x K): the final gains, for the
    perplexity; rates (B x N): the continuous rates where the states are their signs, for the soft error."""
    states = np.asarray(states, float)
    xi = np.asarray(patterns, float)
    targets = np.asarray(targets, int)
    N = xi.shape[1]
    rows = np.arange(states.shape[0])
    m = states @ xi.T / N
    m_target = m[rows, targets]
    exact = np.all(np.sign(states) == np.sign(xi[targets]), axis=1)
    nearest = np.argmax(m, axis=1) == targets
    top3 = np.argsort(-np.abs(m), axis=1)[:, :3]
    signed = np.take_along_axis(np.sign(m), top3, axis=1)[:, :, None] * xi[top3]
    mixture_state = np.sign(signed.sum(axis=1))
    mixture_overlap = np.abs(np.sum(mixture_state * states, axis=1)) / N
    mixture = (np.max(np.abs(m), axis=1) < NEAR) & (mixture_overlap >= NEAR) & (xi.shape[0] >= 3)
    cue_overlap = np.sum(np.asarray(cues, float) * xi[targets], axis=1) / N
    soft_states = states if rates is None else np.asarray(rates, float)
    return {
        "exact_match": exact,
        "nearest_accuracy": nearest,
        "final_overlap": m_target,
        "improvement": m_target - cue_overlap,
        "sign_flip": m_target <= -NEAR,
        "mixture": mixture,
        "soft_hamming_error": soft_hamming_error(soft_states, xi[targets]),
        "hamming_error": hamming_error(states, xi[targets]),
        "perplexity": np.full(rows.size, np.nan) if gains is None else perplexity(gains),
    }


def soft_hamming_error(rates: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The paper's eq. 13, (1/2) sum_i |xi_i - s_i|, of rates s (..., N) against target patterns (..., N)."""
    return 0.5 * np.sum(np.abs(np.asarray(targets, float) - np.asarray(rates, float)), axis=-1)


def hamming_error(states: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The paper's eq. 15, (1/2) sum_i |xi_i - sign(s_i)|, of states s (..., N) against targets (..., N)
    (a state at exactly 0 counts half a bit: sign(0) = 0)."""
    return 0.5 * np.sum(np.abs(np.asarray(targets, float) - np.sign(np.asarray(states, float))), axis=-1)


def perplexity(gains: np.ndarray) -> np.ndarray:
    """exp(H[g]) of gains (..., K) on the simplex (0 ln 0 = 0): 1 for one-hot gains, K for uniform ones."""
    g = np.asarray(gains, float)
    return np.exp(-np.sum(xlogy(g, g), axis=-1))


def log_log_slope(points) -> dict | None:
    """Least-squares slope of log y against log x over (x, y) points, or None with fewer than two distinct x
    or a y <= 0: the exponent of a power law y ~ x^exponent."""
    if len({p[0] for p in points}) < 2 or not all(p[1] > 0 for p in points):
        return None
    x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    return {"exponent": float(np.polyfit(x, y, 1)[0]), "points": len(points)}


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (nan, nan) for no trials."""
    if trials <= 0:
        return float("nan"), float("nan")
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def bootstrap_interval(values, n_resamples: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (fixed seed: reruns give the same interval)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_resamples, values.size))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


# the per-trial arrays of trial_metrics
TRIAL_METRICS = ("exact_match", "nearest_accuracy", "final_overlap", "improvement", "sign_flip", "mixture",
                 "soft_hamming_error", "hamming_error", "perplexity")
RATES = ("exact_match", "nearest_accuracy", "sign_flip", "mixture", "not_converged")
# column name -> per-trial array it averages
MEANS = {"mean_overlap": "final_overlap", "mean_improvement": "improvement", "mean_steps": "steps",
         # the paper's observables, under its names (means over the trials, as the paper's Fig. 4 reports)
         "hamming_error": "hamming_error", "soft_hamming_error": "soft_hamming_error", "perplexity": "perplexity",
         "convergence_time": "convergence_time"}
# the per-trial arrays summarise() needs besides those of trial_metrics (a model's run reports them)
RUN_FIELDS = ("steps", "converged", "convergence_time")


def summarise(per_trial: dict) -> dict:
    """One row of the results table: each rate with its Wilson interval, each mean with a bootstrap
    interval. per_trial holds the arrays of trial_metrics plus RUN_FIELDS ('steps', 'converged',
    'convergence_time', NaN for a model that does not report it)."""
    trials = int(np.asarray(per_trial["exact_match"]).size)
    values = dict(per_trial)
    values.setdefault("convergence_time", np.full(trials, np.nan))
    values["not_converged"] = ~np.asarray(per_trial["converged"], bool)
    row = {"trials": trials}
    for name in RATES:
        hits = int(np.sum(values[name]))
        row[name] = hits / trials if trials else float("nan")
        row[f"{name}_lo"], row[f"{name}_hi"] = wilson_interval(hits, trials)
    for column, name in MEANS.items():
        data = np.asarray(values[name], float)
        row[column] = float(np.mean(data)) if trials else float("nan")
        row[f"{column}_lo"], row[f"{column}_hi"] = bootstrap_interval(data)
    return row


def softmax_residual_trace(model, m_hat: np.ndarray, g: np.ndarray) -> np.ndarray:
    """max_mu |g_t - softmax(beta F(m_hat_t))| for traces m_hat, g of shape (T, K)."""
    target = softmax(model.beta * model.F.F(np.asarray(m_hat)), axis=-1)
    return np.max(np.abs(np.asarray(g) - target), axis=-1)


def late_half(trace: np.ndarray) -> np.ndarray:
    """The second half of a trace (the retrieval transient is in the first)."""
    trace = np.asarray(trace)
    return trace[len(trace) // 2:]
