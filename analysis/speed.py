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

from astrogate.analysis.io import write_csv
from astrogate.analysis.metrics import log_log_slope
from astrogate.analysis.speed_retrieval import QUICK_RETRIEVAL_SIZES, RETRIEVAL_SIZES
from astrogate.errors import InputError
from astrogate.models.checks import MAX_COUNT, comma_list, positive_number, whole_number

DT_MS = 0.1  # the model's Brian2 clock (docs/model.md): one simulated second is 10^4 steps
STEPS_PER_SECOND = int(round(1000.0 / DT_MS))
# the memory's default order of the overlap synapses (by neuron: no chain of additions into one m_mu;
# docs/speed_notes.md); the benchmark also times the old order, by pattern, at the target size
LAYOUT = "by_neuron"
TRIAL_MS = 500.0  # a retrieval trial, as `astrogate recall` runs it by default
# bytes per synapse of a factorised gating Synapses: the weight and the int32 pre and post indices
INDEX_BYTES = 4 + 4
# rough peak bytes per N*K of one Brian2 measurement, used only to refuse sizes that would not fit. A
# standalone measurement is a Python process that builds the project and then runs the binary while it still
# holds its arrays, so its peak is the two together. Measured at N = 10^4, K = 10^3 (N K = 10^7):
# - factorised: Brian2 runtime peaked at 871 MB (88 B per N K, the interpreter's ~150 MB included); for
#   cpp_standalone the Python process at 624 MB and the binary at 462 MB (46 B per N K): at most 114 B per
#   N K together, 98 above the interpreter;
# - wired: the binary at 268 MB (27 to 30 B per N K at N K = 10^6 and 10^7 in docs/figures/speed.csv), but the
#   Python process at 994 MB, 843 MB of it held while the binary runs: Brian2 keeps the connect(i, j) arrays
#   of the two wired Synapses in its standalone array cache and as static arrays, and the memory's index
#   arrays are int64; 1111 MB together, 116 B per N K (100 above the interpreter).
# So wired gating needs a little more memory than factorised in the benchmark, not less (the binary alone
# needs less). With margins of about 10 and 20 % over the figures above the interpreter:
EST_BYTES_PER_NK = {"numpy": 24, "brian2": 110, "brian2_wired": 120}
# cuda_standalone, host: the same Python process, and a binary that creates the synapses on the host as
# cpp_standalone does (the same host arrays, copied to the GPU afterwards) and then looks for repeated (pre, post)
# pairs with a std::map holding every synapse of the Synapses just created (brian2cuda's
# templates/synapses_create_*.cu; cpp_standalone builds that map only for a multisynaptic index): a
# red-black tree node of about 48 bytes per synapse of the larger gating Synapses (N K factorised, N K / 2
# wired). So the host needs more for cuda_standalone than for cpp_standalone, not less. Not measured: no GPU.
CUDA_MAP_BYTES_PER_SYNAPSE = 48
# cuda_standalone, GPU: per synapse the weight (8 bytes, factorised only) and the int32 pre and post indices,
# 2 N K synapses factorised (32 B per N K), N K wired (8 B per N K); x 1.5 for brian2cuda's per-neuron counts
# and allocation granularity, plus 1 GiB for the CUDA context, the kernels and the device heap (128 MB).
# Checked against the GPU's own memory (nvidia-smi), not against --memory-cap-gb. Not measured: no GPU.
EST_GPU_BYTES_PER_NK = {"factorised": 48, "wired": 12}
EST_GPU_FIXED_BYTES = 2**30
DEFAULT_GPU_MEMORY_BYTES = 80e9  # an H100's, where nvidia-smi does not say
# NAAM (models/baselines.py, the authors' dynamics) holds N x N synapses and processes per cue and N x N
# temporaries in a step (g, psi, dS, dP: NeuronAstrocyteMemory.bytes_per_cue), and K x N patterns and two N x K
# contraction intermediates: its peak above the interpreter measured 53 bytes per N^2 at N = 2000, K = 100
# (the reconstruction it replaced: 41 to 51 at N = 1000 to 4000)
EST_NAAM_BYTES = {"per_N2": 56, "per_NK": 28}
# NAAM's seconds per step at N = 1000, K = 100 on this project's machine (2 shared cores: 0.064 s for the
# authors' dynamics, 0.064 to 0.112 s for the reconstruction before it; the slowest kept as an upper bound);
# estimates the first NAAM size of a run, the run's own NAAM rows the later ones
NAAM_REFERENCE_STEP = (1000, 100, 0.11)
# beta = 20 N, capped where the Brian2 network's shifted softmax would overflow (N = 10^5 at dt = 0.1 ms);
# the cost of a step does not depend on beta
BETA_CAP = 1e5

# "retrieval": time per retrieved cue against modern Hopfield (analysis/speed_retrieval.py, its own sizes)
SIMULATORS = ("numpy", "batched", "runtime", "cpp", "cuda", "gpu_limit", "naam", "retrieval")
CSV_COLUMNS = ("simulator", "N", "K", "seconds_per_step", "seconds_per_simulated_second", "ratio_to_limit",
               "build_seconds", "compile_seconds", "peak_rss_mb", "gpu_memory_mb", "synaptic_mb", "threads",
               "weight_dtype", "trials_per_second", "fraction_of_gemm_peak", "status", "note")
CPP, CUDA = "cpp_standalone", "cuda_standalone"
# the size of issue 8's targets
TARGET_SIZE = (10**4, 10**3)


