"""Retrieval rows of `astrogate bench speed`: time per retrieved cue, B cues at once.

Per size N x K, on the same iid +-1 patterns and the same cues (20 % of the target's bits flipped), one
process, one BLAS thread, every model timed in the same run so that the ratios are side by side:
- modern Hopfield, iterated (models/baselines.py ModernHopfield, float64, beta = 64 / N, until
  max|x_new - x| < 1e-6), and the same update in float32 (for comparison only);
- the gated model (AstroGated) with the reference settings (forward Euler at dt = 0.1 ms, float64, each cue
  stopped at the fixed point, tol 1e-6), with the fast settings in float64 (the stopping rule alone), and with
  the fast settings (models/abstract.py FAST_SETTINGS).
Each row: seconds per cue (the batch's time / B; the median of repeats, the reference once: it takes
thousands of steps, and at the larger size only part of them are timed, see time_retrieval), steps per cue,
exact-match rate, and the ratio to iterated modern Hopfield.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from astrogate.analysis.speed.process import in_fresh_process

RETRIEVAL_SIZES = ((10**3, 10**3), (10**4, 10**3))
QUICK_RETRIEVAL_SIZES = ((300, 300),)
FLIP = 0.2
MODERN_BETA_TIMES_N = 64.0  # the larger of the quick benchmark's two candidates: retrieves in 2 updates here
TARGET_RATIO = 10.0  # the fast settings within 10x of iterated modern Hopfield per retrieved cue
# the reference (up to 3000 steps a cue) is run in full up to this many B N K steps (N = K = 10^3, B = 128: 3.8e11),
# above it timed over REFERENCE_TIMED_STEPS steps and scaled to the steps it takes
REFERENCE_MAX_WORK = 4e11
REFERENCE_TIMED_STEPS = 100
ROW_COLUMNS = ("model", "N", "K", "batch", "seconds_per_cue", "steps_per_cue", "exact_match", "ratio_to_modern",
               "repeats", "stop_rules", "note")


def _modern_float32(xi: np.ndarray, cues: np.ndarray, beta: float, max_steps: int = 100, tol: float = 1e-6):
    """ModernHopfield's iterated update in float32 (the products twice as fast); (states, steps per cue)."""
    from scipy.special import softmax

    xi32, x = xi.astype(np.float32), cues.astype(np.float32)
    steps = np.full(len(cues), max_steps)
    done = np.zeros(len(cues), bool)
    for step in range(1, max_steps + 1):
        new = softmax(np.float32(beta) * (x @ xi32.T), axis=1) @ xi32
        still = np.max(np.abs(new - x), axis=1) < tol
        steps[still & ~done] = step
        done |= still
        x = new
        if done.all():
            break
    return np.sign(x), steps


def gated_settings() -> dict:
    """The gated rows' run settings, by row name."""
    from astrogate.models.abstract import FAST_SETTINGS, REFERENCE_SETTINGS

    return {"gated_reference": REFERENCE_SETTINGS,
            "gated_fast_float64": replace(FAST_SETTINGS, dtype="float64"),
            "gated_fast": FAST_SETTINGS}


def reference_time_limit_bound(model, tol: float) -> float:
    """A lower bound on when the reference's fixed-point rule can hold for a cue that retrieves: the logits
    relax toward beta F(m) with tau_g from a(0) = 0, so |da/dt| = |beta F(m) - a| / tau_g stays above tol
    until t = tau_g ln(beta F(m) / (tau_g tol)), here with F(m) = F(1) (m -> 1 at the retrieved pattern)."""
    top = model.beta * float(model.F.F(np.array(1.0)))
    p = model.params
    return p.tau_g * float(np.log(top / (p.tau_g * tol))) if top > p.tau_g * tol else 0.0


