"""The speed benchmark (issue 8): every simulator of the model against the two-mat-vec limit.

One step of the model is, at its core, two products of the K x N pattern matrix with a vector
(overlaps m = xi v / N, then the gated input xi^T h). The limit is those two products alone, timed with
NumPy/BLAS on float64 arrays of the same size (and with CuPy or PyTorch on a GPU, where one is present).
Each simulator is timed per step on the same sizes and reported as a ratio to that limit.

Every measurement runs in a fresh process, so that its peak resident memory (ru_maxrss) is its own;
a standalone binary's peak is read from /usr/bin/time. Times are medians of repeats after a warm-up.
"""

from __future__ import annotations

import csv
import math
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from astrogate.errors import InputError

DT_MS = 0.1  # MODEL.md's Brian2 clock: one simulated second is 10^4 steps
STEPS_PER_SECOND = int(round(1000.0 / DT_MS))
# the builder's default order of the overlap synapses (by neuron: no chain of additions into one m_mu;
# docs/speed_notes.md); the benchmark also times the old order, by pattern, at the target size
LAYOUT = "by_neuron"
TRIAL_MS = 500.0  # a retrieval trial, as `astrogate recall` runs it by default
# bytes per synapse of a factorised gating Synapses: the weight and the int32 pre and post indices
INDEX_BYTES = 4 + 4
# rough peak bytes per N*K of each kind of measurement, used only to refuse sizes that would not fit
# (measured at N K = 10^7: Brian2 runtime peaked at 88 B per N K, the cpp_standalone binary at 46)
EST_BYTES_PER_NK = {"numpy": 24, "brian2": 100}
# NAAM (models/baselines.py) holds N x N processes and synapses per cue and N x N temporaries in a step, and
# K x N patterns and contraction intermediates: peaks above the interpreter measured 41 to 51 bytes per N^2 at
# N = 1000 to 4000, K = 100 to 300, and 120 MB at 1000 x 3000, 273 MB at 1000 x 10^4 (about 24 per N K more)
EST_NAAM_BYTES = {"per_N2": 56, "per_NK": 28}
# NAAM's seconds per step at N = 1000, K = 100 on this project's machine (2 shared cores: 0.064 to 0.112 s in
# four measurements, the slowest kept); estimates the first NAAM size of a run, the run's own NAAM rows the later
NAAM_REFERENCE_STEP = (1000, 100, 0.11)
# beta = 20 N, capped where the Brian2 network's shifted softmax would overflow (N = 10^5 at dt = 0.1 ms);
# the cost of a step does not depend on beta
BETA_CAP = 1e5

SIMULATORS = ("numpy", "batched", "runtime", "cpp", "cuda", "gpu_limit", "naam")
CSV_COLUMNS = ("simulator", "N", "K", "seconds_per_step", "seconds_per_simulated_second", "ratio_to_limit",
               "build_seconds", "compile_seconds", "peak_rss_mb", "synaptic_mb", "threads", "weight_dtype",
               "trials_per_second", "fraction_of_gemm_peak", "status", "note")


@dataclass
class SpeedConfig:
    sizes: list[tuple[int, int]]  # (N, K)
    simulators: tuple[str, ...] = SIMULATORS
    repeats: int = 5
    numpy_work: float = 5e8  # steps x N K of one timed NumPy sample (at least 3 steps, at most 50)
    runtime_steps: tuple[int, int] = (5, 25)  # two durations, differenced (the longer one is grown to ~1 s)
    standalone_work: float = 1e9  # steps x N K of one standalone run (~a few seconds here)
    batch: int = 128
    memory_cap_gb: float = 8.0
    # a NAAM size whose measurement (warm-up and repeats) is estimated to take longer is reported, not run
    naam_time_cap_s: float = 300.0
    # cpp_standalone variants beyond the base one (CppVariant(): 1 thread, float64, by neuron, factorised),
    # as CppVariant -> the sizes they run at
    cpp_variant_sizes: dict = field(default_factory=dict)
    build_root: str | None = None

    @property
    def memory_cap_bytes(self) -> float:
        return self.memory_cap_gb * 2**30