@dataclass(frozen=True)
class StandaloneVariant:
    """One standalone build of the benchmark's network, on cpp_standalone or cuda_standalone."""
    device: str = CPP
    threads: int = 1  # OpenMP threads, cpp_standalone only (1: built without OpenMP, Brian2's default)
    weight_dtype: str = "float64"  # storage of the factorised gating weights
    layout: str = LAYOUT  # order of the overlap synapses
    gating: str = "factorised"  # or "wired": +-1 patterns as the wiring, no weights

    def __post_init__(self):
        if self.device not in (CPP, CUDA):
            raise InputError(f"a standalone variant is on {CPP} or {CUDA}, not {self.device!r}")
        if self.device == CUDA and self.threads != 1:
            raise InputError("threads (OpenMP) apply to cpp_standalone only")

    @property
    def simulator(self) -> str:
        return "cpp" if self.device == CPP else "cuda"

    @property
    def name(self) -> str:
        base = CUDA if self.device == CUDA else f"{CPP}_{self.threads}thread{'s' if self.threads > 1 else ''}"
        return (base + ("_float32" if self.weight_dtype == "float32" else "")
                + ("" if self.layout == LAYOUT else f"_{self.layout}")
                + ("_wired" if self.gating == "wired" else ""))


def cuda_variant(**fields_) -> StandaloneVariant:
    return StandaloneVariant(device=CUDA, **fields_)


# the variant each device runs at every size (1 thread, float64, by neuron, factorised)
BASE_VARIANTS = {"cpp": StandaloneVariant(), "cuda": cuda_variant()}


@dataclass
class SpeedConfig:
    sizes: list[tuple[int, int]]  # (N, K)
    simulators: tuple[str, ...] = SIMULATORS
    repeats: int = 5
    numpy_work: float = 5e8  # steps x N K of one timed NumPy sample (at least 3 steps, at most 50)
    runtime_steps: tuple[int, int] = (5, 25)  # two durations, differenced (the longer one is grown to ~1 s)
    standalone_work: float = 1e9  # steps x N K of one cpp_standalone run (~a few seconds here)
    # steps x N K of one cuda_standalone run: a GPU step is ~100x shorter; at least 1000 steps, so that the
    # loop (timed between two cudaDeviceSynchronize) outweighs launching and synchronising
    cuda_work: float = 1e10
    batch: int = 128
    memory_cap_gb: float = 8.0
    # a NAAM size whose measurement (warm-up and repeats) is estimated to take longer is reported, not run
    naam_time_cap_s: float = 300.0
    # standalone variants beyond each device's base one (BASE_VARIANTS), as StandaloneVariant -> the sizes
    # they run at; each runs where its device's simulator ("cpp", "cuda") is selected
    variant_sizes: dict = field(default_factory=dict)
    build_root: str | None = None
    retrieval_sizes: tuple = RETRIEVAL_SIZES  # (N, K) of the retrieval rows

    def __post_init__(self):
        # the caps turn measurements off: NaN would compare False and silently turn the cap off instead
        for name in ("memory_cap_gb", "naam_time_cap_s", "numpy_work", "standalone_work", "cuda_work"):
            positive_number(getattr(self, name), name)
        for name in ("repeats", "batch"):
            whole_number(getattr(self, name), name, minimum=1)
        if not self.sizes or not self.simulators:
            raise InputError("a speed benchmark needs at least one size and one simulator")
        self.sizes = list(dict.fromkeys(tuple(size) for size in self.sizes))

    @property
    def memory_cap_bytes(self) -> float:
        return self.memory_cap_gb * 2**30

    def variants(self, simulator: str, size: tuple[int, int]) -> list[StandaloneVariant]:
        """The builds of one device ("cpp" or "cuda") at one size: its base variant, then the others."""
        return [BASE_VARIANTS[simulator]] + [v for v, sizes in self.variant_sizes.items()
                                             if v.simulator == simulator and tuple(size) in map(tuple, sizes)]


def full_config() -> SpeedConfig:
    sizes = [(N, K) for N in (10**3, 10**4, 10**5) for K in (10**2, 10**3, 10**4)]
    target = [TARGET_SIZE]
    at_target = [StandaloneVariant(layout="by_pattern"), StandaloneVariant(weight_dtype="float32"),
                 StandaloneVariant(threads=2, weight_dtype="float32")]
    everywhere = [StandaloneVariant(threads=2), StandaloneVariant(gating="wired"),
                  StandaloneVariant(threads=2, gating="wired"), cuda_variant(gating="wired")]
    return SpeedConfig(sizes=sizes, variant_sizes={**{v: target for v in at_target},
                                                   **{v: sizes for v in everywhere}})


def targets_config() -> SpeedConfig:
    """Issue 8's target size alone, with every row its targets are computed from (targets()): the CPU and
    GPU limits, the batched model, cpp_standalone on 1 and 2 threads with factorised and wired gating, and
    cuda_standalone with both gatings; 3 repeats. For a machine lent for minutes (a GPU one)."""
    target = [TARGET_SIZE]
    variants = [StandaloneVariant(threads=2), StandaloneVariant(gating="wired"),
                StandaloneVariant(threads=2, gating="wired"), cuda_variant(gating="wired")]
    return SpeedConfig(sizes=target, simulators=("numpy", "batched", "cpp", "cuda", "gpu_limit"), repeats=3,
                       variant_sizes={v: target for v in variants})


