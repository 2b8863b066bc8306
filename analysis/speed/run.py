"""The speed benchmark's run: every measurement in a fresh process, the rows made from their results, and
speed.csv, speed.json and speed.png written."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from astrogate.analysis.io import write_csv
from astrogate.analysis.speed import brian2_builds, gpu, numpy_timers
from astrogate.analysis.speed.config import CUDA, LAYOUT, STEPS_PER_SECOND, SpeedConfig, StandaloneVariant
from astrogate.analysis.speed.memory import estimated_bytes, estimated_gpu_bytes, peak_rss_mb, synaptic_bytes
from astrogate.analysis.speed.numpy_timers import naam_calls, naam_step_estimate
from astrogate.analysis.speed.plots import plot_speed
from astrogate.analysis.speed.process import in_fresh_process
from astrogate.analysis.speed.table import CSV_COLUMNS, _row, fit_exponents, fit_naam_exponents
from astrogate.analysis.speed.targets import targets
from astrogate.files import make_folder

# the measurements measure() runs by name in a fresh process (a name travels to a spawned process; it
# finds the function here, whichever module defines it)
MEASUREMENTS = {fn.__name__: fn for fn in (
    numpy_timers.time_matvec_limit, numpy_timers.time_numpy_reference, numpy_timers.time_batched,
    numpy_timers.time_naam, brian2_builds.time_brian2, gpu.time_gpu_limit)}


def _in_process(fn_name: str, kwargs: dict) -> dict:
    result = MEASUREMENTS[fn_name](**kwargs)
    result["process_peak_rss_mb"] = peak_rss_mb()
    return result


def measure(fn_name: str, **kwargs) -> dict:
    """Run one measurement in a fresh process; failures become a status, never a lost row."""
    result, failure = in_fresh_process(_in_process, fn_name, kwargs)
    return result if failure is None else {"status": failure}


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
    make_folder(out, f"the output folder {str(out)!r}")
    sims = set(config.simulators)
    capability = gpu.gpu_present() if ({"cuda", "gpu_limit"} & sims) else None
    gpu_memory = (gpu.gpu_memory_bytes() or gpu.DEFAULT_GPU_MEMORY_BYTES) if capability else gpu.DEFAULT_GPU_MEMORY_BYTES
    rows, batched = [], {}
    cap = config.memory_cap_bytes
    build_root = config.build_root or tempfile.mkdtemp(prefix="astrogate-speed-")
    started = time.perf_counter()

    def add(row):
        rows.append(row)
        write_csv(out / "speed.csv", rows, CSV_COLUMNS, float_format=".6g")  # after every row: a run stopped part-way keeps what it measured
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
            steps=brian2_builds.standalone_steps(v, N, K, config), threads=v.threads, weight_dtype=v.weight_dtype,
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
                note += f", {gpu.GPU_LIMIT_BATCH} pairs per synchronisation"
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
        from astrogate.analysis.speed.retrieval import run_retrieval_rows

        retrieval = run_retrieval_rows(config.retrieval_sizes, config.batch, config.repeats, out, log)
    exponents = fit_exponents(rows)
    settings = {f.name: getattr(config, f.name) for f in fields(config)}
    settings["variant_sizes"] = {v.name: sizes for v, sizes in config.variant_sizes.items()}
    summary = {"machine": gpu.machine_info(), "config": _jsonable(settings), "targets": targets(rows),
               "exponents": exponents,
               "naam_exponents": fit_naam_exponents(rows),
               "batched": {f"{N}x{K}": v for (N, K), v in batched.items()},
               "wall_seconds": time.perf_counter() - started}
    if retrieval is not None:
        summary["retrieval"] = retrieval
    write_csv(out / "speed.csv", rows, CSV_COLUMNS, float_format=".6g")
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


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