@dataclass(frozen=True)
class CppVariant:
    """One cpp_standalone build of the benchmark's network."""
    threads: int = 1  # OpenMP threads (1: built without OpenMP, Brian2's default)
    weight_dtype: str = "float64"  # storage of the factorised gating weights
    layout: str = LAYOUT  # order of the overlap synapses
    gating: str = "factorised"  # or "wired": +-1 patterns as the wiring, no weights

    @property
    def name(self) -> str:
        return (f"cpp_standalone_{self.threads}thread{'s' if self.threads > 1 else ''}"
                + ("_float32" if self.weight_dtype == "float32" else "")
                + ("" if self.layout == LAYOUT else f"_{self.layout}")
                + ("_wired" if self.gating == "wired" else ""))


def full_config() -> SpeedConfig:
    sizes = [(N, K) for N in (10**3, 10**4, 10**5) for K in (10**2, 10**3, 10**4)]
    target = [(10**4, 10**3)]
    at_target = [CppVariant(layout="by_pattern"), CppVariant(weight_dtype="float32"),
                 CppVariant(threads=2, weight_dtype="float32")]
    everywhere = [CppVariant(threads=2), CppVariant(gating="wired"), CppVariant(threads=2, gating="wired")]
    return SpeedConfig(sizes=sizes, cpp_variant_sizes={**{v: target for v in at_target},
                                                       **{v: sizes for v in everywhere}})


def quick_config() -> SpeedConfig:
    sizes = [(N, K) for N in (1000, 3000) for K in (100, 300)]
    return SpeedConfig(sizes=sizes, repeats=3, numpy_work=1e8, standalone_work=2e8, batch=32,
                       cpp_variant_sizes={})


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'1000:100,3000:300' -> [(1000, 100), (3000, 300)] (N:K pairs)."""
    sizes = []
    for item in text.split(","):
        try:
            N, K = (int(x) for x in item.split(":"))
        except ValueError:
            raise InputError(f"--sizes: {item!r} is not N:K (for example 1000:100)") from None
        if N < 2 or K < 2:
            raise InputError(f"--sizes: N and K must be at least 2, got {item!r}")
        sizes.append((N, K))
    return sizes


def parse_simulators(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = sorted(set(names) - set(SIMULATORS))
    if unknown or not names:
        raise InputError(f"--simulators: unknown {', '.join(unknown) or '(none given)'}; use {', '.join(SIMULATORS)}")
    return names


# -- timing -------------------------------------------------------------------------------------------

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


def random_patterns(N: int, K: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 2, size=(K, N), dtype=np.int8) * 2 - 1).astype(np.float64)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def benchmark_parameters(N: int):
    from astrogate.models.parameters import Parameters

    return Parameters(dt=DT_MS, beta=min(Parameters().beta_for(N), BETA_CAP))


# -- measurements; each runs in its own process (see measure()) -----------------------------------------

def time_matvec_limit(N: int, K: int, repeats: int) -> dict:
    """The two products of a step alone: xi @ v (K) and xi.T @ h (N), float64, BLAS on one core and on
    all cores; the faster of the two is the limit (on a shared machine either may win)."""
    from threadpoolctl import threadpool_limits

    xi = random_patterns(N, K)
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

    model = AstroGateModel(random_patterns(N, K), benchmark_parameters(N))
    u, a = model.initial_state(model.xi[0])
    return {"seconds_per_step": euler_step_seconds(model, u, a, repeats, steps)}


def time_batched(N: int, K: int, repeats: int, steps: int, batch: int) -> dict:
    """B cues at once (two matrix-matrix products per step) against the same two GEMMs alone and
    against the machine's GEMM throughput on a square product."""
    from astrogate.models.abstract import AstroGateModel

    model = AstroGateModel(random_patterns(N, K), benchmark_parameters(N))
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


