"""The speed benchmark's NumPy measurements: the two-mat-vec limit, the abstract model (one cue and a batch),
the machine's GEMM peak and the NAAM baseline, with the estimate of NAAM's time that caps its sizes. Each
time_* function runs in its own process (run.measure())."""

from __future__ import annotations

import statistics
import time

import numpy as np

from astrogate.analysis.speed.config import BETA_CAP, DT_MS, TRIAL_MS

# NAAM's seconds per step at N = 1000, K = 100 on this project's machine (2 shared cores: 0.064 s for the
# authors' dynamics, 0.064 to 0.112 s for the earlier version before it; the slowest kept as an upper bound);
# estimates the first NAAM size of a run, the run's own NAAM rows the later ones
NAAM_REFERENCE_STEP = (1000, 100, 0.11)


def median_seconds(fn, repeats: int, warmup: int = 1, min_seconds: float = 0.02) -> float:
    """Median time of one call of fn: calls are batched so that each timed sample lasts min_seconds."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    inner = max(1, int(min_seconds / max(once, 1e-9)))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def benchmark_patterns(K: int, N: int, seed: int = 0) -> np.ndarray:
    """K x N fair +-1 patterns drawn as int8 (less temporary memory than models.patterns.random_patterns,
    which matters at N K = 10^8); the timings do not depend on the values."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 2, size=(K, N), dtype=np.int8) * 2 - 1).astype(np.float64)



def benchmark_parameters(N: int):
    from astrogate.models.parameters import Parameters

    return Parameters(dt=DT_MS, beta=min(Parameters().beta_for(N), BETA_CAP))


def time_matvec_limit(N: int, K: int, repeats: int) -> dict:
    """The two products of a step alone: xi @ v (K) and xi.T @ h (N), float64, BLAS on one core and on
    all cores; the faster of the two is the limit (on a shared machine either may win)."""
    from threadpoolctl import threadpool_limits

    xi = benchmark_patterns(K, N)
    rng = np.random.default_rng(1)
    v, h = rng.standard_normal(N), rng.standard_normal(K)

    def two_products():
        xi @ v
        xi.T @ h

    all_cores = median_seconds(two_products, repeats, warmup=2)
    with threadpool_limits(limits=1, user_api="blas"):
        one_core = median_seconds(two_products, repeats, warmup=2)
    return {"seconds_per_step": min(one_core, all_cores), "one_core": one_core, "all_cores": all_cores}


def euler_step_seconds(model, u, a, repeats: int, steps: int) -> float:
    """Median seconds per forward-Euler step of the abstract model from state (u, a), one cue or a batch."""
    dt = model.params.dt

    def run_steps():
        nonlocal u, a
        for _ in range(steps):
            du, da = model.derivatives(u, a)
            u = u + dt * du
            a = a + dt * da

    return median_seconds(run_steps, repeats, min_seconds=0) / steps


def time_numpy_reference(N: int, K: int, repeats: int, steps: int) -> dict:
    """AstroGateModel's forward-Euler step on one cue, as `recall --method euler` takes it."""
    from astrogate.models.abstract import AstroGateModel

    model = AstroGateModel(benchmark_patterns(K, N), benchmark_parameters(N))
    u, a = model.initial_state(model.xi[0])
    return {"seconds_per_step": euler_step_seconds(model, u, a, repeats, steps)}


def time_batched(N: int, K: int, repeats: int, steps: int, batch: int) -> dict:
    """B cues at once (two matrix-matrix products per step) against the same two GEMMs alone and
    against the machine's GEMM throughput on a square product."""
    from astrogate.models.abstract import AstroGateModel

    model = AstroGateModel(benchmark_patterns(K, N), benchmark_parameters(N))
    rng = np.random.default_rng(2)
    u, a = model.initial_state(model.xi[rng.integers(0, K, size=batch)])
    step = euler_step_seconds(model, u, a, repeats, steps)
    V, H = rng.standard_normal((batch, N)), rng.standard_normal((batch, K))
    xi = model.xi

    def two_gemms():
        V @ xi.T
        H @ xi

    gemms = median_seconds(two_gemms, repeats, warmup=2)
    flops = 4.0 * batch * N * K  # two products of B x N x K multiply-adds
    return {"seconds_per_step": step / batch, "batch_seconds_per_step": step, "gemm_seconds": gemms,
            "step_flops_per_second": flops / step, "gemm_flops_per_second": flops / gemms,
            "peak_gemm_flops_per_second": gemm_peak(repeats),
            "trials_per_second": batch / (step * TRIAL_MS / DT_MS)}


def gemm_peak(repeats: int, n: int = 2048) -> float:
    """The machine's float64 matrix-product throughput (flop/s), a square n x n product."""
    rng = np.random.default_rng(3)
    A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    return 2.0 * n**3 / median_seconds(lambda: A @ B, repeats, warmup=1)


def _naam_step_timer(N: int, K: int):
    """The NAAM baseline on one cue (models/baselines.py::naam_stepper: K random +-1 patterns, pattern 0 with
    10 % of its entries flipped as the cue): each call is one forward-Euler step of the N neurons, the N x N
    astrocytic processes and the N x N synapses, O(K N^2). The `naam` rows time these calls."""
    from astrogate.models.baselines import naam_stepper

    return naam_stepper(N, K)


def time_naam(N: int, K: int, repeats: int) -> dict:
    """Median seconds per NAAM step, calls batched to >= 20 ms as for the limit (one step lasts longer from N of
    a few hundred on), with BLAS on all cores and on one core; the faster counts (on a shared machine the
    all-core products wait for busy cores: up to 2x slower at N = 1000 here). The stepper's state moves on
    from call to call, as in a retrieval."""
    from threadpoolctl import threadpool_limits

    step = _naam_step_timer(N, K)
    all_cores = median_seconds(step, repeats)
    with threadpool_limits(limits=1, user_api="blas"):
        one_core = median_seconds(step, repeats)
    return {"seconds_per_step": min(one_core, all_cores), "one_core": one_core, "all_cores": all_cores}


def naam_step_estimate(N: int, K: int, measured_steps: list[tuple[int, int, float]]) -> float:
    """An upper estimate of NAAM's seconds per step at (N, K) from measured steps (N_r, K_r, seconds), or
    NAAM_REFERENCE_STEP before any: a step costs N^2 (a + b K), so t(N, K) <= t_r (N / N_r)^2 max(1, K / K_r);
    the smallest of these bounds."""
    return min(t * (N / n) ** 2 * max(1.0, K / k) for n, k, t in (measured_steps or [NAAM_REFERENCE_STEP]))


def naam_calls(repeats: int) -> int:
    """Steps of one NAAM measurement once a step lasts >= 20 ms: building the state (about one step), then
    on all cores and on one core each the warm-up call, the call that sizes the batches and one per repeat."""
    return 1 + 2 * (repeats + 2)