def quick_config() -> SpeedConfig:
    sizes = [(N, K) for N in (1000, 3000) for K in (100, 300)]
    return SpeedConfig(sizes=sizes, repeats=3, numpy_work=1e8, standalone_work=2e8, cuda_work=2e9, batch=32,
                       retrieval_sizes=QUICK_RETRIEVAL_SIZES)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'1000:100,3000:300' -> [(1000, 100), (3000, 300)] (N:K pairs), each size once (in the order given)."""
    sizes = []
    for item in comma_list(text, "--sizes"):
        try:
            N, K = (int(x) for x in item.split(":"))
        except ValueError:
            raise InputError(f"--sizes: {item!r} is not N:K (for example 1000:100)") from None
        if not (2 <= N <= MAX_COUNT and 2 <= K <= MAX_COUNT):
            raise InputError(f"--sizes: N and K must be whole numbers from 2 to {MAX_COUNT}, got {item!r}")
        sizes.append((N, K))
    return list(dict.fromkeys(sizes))


def parse_simulators(text: str) -> tuple[str, ...]:
    names = tuple(comma_list(text, "--simulators"))
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


def benchmark_patterns(K: int, N: int, seed: int = 0) -> np.ndarray:
    """K x N fair +-1 patterns drawn as int8 (less temporary memory than models.patterns.random_patterns,
    which matters at N K = 10^8); the timings do not depend on the values."""
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


def time_brian2(N: int, K: int, repeats: int, device: str, steps, threads: int = 1,
                weight_dtype: str = "float64", layout: str = LAYOUT, build_root: str | None = None,
                gating: str = "factorised") -> dict:
    """The Brian2 network (factorised or wired gating, without its Lyapunov monitors, O(N + K) per step and
    more code to compile) per step: runtime/cython by differencing two run lengths; cpp_standalone by the
    binary's own timer around the simulation loop, which leaves out loading the arrays; cuda_standalone by a
    timer of ours around the loop between two cudaDeviceSynchronize (cuda_instrumentation())."""
    if device == "runtime":
        return _time_runtime(N, K, repeats, steps, weight_dtype, layout, gating)
    variant = StandaloneVariant(device=device, threads=threads, weight_dtype=weight_dtype, layout=layout,
                                gating=gating)
    return _time_standalone(N, K, repeats, variant, steps, build_root)


def _benchmark_network(N: int, K: int, weight_dtype: str, layout: str, gating: str, record_steps: int):
    """The benchmark's memory (the library's AstrocyteGatedMemory, without its Lyapunov sums) on the active
    device, its state applied, in a Network; returns (memory, network)."""
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    xi = benchmark_patterns(K, N)
    params = benchmark_parameters(N).resolved(N)
    dtype = None if weight_dtype == "float64" else np.dtype(weight_dtype).type
    memory = AstrocyteGatedMemory(xi, params, gating=gating, record_every=record_steps * DT_MS, energy=False,
                                  weight_dtype=dtype, overlap_layout=layout)
    memory.set_cue(xi[0])
    return memory, b2.Network(memory)


def _time_runtime(N, K, repeats, steps, weight_dtype, layout, gating) -> dict:
    import brian2 as b2

    from astrogate.network import devices

    n_short, n_long = steps
    start = time.perf_counter()
    devices.activate(devices.DeviceChoice("runtime", "cython"), DT_MS)
    _, net = _benchmark_network(N, K, weight_dtype, layout, gating, n_long)
    built = time.perf_counter() - start
    start = time.perf_counter()
    net.run(0 * b2.ms)  # code generation and Cython compilation (cached across processes)
    compiled = time.perf_counter() - start

    def seconds(n):
        start = time.perf_counter()
        net.run(n * DT_MS * b2.ms)
        return time.perf_counter() - start

    # a warm-up pair, then a long run sized so that the difference lasts about a second
    t_long = seconds(n_long)
    n_long = long_run_steps(t_long, seconds(n_short), n_long, n_short)
    differences = [(seconds(n_long) - seconds(n_short)) / (n_long - n_short) for _ in range(repeats)]
    return {"seconds_per_step": statistics.median(differences), "build_seconds": built, "compile_seconds": compiled}


def long_run_steps(t_long: float, t_short: float, n_long: int, n_short: int, seconds: float = 1.0) -> int:
    """Steps of the long run so that it lasts about `seconds` longer than the short one, from a timed pair.
    On a busy machine the pair's difference can come out near or below zero (a seeming step of nanoseconds
    once asked for 2 x 10^7 steps, hours of runtime); then the long run's time per step, which includes the
    per-run overhead and so bounds a step from above, sizes it instead (shorter, never longer)."""
    difference = t_long - t_short
    per_step = difference / (n_long - n_short) if difference > 0.1 * t_long else t_long / n_long
    return n_short + max(n_long - n_short, int(seconds / max(per_step, 1e-9)))


# written by the instrumented cuda_standalone binary into each results folder (cuda_instrumentation())
CUDA_RUN_FILE = "astrogate_cuda_run.txt"


def cuda_instrumentation(gpu_id: int = 0) -> dict[str, str]:
    """C++ for brian2cuda's main.cu slots (device.insert_code), as {slot: code}.

    brian2cuda's own loop timer (Network::_last_run_time, which `device._last_run_time` reads) stops without
    synchronising the GPU: kernel launches are asynchronous, so it measures how fast the host queues the
    kernels, not how long the GPU takes (the final cudaDeviceSynchronize comes after the timer). This timer
    starts and stops after a cudaDeviceSynchronize. The GPU memory in use (cudaMemGetInfo, the whole GPU) is
    read once the context exists, before the project's arrays, and again after the loop, when everything the
    project allocates is still allocated: the difference is the project's GPU memory."""
    return {
        "before_start": "\n".join([
            "// astrogate speed benchmark: the GPU memory in use before the project's arrays (CUDA context)",
            f"CUDA_SAFE_CALL(cudaSetDevice({int(gpu_id)}));",
            "CUDA_SAFE_CALL(cudaFree(0));",
            "size_t _astrogate_free = 0, _astrogate_total = 0;",
            "CUDA_SAFE_CALL(cudaMemGetInfo(&_astrogate_free, &_astrogate_total));",
            "const size_t _astrogate_context_used = _astrogate_total - _astrogate_free;",
            "struct timespec _astrogate_start, _astrogate_end;",
        ]),
        "before_network_run": "\n".join([
            "// astrogate speed benchmark: the loop's timer starts on an idle GPU",
            "CUDA_SAFE_CALL(cudaDeviceSynchronize());",
            "clock_gettime(CLOCK_MONOTONIC, &_astrogate_start);",
        ]),
        "after_network_run": "\n".join([
            "// astrogate speed benchmark: ... and stops once the GPU has finished the loop's kernels",
            "CUDA_SAFE_CALL(cudaDeviceSynchronize());",
            "clock_gettime(CLOCK_MONOTONIC, &_astrogate_end);",
            "CUDA_SAFE_CALL(cudaMemGetInfo(&_astrogate_free, &_astrogate_total));",
            "{",
            f'    std::ofstream _astrogate_out((brian::results_dir + "{CUDA_RUN_FILE}").c_str());',
            "    _astrogate_out.precision(17);",
            '    _astrogate_out << "loop_seconds " << (double)(_astrogate_end.tv_sec - _astrogate_start.tv_sec)'
            ' + 1e-9 * (double)(_astrogate_end.tv_nsec - _astrogate_start.tv_nsec) << std::endl;',
            '    _astrogate_out << "brian2cuda_loop_seconds " << Network::_last_run_time << std::endl;',
            '    _astrogate_out << "gpu_used_bytes_context " << _astrogate_context_used << std::endl;',
            '    _astrogate_out << "gpu_used_bytes_after_loop " << (_astrogate_total - _astrogate_free) << std::endl;',
            '    _astrogate_out << "gpu_total_bytes " << _astrogate_total << std::endl;',
            "}",
        ]),
    }