def time_brian2(N: int, K: int, repeats: int, device: str, steps, threads: int = 1,
                weight_dtype: str = "float64", layout: str = LAYOUT, build_root: str | None = None,
                gating: str = "factorised") -> dict:
    """The factorised Brian2 network (without its Lyapunov monitors, O(N + K) per step and more code to
    compile) per step: runtime/cython by differencing two run lengths; cpp_standalone and cuda_standalone
    (untested here: no GPU was lent) by the binary's own timer around the simulation loop, which leaves out
    loading the arrays."""
    import brian2 as b2

    from astrogate.network import builder, devices

    xi = random_patterns(N, K)
    params = benchmark_parameters(N).resolved(N)
    dtype = None if weight_dtype == "float64" else np.dtype(weight_dtype).type
    u0 = params.cue_scale * xi[0]
    if device == "runtime":
        n_short, n_long = steps
        start = time.perf_counter()
        devices.activate(devices.DeviceChoice("runtime", "cython"), DT_MS)
        handles = builder.build_network(xi, params, gating, record_every=n_long * DT_MS, monitor_energy=False,
                                        weight_dtype=dtype, overlap_layout=layout)
        builder.apply_state(builder.state_values(handles, xi, u0))
        built = time.perf_counter() - start
        start = time.perf_counter()
        handles.net.run(0 * b2.ms)  # code generation and Cython compilation (cached across processes)
        compiled = time.perf_counter() - start

        def seconds(n):
            start = time.perf_counter()
            handles.net.run(n * DT_MS * b2.ms)
            return time.perf_counter() - start

        # a warm-up pair, then a long run sized so that the difference lasts about a second
        rough = max(seconds(n_long) - seconds(n_short), 1e-6) / (n_long - n_short)
        n_long = n_short + max(n_long - n_short, int(1.0 / rough))
        differences = [(seconds(n_long) - seconds(n_short)) / (n_long - n_short) for _ in range(repeats)]
        return {"seconds_per_step": statistics.median(differences), "build_seconds": built,
                "compile_seconds": compiled}

    n_steps = steps
    start = time.perf_counter()
    build_dir = devices.activate(devices.DeviceChoice(device, build_root=Path(build_root) if build_root else None,
                                                      threads=threads), DT_MS)
    b2.prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{os.cpu_count()}"]
    time_binary = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if time_binary:  # the binary's own peak resident memory, written next to it
        b2.prefs.devices.cpp_standalone.run_cmd_unix = [time_binary, "-f", "%M", "-o", "peak_rss_kb.txt", "./main"]
    handles = builder.build_network(xi, params, gating, record_every=n_steps * DT_MS, monitor_energy=False,
                                    weight_dtype=dtype, overlap_layout=layout)
    builder.apply_state(builder.state_values(handles, xi, u0))
    handles.net.run(n_steps * DT_MS * b2.ms)
    try:
        b2.device.build(directory=str(build_dir), compile=True, run=False, with_output=False)
        built = time.perf_counter() - start
        compiled = b2.device.timers["compile"]["make"]
        loop_seconds, binary_peaks = [], []
        for run in range(max(1, repeats)):
            b2.device.run(directory=str(build_dir), with_output=False, results_directory=f"results_{run}")
            loop_seconds.append(b2.device._last_run_time)
            peak_file = build_dir / "peak_rss_kb.txt"
            if peak_file.exists():
                binary_peaks.append(float(peak_file.read_text().split()[-1]) / 1024.0)
        g = np.asarray(handles.astrocytes.g[:])
        if not np.all(np.isfinite(g)) or abs(g.sum() - 1.0) > 1e-6:
            raise RuntimeError(f"{device} N={N} K={K}: gains off the simplex (sum {g.sum()})")
    finally:
        if build_root is None:
            shutil.rmtree(build_dir, ignore_errors=True)
    return {"seconds_per_step": statistics.median(loop_seconds) / n_steps, "build_seconds": built - compiled,
            "compile_seconds": compiled, "binary_peak_rss_mb": max(binary_peaks) if binary_peaks else None}


def time_gpu_limit(N: int, K: int, repeats: int) -> dict:
    """The two products on the GPU (CuPy, else PyTorch), synchronised per call."""
    try:
        import cupy as cp

        xi = cp.asarray(random_patterns(N, K))
        v, h = cp.ones(N), cp.ones(K)

        def two_products():
            xi @ v
            xi.T @ h
            cp.cuda.Device().synchronize()
    except ImportError:
        import torch

        xi = torch.as_tensor(random_patterns(N, K), device="cuda")
        v = torch.ones(N, dtype=torch.float64, device="cuda")
        h = torch.ones(K, dtype=torch.float64, device="cuda")

        def two_products():
            xi @ v
            xi.T @ h
            torch.cuda.synchronize()

    return {"seconds_per_step": median_seconds(two_products, repeats, warmup=3)}


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


def _in_process(fn_name: str, kwargs: dict) -> dict:
    result = globals()[fn_name](**kwargs)
    result["process_peak_rss_mb"] = peak_rss_mb()
    return result