def time_retrieval(N: int, K: int, batch: int, repeats: int, seed: int = 0,
                   reference_max_work: float = REFERENCE_MAX_WORK) -> list[dict]:
    """Every retrieval row of one size, measured in this process on one BLAS thread; the repeats go round
    the models in turn, so that a change of the machine's load hits every row alike."""
    from threadpoolctl import threadpool_limits

    from astrogate.models.baselines import AstroGated, ModernHopfield
    from astrogate.models.parameters import Parameters
    from astrogate.models.patterns import flip_cue, random_patterns

    rng = np.random.default_rng(seed)
    xi = random_patterns(K, N, rng)
    targets = rng.integers(K, size=batch)
    cues = flip_cue(xi[targets], FLIP, rng)
    beta = MODERN_BETA_TIMES_N / N
    modern = ModernHopfield(xi, beta=beta, iterate=True)
    runs = {"modern_hopfield_iterated": (lambda: _as_result(modern.retrieve(cues))),
            "modern_hopfield_iterated_float32": (lambda: _modern_float32(xi, cues, beta) + (None,))}
    gated = {}
    for name, settings in gated_settings().items():
        gated[name] = model = AstroGated(xi, Parameters(), settings)

        def run(model=model):
            result = model.retrieve(cues)
            return result.states, result.steps, model.last_stop_rules

        runs[name] = run
    reference = gated["gated_reference"]
    full_steps = int(round(reference.max_duration / reference.model.params.dt))
    # the reference takes up to full_steps steps per cue; above this much work it is timed for a part of them
    extrapolate = batch * N * K * full_steps > reference_max_work
    if extrapolate:
        bound = reference_time_limit_bound(reference.model, reference.tol)
        timed_steps = REFERENCE_TIMED_STEPS
        short = AstroGated(xi, Parameters(), reference.settings, max_duration=timed_steps * reference.model.params.dt,
                           tol=reference.tol)

        def run_reference_part():
            result = short.retrieve(cues)
            return result.states, result.steps, short.last_stop_rules

        runs["gated_reference"] = run_reference_part
    times = {name: [] for name in runs}
    outcomes = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for name, run in runs.items():  # warm-up: first-call costs (caches, the float32 copy of the patterns)
            if name != "gated_reference":
                run()
        for repeat in range(repeats):
            for name, run in runs.items():
                if name == "gated_reference" and repeat > 0:
                    continue  # thousands of steps: timed once
                start = time.perf_counter()
                outcomes[name] = run()
                times[name].append(time.perf_counter() - start)
    rows = []
    for name in runs:
        states, steps, rules = outcomes[name]
        seconds = statistics.median(times[name]) / batch
        note = "one repeat" if len(times[name]) == 1 else f"median of {len(times[name])}"
        exact = float(np.mean(np.all(states == xi[targets], axis=1)))
        if name == "gated_reference" and extrapolate:
            if bound < reference.max_duration:
                raise RuntimeError("the reference might stop before its time limit: measure it in full")
            seconds *= full_steps / timed_steps
            steps = np.full(batch, full_steps)
            note = (f"extrapolated: {timed_steps} steps timed, x {full_steps} steps (every cue runs to the "
                    f"{reference.max_duration:g} ms limit: |da/dt| > tol until t >= {bound:.0f} ms); exact match "
                    f"after {timed_steps} steps")
            rules = np.full(batch, "time limit")
        rows.append({"model": name, "N": N, "K": K, "batch": batch, "seconds_per_cue": seconds,
                     "steps_per_cue": float(np.mean(steps)), "exact_match": exact, "repeats": len(times[name]),
                     "stop_rules": _count(rules), "note": note})
    modern_seconds = rows[0]["seconds_per_cue"]
    for row in rows:
        row["ratio_to_modern"] = row["seconds_per_cue"] / modern_seconds
    return rows


def _as_result(result):
    return result.states, result.steps, None


def _count(rules) -> str:
    if rules is None:
        return ""
    names, counts = np.unique(np.asarray(rules), return_counts=True)
    return ", ".join(f"{n}: {c}" for n, c in zip(names, counts))


def measure_retrieval(N: int, K: int, batch: int, repeats: int) -> list[dict]:
    """time_retrieval in a fresh process (its own memory, no state from earlier measurements)."""
    rows, failure = in_fresh_process(time_retrieval, N, K, batch, repeats)
    return rows if failure is None else [{"model": "all", "N": N, "K": K, "batch": batch, "note": failure}]


def run_retrieval_rows(sizes, batch: int, repeats: int, out: Path, log=print) -> dict:
    """Measure every size, write OUT/speed_retrieval.csv; the rows and the target verdict per size."""
    from astrogate.analysis.io import write_csv

    rows = []
    for N, K in sizes:
        log(f"retrieval N={N} K={K} B={batch} ...")
        rows += measure_retrieval(N, K, batch, repeats)
        write_csv(Path(out) / "speed_retrieval.csv", rows, ROW_COLUMNS, float_format=".6g")
    return {"rows": rows, "targets": retrieval_targets(rows)}


def retrieval_targets(rows) -> dict:
    """Per size: the fast settings' time per cue over iterated modern Hopfield's, against the 10x target."""
    block = {}
    for row in rows:
        if row["model"] == "gated_fast" and row.get("ratio_to_modern") is not None:
            block[f"{row['N']}x{row['K']}"] = {"ratio": row["ratio_to_modern"], "bound": TARGET_RATIO,
                                               "met": bool(row["ratio_to_modern"] <= TARGET_RATIO)}
    return block


def retrieval_report(block: dict) -> list[str]:
    """The retrieval rows as text lines for `astrogate bench speed`."""
    lines = [f"{'retrieval (B cues at once)':<34}{'N':>7}{'K':>6}{'ms/cue':>10}{'steps/cue':>10}{'exact':>7}"
             f"{'x modern':>10}  stop rules"]
    for r in block["rows"]:
        if "seconds_per_cue" not in r:
            lines.append(f"{r['model']:<34}{r['N']:>7}{r['K']:>6}  {r['note']}")
            continue
        lines.append(f"{r['model']:<34}{r['N']:>7}{r['K']:>6}{r['seconds_per_cue'] * 1e3:>10.3f}"
                     f"{r['steps_per_cue']:>10.1f}{r['exact_match']:>7.2f}{r['ratio_to_modern']:>10.2f}"
                     f"  {r['stop_rules']}")
    for size, t in block["targets"].items():
        lines.append(f"target: gated_fast within {t['bound']:g}x of iterated modern Hopfield at {size}: "
                     f"{t['ratio']:.2f}x, {'met' if t['met'] else 'NOT met'}")
    return lines
