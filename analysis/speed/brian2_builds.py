"""The speed benchmark's Brian2 measurements: the network on runtime/cython and as cpp_standalone and
cuda_standalone projects, built, instrumented (the CUDA loop's timer and GPU memory) and run."""

from __future__ import annotations

import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from astrogate.analysis.speed.config import CUDA, DT_MS, LAYOUT, SpeedConfig, StandaloneVariant
from astrogate.analysis.speed.numpy_timers import benchmark_parameters, benchmark_patterns

def time_brian2(N: int, K: int, repeats: int, steps, build_root: str | None = None, **build) -> dict:
    """The Brian2 network (factorised or wired gating, without its Lyapunov monitors, O(N + K) per step and
    more code to compile) per step: runtime/cython by differencing two run lengths; cpp_standalone by the
    binary's own timer around the simulation loop, which leaves out loading the arrays; cuda_standalone by a
    timer of ours around the loop between two cudaDeviceSynchronize (cuda_instrumentation()). build: device
    ("runtime", or StandaloneVariant's device) and StandaloneVariant's other fields."""
    if build.get("device") == "runtime":
        return _time_runtime(N, K, repeats, steps, build.get("weight_dtype", "float64"), build.get("layout", LAYOUT),
                             build.get("gating", "factorised"))
    # build: StandaloneVariant's fields (device, threads, weight_dtype, layout, gating), as keywords because the
    # benchmark calls this by name in a fresh process
    return _time_standalone(N, K, repeats, StandaloneVariant(**build), steps, build_root)


def _benchmark_network(N: int, K: int, weight_dtype: str, layout: str, gating: str, record_steps: int):
    """The benchmark's memory (the library's AstrocyteGatedMemory, without its Lyapunov sums) on the active
    device, its state applied, in a Network; returns (memory, network)."""
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    xi = benchmark_patterns(K, N)
    params = benchmark_parameters(N).resolved(N)
    dtype = None if weight_dtype == "float64" else np.dtype(weight_dtype).type
    memory = AstrocyteGatedMemory(xi, params, gating=gating, record_every=record_steps * DT_MS, energy=False,
                                  weight_dtype=dtype, overlap_layout=layout, name="agm")
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