def measure(fn_name: str, **kwargs) -> dict:
    """Run one measurement in a fresh process; failures become a status, never a lost row."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        try:
            return pool.submit(_in_process, fn_name, kwargs).result()
        except Exception as exc:  # a failed build or an out-of-memory child must not end the benchmark
            first_line = (str(exc).strip().splitlines() or [""])[0]
            return {"status": f"failed: {type(exc).__name__}: {first_line}"[:300]}


# -- the benchmark ---------------------------------------------------------------------------------------

def estimated_bytes(kind: str, N: int, K: int) -> float:
    """Rough peak bytes of one measurement, used only to refuse sizes that would not fit."""
    if kind == "naam":
        return EST_NAAM_BYTES["per_N2"] * N**2 + EST_NAAM_BYTES["per_NK"] * N * K
    return EST_BYTES_PER_NK[kind] * N * K


def synaptic_bytes(N: int, K: int, weight_bytes: int = 8, gating: str = "factorised") -> int:
    """Both gating Synapses (neurons -> astrocytes, astrocytes -> neurons): weight + indices per synapse;
    wired gating: indices only, on the +1 entries (half of the N K entries of random +-1 patterns)."""
    if gating == "wired":
        return 2 * (N * K // 2) * INDEX_BYTES
    return 2 * N * K * (weight_bytes + INDEX_BYTES)


def gpu_present() -> float | None:
    from astrogate.network.cuda import detect_compute_capability

    return detect_compute_capability()


def machine_info() -> dict:
    info = {"machine": platform.machine(), "processor": _cpu_name(), "cores": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(), "numpy": np.__version__}
    try:
        import brian2

        info["brian2"] = brian2.__version__
    except ImportError:
        pass
    capability = gpu_present()
    info["gpu"] = f"compute capability {capability}" if capability else "none"
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _row(simulator, N, K, **values) -> dict:
    row = {column: "" for column in CSV_COLUMNS}
    row.update(simulator=simulator, N=N, K=K, **values)
    return row


def run_speed_benchmark(config: SpeedConfig, out_dir: str | Path, log=print) -> dict:
    """Measure everything of `config`, write OUT/speed.csv, OUT/speed.json and OUT/speed.png."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {str(out)!r}: {exc.strerror}") from None
    sims = set(config.simulators)
    capability = gpu_present() if ({"cuda", "gpu_limit"} & sims) else None
    rows, batched = [], {}
    cap = config.memory_cap_bytes
    build_root = config.build_root or tempfile.mkdtemp(prefix="astrogate-speed-")
    started = time.perf_counter()

    def add(row):
        rows.append(row)
        write_csv(rows, out / "speed.csv")  # after every row: a run stopped part-way keeps what it measured
        what = f"{row['simulator']:<28} N={row['N']:<7} K={row['K']:<6}"
        if row["seconds_per_step"] != "":
            log(f"{what} {row['seconds_per_step'] * 1e6:12.1f} us/step"
                + (f"  build {row['build_seconds']:.1f} s, compile {row['compile_seconds']:.1f} s"
                   if row["compile_seconds"] != "" else "")
                + (f"  peak {row['peak_rss_mb']:.0f} MB" if row["peak_rss_mb"] != "" else ""))
        else:
            log(f"{what} {row['status']}")

    def too_big(kind, N, K):
        need = estimated_bytes(kind, N, K)
        if need > cap:
            return (f"not measured: estimated {need / 2**30:.1f} GB > memory cap {config.memory_cap_gb:g} GB "
                    f"(--memory-cap-gb)")
        return None

    naam_steps = []  # (N, K, seconds per step) of the NAAM rows measured so far

    def too_slow_naam(N, K):
        step = naam_step_estimate(N, K, naam_steps)
        total = step * naam_calls(config.repeats)
        if total > config.naam_time_cap_s:
            return (f"not measured: estimated {step:.3g} s per step x {naam_calls(config.repeats)} steps = "
                    f"{total / 60:.1f} min > time cap {config.naam_time_cap_s:g} s (--naam-time-cap-s)")
        return None

    for N, K in config.sizes:
        standalone_steps = int(np.clip(config.standalone_work / (N * K), 100, 5000))
        numpy_steps = int(np.clip(config.numpy_work / (N * K), 3, 50))
        # always measured: every ratio is to it
        skip = too_big("numpy", N, K)
        r = {"status": skip} if skip else measure("time_matvec_limit", N=N, K=K, repeats=config.repeats)
        limit = r.get("seconds_per_step")
        add(_row("matvec_limit", N, K, **_timing(r, limit), weight_dtype="float64",
                 threads=(1 if r["one_core"] <= r["all_cores"] else os.cpu_count()) if limit else "",
                 note=(f"xi @ v and xi.T @ h, NumPy/BLAS: 1 core {r['one_core'] * 1e6:.1f} us, "
                       f"{os.cpu_count()} cores {r['all_cores'] * 1e6:.1f} us") if limit else ""))
        if "numpy" in sims:
            skip = too_big("numpy", N, K)
            r = {"status": skip} if skip else measure("time_numpy_reference", N=N, K=K, repeats=config.repeats,
                                                      steps=numpy_steps)
            add(_row("numpy_reference", N, K, **_timing(r, limit), threads=os.cpu_count(), weight_dtype="float64",
                     note="AstroGateModel forward Euler, one cue"))
        if "batched" in sims:
            skip = too_big("numpy", N, K) or (None if config.batch * (N + K) * 8 * 6 < cap else "not measured: batch too large")
            r = {"status": skip} if skip else measure("time_batched", N=N, K=K, repeats=config.repeats,
                                                      steps=max(2, numpy_steps // 10), batch=config.batch)
            row = _row(f"numpy_batched_B{config.batch}", N, K, **_timing(r, limit), threads=os.cpu_count(),
                       weight_dtype="float64", note="per cue-step; B cues at once")
            if "trials_per_second" in r:
                row["trials_per_second"] = r["trials_per_second"]
                row["fraction_of_gemm_peak"] = r["step_flops_per_second"] / r["peak_gemm_flops_per_second"]
                batched[(N, K)] = {k: v for k, v in r.items() if k != "status"}
            add(row)
        if "runtime" in sims:
            skip = too_big("brian2", N, K)
            r = {"status": skip} if skip else measure("time_brian2", N=N, K=K, repeats=config.repeats,
                                                      device="runtime", steps=config.runtime_steps, layout=LAYOUT)
            add(_row("brian2_runtime_cython", N, K, **_timing(r, limit), threads=1, weight_dtype="float64",
                     synaptic_mb=synaptic_bytes(N, K) / 2**20,
                     note="peak includes the Python interpreter and Brian2"))
        if "cpp" in sims:
            variants = [CppVariant()] + [v for v, sizes in config.cpp_variant_sizes.items() if (N, K) in sizes]
            for v in variants:
                skip = too_big("brian2", N, K)
                r = {"status": skip} if skip else measure(
                    "time_brian2", N=N, K=K, repeats=config.repeats, device="cpp_standalone",
                    steps=standalone_steps, threads=v.threads, weight_dtype=v.weight_dtype, layout=v.layout,
                    build_root=build_root, gating=v.gating)
                timing = _timing(r, limit)
                if r.get("binary_peak_rss_mb") is not None:
                    timing["peak_rss_mb"] = r["binary_peak_rss_mb"]
                add(_row(v.name, N, K, **timing, threads=v.threads, weight_dtype=v.weight_dtype,
                         synaptic_mb=synaptic_bytes(N, K, np.dtype(v.weight_dtype).itemsize, v.gating) / 2**20,
                         note="peak of the binary (/usr/bin/time)" + ("; OpenMP" if v.threads > 1 else "")
                              + ("; wired gating (no weights, +1 entries only)" if v.gating == "wired" else "")))
        if "gpu_limit" in sims:
            r = {"status": "not measured: no GPU"} if capability is None else measure(
                "time_gpu_limit", N=N, K=K, repeats=config.repeats)
            add(_row("gpu_matvec_limit", N, K, **_timing(r, limit), weight_dtype="float64",
                     note="CuPy or PyTorch"))
        if "cuda" in sims:
            # the CUDA project's code generation and nvcc compilation are tested without a GPU (make test-nvcc)
            r = {"status": "not measured: no GPU"} if capability is None else measure(
                "time_brian2", N=N, K=K, repeats=config.repeats, device="cuda_standalone",
                steps=standalone_steps, layout=LAYOUT, build_root=build_root)
            add(_row("cuda_standalone", N, K, **_timing(r, limit), weight_dtype="float64"))
        if "naam" in sims:
            skip = too_big("naam", N, K) or too_slow_naam(N, K)
            r = {"status": skip} if skip else measure("time_naam", N=N, K=K, repeats=config.repeats)
            if r.get("seconds_per_step"):  # the fastest measured steps bound the later sizes' times
                naam_steps.append((N, K, r["seconds_per_step"]))
            fast = r.get("seconds_per_step")
            add(_row("naam", N, K, **_timing(r, limit), weight_dtype="float64",
                     threads=(1 if r["one_core"] <= r["all_cores"] else os.cpu_count()) if fast else "",
                     note=(f"Kozachkov, Slotine & Krotov; one cue; O(N^2 K) per step: 1 core "
                           f"{r['one_core'] * 1e3:.1f} ms, {os.cpu_count()} cores {r['all_cores'] * 1e3:.1f} ms")
                     if fast else "Kozachkov, Slotine & Krotov; one cue; O(N^2 K) per step"))

    exponents = fit_exponents(rows)
    settings = {f.name: getattr(config, f.name) for f in fields(config)}
    settings["cpp_variant_sizes"] = {v.name: sizes for v, sizes in config.cpp_variant_sizes.items()}
    summary = {"machine": machine_info(), "config": _jsonable(settings), "exponents": exponents,
               "naam_exponents": fit_naam_exponents(rows),
               "batched": {f"{N}x{K}": v for (N, K), v in batched.items()},
               "wall_seconds": time.perf_counter() - started}
    write_csv(rows, out / "speed.csv")
    plot_speed(rows, out / "speed.png", exponents, summary["naam_exponents"])
    from astrogate.analysis.io import write_json

    write_json(out / "speed.json", summary)
    if config.build_root is None:
        shutil.rmtree(build_root, ignore_errors=True)
    return {"rows": rows, **summary}


def _timing(result: dict, limit: float | None) -> dict:
    values = {"status": result.get("status", "measured")}
    step = result.get("seconds_per_step")
    if step is not None:
        values["seconds_per_step"] = step
        values["seconds_per_simulated_second"] = step * STEPS_PER_SECOND
        if limit:
            values["ratio_to_limit"] = step / limit
    for key in ("build_seconds", "compile_seconds"):
        if result.get(key) is not None:
            values[key] = result[key]
    if result.get("process_peak_rss_mb") is not None:
        values["peak_rss_mb"] = result["process_peak_rss_mb"]
    return values


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def measured(rows) -> list[dict]:
    return [r for r in rows if r["seconds_per_step"] != ""]


def log_log_slope(points) -> dict | None:
    """Least-squares slope of log y against log x over (x, y) points, or None with fewer than two distinct x."""
    if len({p[0] for p in points}) < 2 or not all(p[1] > 0 for p in points):
        return None
    x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    return {"exponent": float(np.polyfit(x, y, 1)[0]), "points": len(points)}


def fit_exponents(rows, min_nk: int = 10**6) -> dict:
    """Per simulator, the slope of log(time per step) against log(N K): over every measured size, and
    over the sizes with N K >= min_nk, where the O(N K) work outweighs the fixed cost of a step."""
    out = {}
    for sim in dict.fromkeys(r["simulator"] for r in measured(rows)):
        points = [(r["N"] * r["K"], r["seconds_per_step"]) for r in measured(rows) if r["simulator"] == sim]
        fits = {}
        for label, pts in (("all_sizes", points), (f"nk_at_least_{min_nk:g}", [p for p in points if p[0] >= min_nk])):
            fit = log_log_slope(pts)
            if fit:
                fits[label] = fit
        if fits:
            out[sim] = fits
    return out


def fit_naam_exponents(rows) -> dict:
    """NAAM's time per step against N at each fixed K (N^2 K: expected 2) and against K at each fixed N
    (expected 1 where the K N^2 contraction outweighs the O(N^2) elementwise work of a step)."""
    naam = [r for r in measured(rows) if r["simulator"] == "naam"]
    out = {"in_N": {}, "in_K": {}}
    for fixed, free, key in (("K", "N", "in_N"), ("N", "K", "in_K")):
        for value in sorted({r[fixed] for r in naam}):
            fit = log_log_slope([(r[free], r["seconds_per_step"]) for r in naam if r[fixed] == value])
            if fit:
                out[key][f"{fixed}={value}"] = fit
    return out


def write_csv(rows, path: Path) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return path


def plot_speed(rows, path: Path, exponents: dict | None = None, naam_exponents: dict | None = None) -> Path:
    """Time per step against N K, log-log, one line per simulator; NAAM's points also joined at each fixed K
    (dotted: slope 2 in N there, its N^2 K cost)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    for sim in dict.fromkeys(r["simulator"] for r in measured(rows)):
        pts = [(r["N"] * r["K"], r["seconds_per_step"]) for r in measured(rows) if r["simulator"] == sim]
        slope = (exponents or {}).get(sim, {}).get("all_sizes", {}).get("exponent")
        label = sim + (" (per cue)" if sim.startswith("numpy_batched") else "")
        label += f", slope {slope:.2f}" if slope is not None else ""
        if sim == "naam" and naam_exponents:
            for key, name, fixed in (("in_N", "N", "K"), ("in_K", "K", "N")):
                fits = naam_exponents.get(key, {})
                if fits:
                    label += f"; in {name}, {fixed} fixed: " + "/".join(f"{f['exponent']:.2f}" for f in fits.values())
        style = dict(color="black", linewidth=2.5) if sim == "matvec_limit" else {}
        # markers: every size; line: the geometric mean over the sizes with the same N K
        nks = sorted({p[0] for p in pts})
        means = [math.exp(np.mean([math.log(t) for nk_, t in pts if nk_ == nk])) for nk in nks]
        (line,) = ax.plot(nks, means, "-", label=label, **style)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", color=line.get_color())
        if sim == "naam":
            for K in sorted({r["K"] for r in measured(rows) if r["simulator"] == sim}):
                at_K = sorted((r["N"] * r["K"], r["seconds_per_step"]) for r in measured(rows)
                              if r["simulator"] == sim and r["K"] == K)
                if len(at_K) > 1:
                    ax.plot([p[0] for p in at_K], [p[1] for p in at_K], ":", color=line.get_color(), linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N K (pattern matrix entries)")
    ax.set_ylabel("seconds per time step")
    ax.set_title("Time per step; matvec_limit = the two mat-vec products alone")
    ax.grid(True, which="both", alpha=0.3)
    if measured(rows):
        ax.legend(fontsize=7, loc="lower right")  # NAAM, where measured, fills the upper left
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(result: dict) -> str:
    """The ratios to the limit, the batched model's throughput and the fitted exponents, as text."""
    lines = [f"{'simulator':<30}{'N':>8}{'K':>7}{'us/step':>12}{'x limit':>10}{'build s':>9}{'compile s':>10}"
             f"{'peak MB':>9}  status"]
    for r in result["rows"]:
        def fmt(key, scale=1.0, spec=".1f"):
            return format(r[key] * scale, spec) if r[key] != "" else "-"
        lines.append(f"{r['simulator']:<30}{r['N']:>8}{r['K']:>7}{fmt('seconds_per_step', 1e6):>12}"
                     f"{fmt('ratio_to_limit', 1, '.2f'):>10}{fmt('build_seconds'):>9}{fmt('compile_seconds'):>10}"
                     f"{fmt('peak_rss_mb', 1, '.0f'):>9}  {r['status']}")
    for size, b in result["batched"].items():
        lines.append(f"batched abstract model {size}: {b['trials_per_second']:.3g} trials/s "
                     f"({TRIAL_MS:g} ms each), {b['step_flops_per_second'] / 1e9:.2f} GFLOP/s = "
                     f"{b['step_flops_per_second'] / b['peak_gemm_flops_per_second']:.2f} of the machine's GEMM "
                     f"peak ({b['peak_gemm_flops_per_second'] / 1e9:.2f} GFLOP/s), "
                     f"{b['gemm_seconds'] / b['batch_seconds_per_step']:.2f} of its own two GEMMs")
    for sim, fits in result["exponents"].items():
        parts = ", ".join(f"{k}: {v['exponent']:.2f} ({v['points']} sizes)" for k, v in fits.items())
        lines.append(f"exponent of time per step in N K, {sim}: {parts}")
    naam = result.get("naam_exponents", {})
    for key, name, expected in (("in_N", "N", "2"), ("in_K", "K", "1 once the K N^2 products dominate")):
        if naam.get(key):
            parts = ", ".join(f"at {k}: {v['exponent']:.2f} ({v['points']} sizes)" for k, v in naam[key].items())
            lines.append(f"exponent of NAAM's time per step in {name} (expected {expected}): {parts}")
    return "\n".join(lines)