def read_cuda_run_file(path: str | Path) -> dict[str, float]:
    """CUDA_RUN_FILE as {key: value}: loop_seconds (synchronised), brian2cuda_loop_seconds (brian2cuda's
    unsynchronised timer), gpu_used_bytes_context, gpu_used_bytes_after_loop, gpu_total_bytes."""
    values = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            values[parts[0]] = float(parts[1])
    missing = {"loop_seconds", "gpu_used_bytes_context", "gpu_used_bytes_after_loop"} - set(values)
    if missing:
        raise RuntimeError(f"{path}: no {', '.join(sorted(missing))}")
    return values


def standalone_steps(variant: StandaloneVariant, N: int, K: int, config: SpeedConfig) -> int:
    """Steps of one run of a standalone binary: about config's work per run, within bounds."""
    if variant.device == CUDA:
        return int(np.clip(config.cuda_work / (N * K), 1000, 20000))
    return int(np.clip(config.standalone_work / (N * K), 100, 5000))


def build_standalone_project(N: int, K: int, variant: StandaloneVariant, n_steps: int,
                             build_root: str | None = None, compile: bool = True) -> tuple:
    """Generate (and compile) the benchmark's project for one variant in a fresh folder under build_root;
    returns (handles, build folder, seconds to build including compilation, seconds of `make`)."""
    import brian2 as b2

    from astrogate.network import devices

    start = time.perf_counter()
    build_dir = devices.activate(devices.DeviceChoice(variant.device, threads=variant.threads,
                                                      build_root=Path(build_root) if build_root else None), DT_MS)
    b2.prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{os.cpu_count()}"]
    time_binary = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if time_binary:  # the binary's own peak resident memory (host), written next to it
        b2.prefs.devices.cpp_standalone.run_cmd_unix = [time_binary, "-f", "%M", "-o", "peak_rss_kb.txt", "./main"]
    if variant.device == CUDA:
        # kernels loaded with the context, before the timed loop, not at their first launch
        b2.prefs.devices.cpp_standalone.run_environment_variables = {"CUDA_MODULE_LOADING": "EAGER"}
        gpu_id = b2.prefs.devices.cuda_standalone.cuda_backend.gpu_id
        for slot, code in cuda_instrumentation(gpu_id).items():
            b2.device.insert_code(slot, code)
    handles, net = _benchmark_network(N, K, variant.weight_dtype, variant.layout, variant.gating, n_steps)
    net.run(n_steps * DT_MS * b2.ms)
    b2.device.build(directory=str(build_dir), compile=compile, run=False, with_output=False)
    compiled = b2.device.timers["compile"].get("make", 0.0) if compile else 0.0
    return handles, build_dir, time.perf_counter() - start, compiled


def _time_standalone(N: int, K: int, repeats: int, variant: StandaloneVariant, n_steps: int,
                     build_root: str | None) -> dict:
    import brian2 as b2

    handles, build_dir, built, compiled = build_standalone_project(N, K, variant, n_steps, build_root)
    try:
        loop_seconds, binary_peaks, cuda_runs = [], [], []
        previous = None
        for run in range(max(1, repeats)):
            results = f"results_{run}"
            b2.device.run(directory=str(build_dir), with_output=False, results_directory=results)
            if variant.device == CUDA:
                cuda_runs.append(read_cuda_run_file(build_dir / results / CUDA_RUN_FILE))
                loop_seconds.append(cuda_runs[-1]["loop_seconds"])
            else:
                loop_seconds.append(b2.device._last_run_time)
            peak_file = build_dir / "peak_rss_kb.txt"
            if peak_file.exists():
                binary_peaks.append(float(peak_file.read_text().split()[-1]) / 1024.0)
            if previous is not None:  # every results folder holds all synapses' arrays: keep the last only
                shutil.rmtree(build_dir / previous, ignore_errors=True)
            previous = results
        g = np.asarray(handles.astrocytes.g[:])
        if not np.all(np.isfinite(g)) or abs(g.sum() - 1.0) > 1e-6:
            raise RuntimeError(f"{variant.device} N={N} K={K}: gains off the simplex (sum {g.sum()})")
    finally:
        if build_root is None:
            shutil.rmtree(build_dir, ignore_errors=True)
    result = {"seconds_per_step": statistics.median(loop_seconds) / n_steps, "build_seconds": built - compiled,
              "compile_seconds": compiled, "binary_peak_rss_mb": max(binary_peaks) if binary_peaks else None,
              "steps": n_steps}
    if cuda_runs:
        result.update(cuda_summary(cuda_runs, n_steps))
    return result


