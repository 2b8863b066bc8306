"""Trials per second of a Brian2 parameter study run as one network of B independent copies (the batch of
`AstrocyteGatedMemory`), against B separate run_args runs of one memory's build and against the NumPy model,
measured side by side in one run, each measurement in a fresh process (its own peak memory).

    astrogate sweep speed_batch --out runs/speed_batch      (runs/configs/speed_batch.toml: sizes, batches, devices)

The trials follow the paper's protocol (PAPER_PRESET: dt = 0.001 ms, t_f = 10 ms, 10^4 Euler steps), each with
its own random pattern set and cue. A trial of the batched network is one copy; its time is the binary's run
(process start, reading the run_args files of the batch's patterns and cues, the loop, writing the results)
divided by B. Build and compilation are reported apart (they are paid once per size and B).
Writes batch_speed.json and batch_speed.csv; prints the table.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from astrogate.files import make_folder
from astrogate.analysis.io import write_csv
from astrogate.analysis.speed.memory import peak_rss_mb
from astrogate.analysis.speed.process import in_fresh_process

SEPARATE_RUNS = 8  # run_args runs of one memory timed for the separate-runs rate (its rate does not depend on B)
NUMPY_TRIALS = 4  # AstroGateModel.run trials timed for the NumPy rate
NUMPY_BATCH_STEPS = 1000  # steps of the batched NumPy states timed (scaled to the protocol's)


def protocol():
    """(Parameters, duration in ms, steps) of the paper's protocol."""
    from astrogate.models.checks import euler_steps
    from astrogate.models.presets import PAPER_PRESET

    params = PAPER_PRESET.parameters()
    duration = PAPER_PRESET.run["duration"]
    return params, duration, euler_steps(duration, params.dt)