def cuda_summary(runs: list[dict], n_steps: int) -> dict:
    """The GPU memory of the project (the most over the runs, the CUDA context left out) and brian2cuda's own
    (unsynchronised) loop timer, from read_cuda_run_file of each run."""
    project = max(r["gpu_used_bytes_after_loop"] - r["gpu_used_bytes_context"] for r in runs)
    summary = {"gpu_memory_mb": project / 2**20,
               "gpu_context_mb": max(r["gpu_used_bytes_context"] for r in runs) / 2**20}
    host_timer = [r["brian2cuda_loop_seconds"] for r in runs if "brian2cuda_loop_seconds" in r]
    if host_timer:
        summary["brian2cuda_seconds_per_step"] = statistics.median(host_timer) / n_steps
    return summary


GPU_LIMIT_BATCH = 20  # pairs of products queued between two synchronisations


def time_gpu_limit(N: int, K: int, repeats: int) -> dict:
    """The two products on the GPU (CuPy, else PyTorch), float64, as the cuda_standalone loop runs its
    kernels: GPU_LIMIT_BATCH pairs queued back to back, then one synchronisation; time per pair."""
    try:
        import cupy as cp

        library = "CuPy"
        xi = cp.asarray(benchmark_patterns(K, N))
        v, h = cp.ones(N), cp.ones(K)
        synchronize = cp.cuda.Device().synchronize
    except ImportError:
        try:
            import torch
        except ImportError:
            return {"status": "not measured: neither CuPy nor PyTorch can be imported here"}
        library = "PyTorch"
        xi = torch.as_tensor(benchmark_patterns(K, N), device="cuda")
        v = torch.ones(N, dtype=torch.float64, device="cuda")
        h = torch.ones(K, dtype=torch.float64, device="cuda")
        synchronize = torch.cuda.synchronize

    def pairs():
        for _ in range(GPU_LIMIT_BATCH):
            xi @ v
            xi.T @ h
        synchronize()

    return {"seconds_per_step": median_seconds(pairs, repeats, warmup=3) / GPU_LIMIT_BATCH, "library": library}


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

def estimated_bytes(kind: str, N: int, K: int, gating: str = "factorised") -> float:
    """Rough peak host bytes of one measurement ("numpy", "brian2", "cuda" or "naam"), used only to refuse
    sizes that would not fit."""
    if kind == "naam":
        return EST_NAAM_BYTES["per_N2"] * N**2 + EST_NAAM_BYTES["per_NK"] * N * K
    if kind == "numpy":
        return EST_BYTES_PER_NK["numpy"] * N * K
    wired = gating == "wired"
    per_nk = EST_BYTES_PER_NK["brian2_wired" if wired else "brian2"]
    if kind == "cuda":
        per_nk += CUDA_MAP_BYTES_PER_SYNAPSE * (0.5 if wired else 1.0)
    return per_nk * N * K


def estimated_gpu_bytes(N: int, K: int, gating: str = "factorised") -> float:
    """Rough GPU bytes of a cuda_standalone measurement."""
    return EST_GPU_BYTES_PER_NK["wired" if gating == "wired" else "factorised"] * N * K + EST_GPU_FIXED_BYTES


def synaptic_bytes(N: int, K: int, weight_bytes: int = 8, gating: str = "factorised") -> int:
    """Both gating Synapses (neurons -> astrocytes, astrocytes -> neurons): weight + indices per synapse;
    wired gating: indices only, on the +1 entries (half of the N K entries of random +-1 patterns)."""
    if gating == "wired":
        return 2 * (N * K // 2) * INDEX_BYTES
    return 2 * N * K * (weight_bytes + INDEX_BYTES)


def gpu_present() -> float | None:
    from astrogate.network.cuda import detect_compute_capability

    return detect_compute_capability()


def gpu_memory_bytes() -> float | None:
    from astrogate.network.cuda import detect_gpu_memory_bytes

    return detect_gpu_memory_bytes()


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


def standalone_row_values(v: StandaloneVariant, N: int, K: int, result: dict, limit: float | None) -> dict:
    """The row of one standalone variant from its measurement (time_brian2's result, or {"status": why not});
    limit: the CPU limit for cpp_standalone, the GPU limit of the same size for cuda_standalone."""
    timing = _timing(result, limit)
    cuda = v.device == CUDA
    python_peak = result.get("process_peak_rss_mb")
    notes = [("peak: host memory of the binary (/usr/bin/time)" if cuda else "peak of the binary (/usr/bin/time)")]
    if result.get("binary_peak_rss_mb") is not None:
        timing["peak_rss_mb"] = result["binary_peak_rss_mb"]
        if python_peak is not None:
            notes.append(f"the Python process that built it {python_peak:.0f} MB")
    elif python_peak is not None:  # no /usr/bin/time: the column holds the Python process's peak
        notes[0] = "peak: the Python process that built the project (no /usr/bin/time)"
    if v.threads > 1:
        notes.append("OpenMP")
    if cuda:
        notes.append("x limit: to gpu_matvec_limit")
        if result.get("gpu_memory_mb") is not None:
            notes.append(f"GPU memory: cudaMemGetInfo after the loop less the {result['gpu_context_mb']:.0f} MB in "
                         f"use before the project's arrays (CUDA context)")
        if result.get("brian2cuda_seconds_per_step") is not None:
            notes.append(f"loop timed between two cudaDeviceSynchronize, {result['steps']} steps; brian2cuda's own "
                         f"unsynchronised timer {result['brian2cuda_seconds_per_step'] * 1e6:.1f} us/step")
    if v.gating == "wired":
        notes.append("wired gating (no weights, +1 entries only)")
    return _row(v.name, N, K, **timing, threads=v.threads, weight_dtype=v.weight_dtype,
                synaptic_mb=synaptic_bytes(N, K, np.dtype(v.weight_dtype).itemsize, v.gating) / 2**20,
                note="; ".join(notes))


def run_speed_benchmark(config: SpeedConfig, out_dir: str | Path, log=print) -> dict:
    """Measure everything of `config`, write OUT/speed.csv, OUT/speed.json and OUT/speed.png."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {str(out)!r}: {exc.strerror}") from None
    sims = set(config.simulators)
    capability = gpu_present() if ({"cuda", "gpu_limit"} & sims) else None
    gpu_memory = (gpu_memory_bytes() or DEFAULT_GPU_MEMORY_BYTES) if capability else DEFAULT_GPU_MEMORY_BYTES
    rows, batched = [], {}
    cap = config.memory_cap_bytes
    build_root = config.build_root or tempfile.mkdtemp(prefix="astrogate-speed-")
    started = time.perf_counter()

    def add(row):
        rows.append(row)
        write_csv(rows, out / "speed.csv", CSV_COLUMNS, float_format=".6g")  # after every row: a run stopped part-way keeps what it measured
        what = f"{row['simulator']:<28} N={row['N']:<7} K={row['K']:<6}"
        if row["seconds_per_step"] != "":
            log(f"{what} {row['seconds_per_step'] * 1e6:12.1f} us/step"
                + (f"  build {row['build_seconds']:.1f} s, compile {row['compile_seconds']:.1f} s"
                   if row["compile_seconds"] != "" else "")
                + (f"  peak {row['peak_rss_mb']:.0f} MB" if row["peak_rss_mb"] != "" else ""))
        else:
            log(f"{what} {row['status']}")

    def too_big(kind, N, K, gating="factorised"):
        need = estimated_bytes(kind, N, K, gating)
        if need > cap:
            return (f"not measured: estimated {need / 2**30:.1f} GB > memory cap {config.memory_cap_gb:g} GB "
                    f"(--memory-cap-gb)")
        if kind == "cuda" and estimated_gpu_bytes(N, K, gating) > gpu_memory:
            return (f"not measured: estimated {estimated_gpu_bytes(N, K, gating) / 2**30:.1f} GB of GPU memory > "
                    f"the GPU's {gpu_memory / 2**30:.1f} GB")
        return None

    def standalone_row(v: StandaloneVariant, N, K, limit, skip) -> dict:
        """Measure one standalone variant (unless skip says why not) and make its row; cuda rows' limit is the
        GPU limit of the same size."""
        r = {"status": skip} if skip else measure(
            "time_brian2", N=N, K=K, repeats=config.repeats, device=v.device,
            steps=standalone_steps(v, N, K, config), threads=v.threads, weight_dtype=v.weight_dtype,
            layout=v.layout, build_root=build_root, gating=v.gating)
        return standalone_row_values(v, N, K, r, limit)

    naam_steps = []  # (N, K, seconds per step) of the NAAM rows measured so far

    def too_slow_naam(N, K):
        step = naam_step_estimate(N, K, naam_steps)
        total = step * naam_calls(config.repeats)
        if total > config.naam_time_cap_s:
            return (f"not measured: estimated {step:.3g} s per step x {naam_calls(config.repeats)} steps = "
                    f"{total / 60:.1f} min > time cap {config.naam_time_cap_s:g} s (--naam-time-cap-s)")
        return None

    for N, K in config.sizes:
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
            for v in config.variants("cpp", (N, K)):
                add(standalone_row(v, N, K, limit, too_big("brian2", N, K, v.gating)))
        gpu_limit = None
        if {"gpu_limit", "cuda"} & sims:  # every cuda ratio is to it
            skip = "not measured: no GPU" if capability is None else too_big("numpy", N, K)
            r = {"status": skip} if skip else measure("time_gpu_limit", N=N, K=K, repeats=config.repeats)
            gpu_limit = r.get("seconds_per_step")
            note = f"xi @ v and xi.T @ h, {r.get('library', 'CuPy or PyTorch')}, float64"
            if gpu_limit:
                note += f", {GPU_LIMIT_BATCH} pairs per synchronisation"
                note += f"; {gpu_limit / limit:.3g} x the CPU limit" if limit else ""
            add(_row("gpu_matvec_limit", N, K, **_timing(r, gpu_limit), weight_dtype="float64", note=note))
        if "cuda" in sims:
            for v in config.variants("cuda", (N, K)):
                skip = "not measured: no GPU" if capability is None else too_big("cuda", N, K, v.gating)
                add(standalone_row(v, N, K, gpu_limit, skip))
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

    retrieval = None
    if "retrieval" in sims:
        from astrogate.analysis.speed_retrieval import run_retrieval_rows

        retrieval = run_retrieval_rows(config.retrieval_sizes, config.batch, config.repeats, out, log)
    exponents = fit_exponents(rows)
    settings = {f.name: getattr(config, f.name) for f in fields(config)}
    settings["variant_sizes"] = {v.name: sizes for v, sizes in config.variant_sizes.items()}
    summary = {"machine": machine_info(), "config": _jsonable(settings), "targets": targets(rows),
               "exponents": exponents,
               "naam_exponents": fit_naam_exponents(rows),
               "batched": {f"{N}x{K}": v for (N, K), v in batched.items()},
               "wall_seconds": time.perf_counter() - started}
    if retrieval is not None:
        summary["retrieval"] = retrieval
    write_csv(rows, out / "speed.csv", CSV_COLUMNS, float_format=".6g")
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
    if result.get("gpu_memory_mb") is not None:
        values["gpu_memory_mb"] = result["gpu_memory_mb"]
    return values


# issue 8's targets at TARGET_SIZE
TARGETS = {
    "cpp_ratio_to_limit": "cpp_standalone within 2x of the two-mat-vec limit (CPU)",
    "batched_fraction_of_gemm_peak": "batched abstract model at least half the machine's GEMM throughput",
    "cuda_speedup_over_cpp": "cuda_standalone at least 20x faster per step than cpp_standalone (1 or 2 threads)",
    "cuda_ratio_to_gpu_limit": "cuda_standalone within 3x of the GPU mat-vec limit",
}
TARGET_BOUNDS = {"cpp_ratio_to_limit": ("<=", 2.0), "batched_fraction_of_gemm_peak": (">=", 0.5),
                 "cuda_speedup_over_cpp": (">=", 20.0), "cuda_ratio_to_gpu_limit": ("<=", 3.0)}


def _number(value) -> float | None:
    return None if value in ("", None) else float(value)


def targets(rows, size: tuple[int, int] = TARGET_SIZE) -> dict:
    """Issue 8's four targets at `size`, computed from the rows of one run: per target its value, whether
    it is met, which rows it compares, or why it was not measured. cpp_standalone: the fastest row with 1 or
    2 threads, any variant; cuda_standalone: the fastest row, any variant, against the fastest cpp row and
    against gpu_matvec_limit of the same size."""
    N, K = size
    at = [r for r in rows if int(r["N"]) == N and int(r["K"]) == K]
    where = f"N = {N}, K = {K}"

    def fastest(prefix, max_threads=None):
        """(fastest measured row or None, why not) among the rows whose simulator starts with prefix."""
        candidates = [r for r in at if r["simulator"].startswith(prefix)
                      and (max_threads is None or _number(r.get("threads")) is None
                           or _number(r["threads"]) <= max_threads)]
        done = [r for r in candidates if _number(r["seconds_per_step"]) is not None]
        if done:
            return min(done, key=lambda r: _number(r["seconds_per_step"])), None
        if candidates:
            return None, candidates[0]["status"] or "not measured"
        return None, f"not measured: no {prefix} row at {where} in this run"

    def entry(key, value, compared, why_not=None):
        op, bound = TARGET_BOUNDS[key]
        if value is None:
            return {"target": TARGETS[key], "value": None, "met": None, "status": why_not, "rows": compared}
        met = value <= bound if op == "<=" else value >= bound
        return {"target": TARGETS[key], "value": value, "met": bool(met), "status": "measured", "rows": compared}

    def time_ratio(key, row, reference, why_not, speedup=False):
        """entry() of row's time per step over the reference row's (speedup: the reference's over row's), both
        rows listed; or of why_not where either row is missing."""
        if not (row and reference):
            return entry(key, None, [], why_not)
        mine, theirs = _number(row["seconds_per_step"]), _number(reference["seconds_per_step"])
        return entry(key, theirs / mine if speedup else mine / theirs, [row["simulator"], reference["simulator"]])

    out = {"N": N, "K": K}
    cpp, cpp_why = fastest("cpp_standalone", max_threads=2)
    cpu_limit, cpu_why = fastest("matvec_limit")
    out["cpp_ratio_to_limit"] = time_ratio("cpp_ratio_to_limit", cpp, cpu_limit, cpp_why or cpu_why)
    batched = [r for r in at if r["simulator"].startswith("numpy_batched")]
    fraction = [r for r in batched if _number(r.get("fraction_of_gemm_peak")) is not None]
    if fraction:
        out["batched_fraction_of_gemm_peak"] = entry("batched_fraction_of_gemm_peak",
                                                     _number(fraction[0]["fraction_of_gemm_peak"]),
                                                     [fraction[0]["simulator"]])
    else:
        out["batched_fraction_of_gemm_peak"] = entry(
            "batched_fraction_of_gemm_peak", None, [],
            batched[0]["status"] if batched else f"not measured: no numpy_batched row at {where} in this run")
    cuda, cuda_why = fastest("cuda_standalone")
    gpu_limit, gpu_why = fastest("gpu_matvec_limit")
    out["cuda_speedup_over_cpp"] = time_ratio("cuda_speedup_over_cpp", cuda, cpp, cuda_why or cpp_why, speedup=True)
    out["cuda_ratio_to_gpu_limit"] = time_ratio("cuda_ratio_to_gpu_limit", cuda, gpu_limit, cuda_why or gpu_why)
    return out


def targets_report(block: dict) -> list[str]:
    """The targets block as lines of text."""
    lines = [f"targets at N = {block['N']}, K = {block['K']}:"]
    for key, text in TARGETS.items():
        t = block.get(key)
        if t is None:
            continue
        if t["value"] is None:
            lines.append(f"  {text}: {t['status']}")
        else:
            value = f"{t['value']:.3g}" + ("x" if key != "batched_fraction_of_gemm_peak" else "")
            lines.append(f"  {text}: {value} ({' vs '.join(t['rows'])}): {'met' if t['met'] else 'NOT met'}")
    return lines


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def measured(rows) -> list[dict]:
    return [r for r in rows if r["seconds_per_step"] != ""]


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


INT_COLUMNS = ("N", "K", "threads")
TEXT_COLUMNS = ("simulator", "weight_dtype", "status", "note")


def read_csv(path: Path) -> list[dict]:
    """speed.csv back as rows like the benchmark's own (numbers as numbers, "" where empty); columns that an
    older table lacks (gpu_memory_mb) are empty."""
    import io

    from astrogate.files import read_text

    with io.StringIO(read_text(path, "speed table"), newline="") as f:
        reader = csv.DictReader(f)
        missing = {"simulator", "N", "K", "seconds_per_step"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{path}: not a speed table (no {', '.join(sorted(missing))} column)")
        rows = []
        for raw in reader:
            try:
                row = _row(raw["simulator"], int(raw["N"]), int(raw["K"]))
                for column in CSV_COLUMNS[3:]:
                    value = raw.get(column, "") or ""
                    if value != "" and column not in TEXT_COLUMNS:
                        value = int(float(value)) if column in INT_COLUMNS else float(value)
                    row[column] = value
            except (TypeError, ValueError) as exc:
                raise InputError(f"{path}:{reader.line_num}: not a row of a speed table ({exc})") from None
            rows.append(row)
    return rows


def replot(out_dir: str | Path) -> dict:
    """Re-draw OUT/speed.png from OUT/speed.csv, without measuring; the exponents are fitted again from the
    table (as the run fitted them), the batched figures taken from OUT/speed.json where it exists. Returns
    the result as run_speed_benchmark does (report() prints it), with the targets computed from the table."""
    out = Path(out_dir)
    table = out / "speed.csv"
    if not table.is_file():
        raise InputError(f"--replot: no {table}")
    rows = read_csv(table)
    result = {"rows": rows, "exponents": fit_exponents(rows), "naam_exponents": fit_naam_exponents(rows),
              "targets": targets(rows), "batched": {}}
    summary = out / "speed.json"
    if summary.is_file():
        import json

        from astrogate.files import read_text

        try:
            saved = json.loads(read_text(summary, "speed summary"))
            result["batched"] = saved.get("batched", {})
            if saved.get("retrieval"):
                result["retrieval"] = saved["retrieval"]
        except (json.JSONDecodeError, AttributeError) as exc:
            raise InputError(f"{summary}: not a speed summary ({exc})") from None
    plot_speed(rows, out / "speed.png", result["exponents"], result["naam_exponents"])
    return result


def plot_speed(rows, path: Path, exponents: dict | None = None, naam_exponents: dict | None = None) -> Path:
    """Time per step against N K, log-log, one line per simulator; NAAM's points also joined at each fixed K
    (dotted: slope 2 in N there, its N^2 K cost)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from astrogate.analysis.io import save_figure

    fig, ax = plt.subplots(figsize=(7.5, 5))  # the legend goes to the right of the axes, outside
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^v"  # a colour comes back after len(colours) lines, with the next marker
    for index, sim in enumerate(dict.fromkeys(r["simulator"] for r in measured(rows))):
        pts = [(r["N"] * r["K"], r["seconds_per_step"]) for r in measured(rows) if r["simulator"] == sim]
        slope = (exponents or {}).get(sim, {}).get("all_sizes", {}).get("exponent")
        label = sim + (" (per cue)" if sim.startswith("numpy_batched") else "")
        label += f", slope {slope:.2f}" if slope is not None else ""
        if sim == "naam" and naam_exponents:
            for key, name, fixed in (("in_N", "N", "K"), ("in_K", "K", "N")):
                fits = naam_exponents.get(key, {})
                if fits:
                    label += f"; in {name}, {fixed} fixed: " + "/".join(f"{f['exponent']:.2f}" for f in fits.values())
        # the limits black and thick; the GPU's rows dashed
        style = {"color": colours[index % len(colours)], "marker": markers[index // len(colours) % len(markers)],
                 "linestyle": "--" if sim.startswith(("cuda_standalone", "gpu_")) else "-"}
        if sim in ("matvec_limit", "gpu_matvec_limit"):
            style.update(color="black", linewidth=2.5, marker="o")
        # markers: every size; line: the geometric mean over the sizes with the same N K
        nks = sorted({p[0] for p in pts})
        means = [math.exp(np.mean([math.log(t) for nk_, t in pts if nk_ == nk])) for nk in nks]
        ax.plot(nks, means, label=label, linestyle=style["linestyle"], color=style["color"],
                linewidth=style.get("linewidth", 1.5), marker=style["marker"], markevery=[])
        ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle="none", marker=style["marker"],
                color=style["color"])
        line_colour = style["color"]
        if sim == "naam":
            for K in sorted({r["K"] for r in measured(rows) if r["simulator"] == sim}):
                at_K = sorted((r["N"] * r["K"], r["seconds_per_step"]) for r in measured(rows)
                              if r["simulator"] == sim and r["K"] == K)
                if len(at_K) > 1:
                    ax.plot([p[0] for p in at_K], [p[1] for p in at_K], ":", color=line_colour, linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N K (pattern matrix entries)")
    ax.set_ylabel("seconds per time step")
    gpu = any(r["simulator"].startswith(("cuda_standalone", "gpu_")) for r in measured(rows))
    ax.set_title("Time per step; matvec_limit = the two mat-vec products alone" + (" (dashed: on the GPU)" if gpu else ""))
    ax.grid(True, which="both", alpha=0.3)
    if measured(rows):  # outside the axes: inside, it covered the points at N K = 10^7
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    save_figure(fig, path, dpi=110, bbox_inches="tight")
    return path


def report(result: dict) -> str:
    """The ratios to the limits, the batched model's throughput, the fitted exponents and the targets, as text."""
    lines = [f"{'simulator':<30}{'N':>8}{'K':>7}{'us/step':>12}{'x limit':>10}{'build s':>9}{'compile s':>10}"
             f"{'peak MB':>9}{'GPU MB':>8}  status"]
    for r in result["rows"]:
        def fmt(key, scale=1.0, spec=".1f"):
            return format(r[key] * scale, spec) if r.get(key, "") != "" else "-"
        lines.append(f"{r['simulator']:<30}{r['N']:>8}{r['K']:>7}{fmt('seconds_per_step', 1e6):>12}"
                     f"{fmt('ratio_to_limit', 1, '.2f'):>10}{fmt('build_seconds'):>9}{fmt('compile_seconds'):>10}"
                     f"{fmt('peak_rss_mb', 1, '.0f'):>9}{fmt('gpu_memory_mb', 1, '.0f'):>8}  {r['status']}")
    for size, b in result.get("batched", {}).items():
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
    if result.get("targets"):
        lines += targets_report(result["targets"])
    if result.get("retrieval"):
        from astrogate.analysis.speed_retrieval import retrieval_report

        lines += retrieval_report(result["retrieval"])
    return "\n".join(lines)