def trials(B: int, K: int, N: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """B random +-1 pattern sets and a cue per set (a pattern with 20 % of its entries flipped)."""
    from astrogate.models.patterns import flip_cue, random_patterns

    rng = np.random.default_rng(seed)
    xi = np.stack([random_patterns(K, N, rng) for _ in range(B)])
    cues = np.stack([flip_cue(xi[b, rng.integers(K)], 0.2, rng) for b in range(B)])
    return xi, cues


def _standalone_project(build_root: str, params):
    import brian2 as b2

    from astrogate.network import devices

    build_dir = devices.activate(devices.DeviceChoice("cpp_standalone", build_root=Path(build_root)), params.dt)
    b2.prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{os.cpu_count()}"]
    time_binary = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if time_binary:  # the binary's own peak resident memory, written next to it
        b2.prefs.devices.cpp_standalone.run_cmd_unix = [time_binary, "-f", "%M", "-o", "peak_rss_kb.txt", "./main"]
    return build_dir


def _binary_peak_mb(build_dir: Path) -> float | None:
    peak = build_dir / "peak_rss_kb.txt"
    return float(peak.read_text().split()[-1]) / 1024.0 if peak.exists() else None


def time_batched_network(N: int, K: int, B: int, repeats: int, build_root: str) -> dict:
    """One cpp_standalone build of B copies; each timed run loads a fresh batch of B trials by run_args.
    Checks copy 0 of the last run against the abstract model's forward Euler."""
    import brian2 as b2

    from astrogate.models.abstract import AstroGateModel
    from astrogate.network.memory import AstrocyteGatedMemory

    params, duration, steps = protocol()
    build_dir = _standalone_project(build_root, params)
    xi, cues = trials(B, K, N, seed=1)
    start = time.perf_counter()
    mem = AstrocyteGatedMemory(xi, params)
    mem.set_cue(cues)
    b2.Network(mem).run(duration * b2.ms)
    b2.device.build(directory=str(build_dir), compile=True, run=False, with_output=False)
    built = time.perf_counter() - start
    compiled = b2.device.timers["compile"].get("make", 0.0)
    binary = build_dir / "main"
    binary_time = os.stat(binary).st_mtime_ns
    runs, loops = [], []
    for r in range(repeats):
        xi, cues = trials(B, K, N, seed=100 + r)  # a new study's trials: new patterns and cues
        values = mem.state_values(xi, params.cue_scale * cues)
        start = time.perf_counter()
        b2.device.run(directory=str(build_dir), with_output=False, results_directory=f"results_{r}",
                      run_args=mem.run_args(values))
        runs.append(time.perf_counter() - start)
        loops.append(b2.device._last_run_time)
    assert os.stat(binary).st_mtime_ns == binary_time, "the binary was rebuilt"
    model = AstroGateModel(xi[0], params)
    u, a = model.initial_state(cues[0])
    for _ in range(steps):
        du, da = model.derivatives(u, a)
        u, a = u + params.dt * du, a + params.dt * da
    state = mem.state()
    error = float(max(np.max(np.abs(state["u"][0] - u)), np.max(np.abs(state["a"][0] - a)) / max(1, np.max(np.abs(a)))))
    peak = _binary_peak_mb(build_dir)
    shutil.rmtree(build_dir, ignore_errors=True)
    run = float(np.median(runs))
    return {"run_seconds": run, "loop_seconds": float(np.median(loops)), "trials_per_second": B / run,
            "build_seconds": built - compiled, "compile_seconds": compiled, "binary_peak_rss_mb": peak,
            "copy0_error_vs_numpy_euler": error, "steps": steps}


def time_separate_runs(N: int, K: int, runs: int, build_root: str) -> dict:
    """One memory's cpp_standalone build re-run once per trial through run_args (the study without batching)."""
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    params, duration, steps = protocol()
    build_dir = _standalone_project(build_root, params)
    xi, cues = trials(runs, K, N, seed=2)
    start = time.perf_counter()
    mem = AstrocyteGatedMemory(xi[0], params)
    mem.set_cue(cues[0])
    b2.Network(mem).run(duration * b2.ms)
    b2.device.build(directory=str(build_dir), compile=True, run=False, with_output=False)
    built = time.perf_counter() - start
    compiled = b2.device.timers["compile"].get("make", 0.0)
    start = time.perf_counter()
    for r in range(runs):
        values = mem.state_values(xi[r], params.cue_scale * cues[r])
        b2.device.run(directory=str(build_dir), with_output=False, results_directory=f"results_{r}",
                      run_args=mem.run_args(values))
    total = time.perf_counter() - start
    peak = _binary_peak_mb(build_dir)
    shutil.rmtree(build_dir, ignore_errors=True)
    return {"run_seconds": total / runs, "trials_per_second": runs / total, "build_seconds": built - compiled,
            "compile_seconds": compiled, "binary_peak_rss_mb": peak, "steps": steps}


def time_runtime(N: int, K: int, B: int, runs: int) -> dict:
    """The runtime device (Cython): one network of B copies run once, and one memory's network re-run for
    `runs` trials (Network.store/restore between them), the protocol's steps each; Cython's compilation (cached
    after the first build) is done by a first zero-length run and not timed."""
    import brian2 as b2

    from astrogate.network import devices
    from astrogate.network.memory import AstrocyteGatedMemory

    params, duration, steps = protocol()
    devices.activate(devices.DeviceChoice("runtime", target="cython"), params.dt)
    xi, cues = trials(B, K, N, seed=6)
    batched = AstrocyteGatedMemory(xi, params, name="batched")
    batched.set_cue(cues)
    net = b2.Network(batched)
    net.run(0 * b2.ms)
    start = time.perf_counter()
    net.run(duration * b2.ms)
    batch_seconds = time.perf_counter() - start
    devices.activate(devices.DeviceChoice("runtime", target="cython"), params.dt)
    one = AstrocyteGatedMemory(xi[0], params, name="one")
    one.set_cue(cues[0])
    net = b2.Network(one)
    net.run(0 * b2.ms)
    net.store("built")
    start = time.perf_counter()
    for r in range(runs):
        net.restore("built")
        one.set_patterns(xi[r % B])
        one.set_cue(cues[r % B])
        net.run(duration * b2.ms)
    separate = (time.perf_counter() - start) / runs
    return {"batched_trials_per_second": B / batch_seconds, "separate_trials_per_second": 1.0 / separate,
            "steps": steps}


def time_numpy_loop(N: int, K: int, trials_timed: int) -> dict:
    """AstroGateModel.run (forward Euler, the protocol's duration, tol = 0) on one trial after another."""
    from astrogate.models.abstract import AstroGateModel

    params, duration, steps = protocol()
    xi, cues = trials(trials_timed, K, N, seed=3)
    start = time.perf_counter()
    for b in range(trials_timed):
        AstroGateModel(xi[b], params).run(cues[b], duration=duration, method="euler", tol=0, record_every=duration)
    seconds = (time.perf_counter() - start) / trials_timed
    return {"run_seconds": seconds, "trials_per_second": 1.0 / seconds, "steps": steps}


def time_numpy_batched(N: int, K: int, B: int) -> dict:
    """The NumPy model's batched path: AstroGateModel's right-hand side on B x N states at once (B cues of ONE
    pattern set: two matrix products per step), timed over NUMPY_BATCH_STEPS steps and scaled to the protocol.
    A study of B different pattern sets cannot use it; it bounds what NumPy reaches per trial."""
    from astrogate.models.abstract import AstroGateModel

    params, duration, steps = protocol()
    from astrogate.models.patterns import flip_cue

    xi, _ = trials(1, K, N, seed=4)
    model = AstroGateModel(xi[0], params)
    rng = np.random.default_rng(5)
    u, a = model.initial_state(np.stack([flip_cue(xi[0, rng.integers(K)], 0.2, rng) for _ in range(B)]))
    timed = min(steps, NUMPY_BATCH_STEPS)
    start = time.perf_counter()
    for _ in range(timed):
        du, da = model.derivatives(u, a)
        u, a = u + params.dt * du, a + params.dt * da
    seconds = (time.perf_counter() - start) * steps / timed
    return {"run_seconds": seconds, "trials_per_second": B / seconds, "steps": steps, "timed_steps": timed}


def time_numpy_distinct_limit(N: int, K: int, B: int) -> dict:
    """The two products a step of B trials with B different pattern sets needs (batched matrix-vector
    products, B x K x N by B x N and its transpose by B x K), timed alone over NUMPY_BATCH_STEPS repetitions and
    scaled to the protocol's steps: what any NumPy implementation of this study pays at least."""
    params, duration, steps = protocol()
    xi, _ = trials(B, K, N, seed=7)
    rng = np.random.default_rng(8)
    v, h = rng.standard_normal((B, N, 1)), rng.standard_normal((B, K, 1))
    xi_t = xi.transpose(0, 2, 1)
    timed = min(steps, NUMPY_BATCH_STEPS)
    start = time.perf_counter()
    for _ in range(timed):
        np.matmul(xi, v)
        np.matmul(xi_t, h)
    seconds = (time.perf_counter() - start) * steps / timed
    return {"run_seconds": seconds, "trials_per_second": B / seconds, "steps": steps, "timed_steps": timed}


def _measure(fn_name: str, kwargs: dict) -> dict:
    result = globals()[fn_name](**kwargs)
    result["process_peak_rss_mb"] = peak_rss_mb()
    return result


def measure(fn_name: str, **kwargs) -> dict:
    result, failure = in_fresh_process(_measure, fn_name, kwargs)
    return result if failure is None else {"status": failure}


def run(out: Path, sizes: list[tuple[int, int]], batches: list[int], repeats: int = 2,
        runtime: bool = False, standalone: bool = True) -> list[dict]:
    """Every measurement at each size and batch size into `out` (batch_speed.csv and .json, rewritten after each
    row); the study's loop (study.py BatchSpeed)."""
    make_folder(out, f"the output folder {str(out)!r}")
    # one core per measurement, as the cpp_standalone binary (built without OpenMP): on a shared machine BLAS
    # threads spinning against other processes made the NumPy B = 500 products 6x slower (measured). The
    # measurements run in spawned processes, which read these before importing NumPy.
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    build_root = str(out / "builds")
    rows = []
    for N, K in sizes:
        separate = measure("time_separate_runs", N=N, K=K, runs=SEPARATE_RUNS, build_root=build_root) \
            if standalone else {}
        numpy_loop = measure("time_numpy_loop", N=N, K=K, trials_timed=NUMPY_TRIALS) if standalone else {}
        for B in batches:
            batched = measure("time_batched_network", N=N, K=K, B=B, repeats=repeats, build_root=build_root) \
                if standalone else {}
            numpy_batched = measure("time_numpy_batched", N=N, K=K, B=B) if standalone else {}
            distinct = measure("time_numpy_distinct_limit", N=N, K=K, B=B)
            on_runtime = measure("time_runtime", N=N, K=K, B=B, runs=2) if runtime else {}
            row = {"N": N, "K": K, "B": B, "steps": batched.get("steps"),
                   "batched_trials_per_s": batched.get("trials_per_second"),
                   "batched_run_s": batched.get("run_seconds"), "batched_loop_s": batched.get("loop_seconds"),
                   "batched_build_s": batched.get("build_seconds"), "batched_compile_s": batched.get("compile_seconds"),
                   "batched_binary_peak_mb": batched.get("binary_peak_rss_mb"),
                   "batched_python_peak_mb": batched.get("process_peak_rss_mb"),
                   "copy0_error": batched.get("copy0_error_vs_numpy_euler"),
                   "separate_trials_per_s": separate.get("trials_per_second"),
                   "separate_compile_s": separate.get("compile_seconds"),
                   "numpy_loop_trials_per_s": numpy_loop.get("trials_per_second"),
                   "numpy_batched_trials_per_s": numpy_batched.get("trials_per_second"),
                   "numpy_distinct_limit_trials_per_s": distinct.get("trials_per_second"),
                   "runtime_batched_trials_per_s": on_runtime.get("batched_trials_per_second"),
                   "runtime_separate_trials_per_s": on_runtime.get("separate_trials_per_second"),
                   "status": "; ".join(f"{what}: {r['status']}" for what, r in
                                       (("batched", batched), ("separate", separate), ("numpy", numpy_loop),
                                        ("numpy batched", numpy_batched), ("runtime", on_runtime),
                                        ("numpy distinct", distinct))
                                       if "status" in r) or "ok"}
            if row["batched_trials_per_s"] and row["separate_trials_per_s"]:
                row["speedup_vs_separate"] = row["batched_trials_per_s"] / row["separate_trials_per_s"]
            if row["batched_trials_per_s"] and row["numpy_batched_trials_per_s"]:
                row["numpy_batched_over_batched"] = row["numpy_batched_trials_per_s"] / row["batched_trials_per_s"]
            if row["batched_trials_per_s"] and row["numpy_loop_trials_per_s"]:
                row["speedup_vs_numpy_loop"] = row["batched_trials_per_s"] / row["numpy_loop_trials_per_s"]
            rows.append(row)
            print(_line(row), flush=True)
            _write(out, rows)
    shutil.rmtree(build_root, ignore_errors=True)
    return rows


def _line(row: dict) -> str:
    def f(key, fmt="{:.3g}"):
        value = row.get(key)
        return "-" if value is None else fmt.format(value)

    return (f"N={row['N']} K={row['K']} B={row['B']}: batched {f('batched_trials_per_s')} trials/s "
            f"(run {f('batched_run_s')} s, compile {f('batched_compile_s')} s), separate {f('separate_trials_per_s')}, "
            f"numpy loop {f('numpy_loop_trials_per_s')}, numpy batched {f('numpy_batched_trials_per_s')}, "
            f"numpy distinct-pattern limit {f('numpy_distinct_limit_trials_per_s')}, runtime "
            f"batched {f('runtime_batched_trials_per_s')} / separate {f('runtime_separate_trials_per_s')}; "
            f"x{f('speedup_vs_separate')} vs separate; {row['status']}")


def _write(out: Path, rows: list[dict]) -> None:
    import json

    import brian2

    machine = {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(), "blas_threads": 1, "python": platform.python_version(),
               "brian2": brian2.__version__, "numpy": np.__version__, "platform": platform.platform(),
               "command": " ".join(sys.argv)}
    (out / "batch_speed.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1, default=float))
    columns = list(dict.fromkeys(key for row in rows for key in row))
    write_csv(out / "batch_speed.csv", [{c: row.get(c) for c in columns} for row in rows], columns, ".6g")
