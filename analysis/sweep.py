"""Parameter sweeps: the points of a spec run as Dask tasks, each result written as soon as it arrives.

Output folder (documented in runs/README.md):
    OUT/spec.toml         copy of the spec the sweep ran with
    OUT/points/<id>.json  one file per finished point (status "ok" or "failed" with the error)
    OUT/sweep.nc          xarray Dataset over the swept axes (NaN where a point failed or is missing)
    OUT/results.csv       tidy table, one row per point

A point's id is a hash of everything that determines its result (its field values and the
[model] settings), so a resumed sweep recognises finished points, and a changed spec never
reuses a stale result.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import time
import traceback
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrogate.analysis.io import write_json, write_netcdf, write_table
from astrogate.analysis.metrics import trial_metrics
from astrogate.analysis.sweep_spec import (RUN_SETTING_KEYS, SweepSpec, load_spec, pattern_count, point_parameters,
                                          point_values)
from astrogate.errors import InputError
from astrogate.files import file_status, write_text
from astrogate.models import checks
from astrogate.models.checks import cap_workers

POINTS_DIR = "points"
SPEC_COPY = "spec.toml"
DATASET_FILE = "sweep.nc"
TABLE_FILE = "results.csv"


@dataclass(frozen=True)
class Point:
    id: str
    index: tuple[int, ...]  # position on the grid, one index per axis
    values: dict  # every field of the point: the fixed ones and this point's swept ones


def point_id(values: dict, model: dict) -> str:
    canonical = json.dumps({"values": values, "model": model}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def enumerate_points(spec: SweepSpec) -> list[Point]:
    return [Point(point_id(values, spec.model), index, values) for index, values in point_values(spec)]


# -- one point ----------------------------------------------------------------------------

def run_point(values: dict, model: dict, build_root: str | None = None) -> dict:
    """Run one point and return its record; never raises, so that one bad point cannot stop a sweep."""
    start = time.perf_counter()
    record = {"status": "ok", "metrics": None, "error": None}
    try:
        record["metrics"] = simulate_point(values, model, build_root)
    except Exception as exc:  # any failure of a point is data for the sweep, not a crash
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc(limit=8))
    record["run_seconds"] = time.perf_counter() - start
    record["host"] = f"{socket.gethostname()}:{os.getpid()}"
    return record


def simulate_point(values: dict, model: dict, build_root: str | None = None) -> dict:
    """Generate the point's patterns and cues from its seed, retrieve them, and measure.

    Patterns come from `seed` alone (the same patterns at every point with the same K, N,
    correlation and seed: common random numbers make neighbouring points comparable)."""
    from astrogate.analysis.problems import generated_set

    N, K = values["N"], pattern_count(values)
    params = point_parameters(values)
    patterns, targets, cues = generated_set(K, N, np.random.default_rng(values["seed"]), values["correlation"],
                                            n_cues=values["trials"], flip=values["flip"], mask=values["mask"])
    if model["backend"] == "abstract":
        outcome = _retrieve_abstract(patterns, cues, params, dict(duration=model["duration"], tol=model["tol"],
                                                                  **abstract_settings(model).options()))
    else:
        run = dict(duration=model["duration"], method="euler", tol=model["tol"])
        outcome = _retrieve_brian2(patterns, cues, targets, params, run, model, build_root)
    return _metrics(outcome, targets, cues)


def abstract_settings(model: dict):
    """The abstract model's RunSettings of a spec's [model] table: its preset with the fields it changes."""
    from astrogate.models.abstract import run_settings

    return run_settings(model["settings"], **{k: model[k] for k in RUN_SETTING_KEYS if model.get(k)})


def _retrieve_abstract(patterns, cues, params, run) -> dict:
    from astrogate.models.abstract import AstroGateModel

    model = AstroGateModel(patterns, params)
    trajectory = model.run(cues, traces=False, **run)  # all trials as one batch, each leaving it when it stops
    v = model.rates(trajectory.u)
    gains = model.gains(trajectory.a)
    return dict(v=v, xi=model.xi, gains=gains, max_gain=gains.max(axis=-1), converged=trajectory.converged,
                t_converged=trajectory.t_converged, convergence_time=trajectory.convergence_time)


# one Brian2 session per worker process and device options: a session keeps its build and re-runs it
# with run_args (new patterns, cues, parameters) while the network's structure stays the same
_BRIAN2_SESSIONS: dict = {}


def brian2_session(model: dict, build_root: str | None = None):
    """This process's session for the spec's device options, in this process's own build folder."""
    from astrogate.network.recall import Brian2Session

    build_dir = Path(build_root or "build/sweep") / f"{socket.gethostname()}-{os.getpid()}"
    options = {key: model[key] for key in ("device", "target", "gating", "neuron")}
    key = (str(build_dir), *options.values())
    if key not in _BRIAN2_SESSIONS:
        _BRIAN2_SESSIONS[key] = Brian2Session(build_dir=str(build_dir), **options)
    return _BRIAN2_SESSIONS[key]


def _retrieve_brian2(patterns, cues, targets, params, run, model, build_root) -> dict:
    """One Brian2 run per trial, on this process's session (built once per network structure)."""
    from astrogate.analysis.recall import RecallProblem, recall

    session = brian2_session(model, build_root)
    results = [recall(RecallProblem(patterns, cue, int(target)), params, backend="brian2", session=session, **run)
               for cue, target in zip(cues, targets)]

    def stacked(name):
        return np.array([r[name] for r in results], dtype=float)

    return dict(v=stacked("v"), xi=patterns, gains=stacked("g"), max_gain=stacked("max_gain"),
                converged=stacked("converged").astype(bool), t_converged=stacked("t_converged"),
                convergence_time=stacked("convergence_time"))


def _metrics(outcome: dict, targets: np.ndarray, cues: np.ndarray) -> dict:
    """Means over the point's trials of the retrieval metrics (analysis/metrics.py) and of the run's own."""
    per_trial = trial_metrics(outcome["v"], outcome["xi"], targets, cues, gains=outcome["gains"])
    per_trial["convergence_time"] = outcome["convergence_time"]
    t_converged = outcome["t_converged"]
    return {
        **{name: float(np.mean(per_trial[name])) for name in ("nearest_accuracy", "exact_match", "final_overlap",
                                                              "soft_hamming_error", "hamming_error", "perplexity",
                                                              "convergence_time")},
        "converged": float(np.mean(outcome["converged"])),
        "t_converged": float(np.nanmean(t_converged)) if np.any(np.isfinite(t_converged)) else float("nan"),
        "max_gain": float(np.mean(outcome["max_gain"])),
    }


# -- the sweep ----------------------------------------------------------------------------

@dataclass
class SweepOutcome:
    out: Path
    total: int
    skipped: int  # finished before this run (--resume)
    ran: int  # finished in this run
    failed: int  # failed points in the whole sweep
    complete: bool


def point_path(out: Path, pid: str) -> Path:
    return out / POINTS_DIR / f"{pid}.json"


def read_point(out: Path, pid: str) -> dict | None:
    path = point_path(out, pid)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # a damaged file counts as not finished


def check_out(out: Path, resume: bool, spec: SweepSpec | None = None) -> None:
    """Refuse to mix a new sweep into a folder that holds results, unless resuming the same sweep: a
    resumed sweep must have the points and the [model] settings of the spec that folder ran with (its
    name, description, comments and metrics may differ), so that no folder holds points of two specs."""
    out = Path(out)
    info = file_status(out, "sweep output")
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise InputError(f"sweep output {str(out)!r} is not a folder")
    points = file_status(out / POINTS_DIR, "sweep output")
    existing = list((out / POINTS_DIR).glob("*.json")) if points is not None and stat.S_ISDIR(points.st_mode) else []
    if existing and not resume:
        raise InputError(f"{out} already holds {len(existing)} point results: pass --resume to continue "
                         f"that sweep, or choose another --out")
    if resume and spec is not None and (out / SPEC_COPY).is_file():
        try:
            before = load_spec(out / SPEC_COPY)
        except InputError as exc:
            raise InputError(f"--resume: the spec {out / SPEC_COPY} of that sweep is unreadable ({exc})") from None
        if ([p.id for p in enumerate_points(before)] != [p.id for p in enumerate_points(spec)]
                or before.model != spec.model):
            raise InputError(f"--resume: {spec.path} is not the spec the sweep in {out} ran with ({out / SPEC_COPY}: "
                             f"other points or [model] settings); resume with that spec, or choose another --out")


def make_client(scheduler: str | None = None, workers: int | None = None, tasks: int | None = None, log=print,
                **cluster_options):
    """A Client of the scheduler at `scheduler`, or of a new LocalCluster of single-threaded worker processes
    (at most one per core and per task; log says so when fewer than asked for are started).

    The local cluster listens on the loopback only, its dashboard included (any free port, so that several
    clusters on one machine do not collide on 8787): to serve a dashboard to other machines, start
    `dask scheduler` and `dask worker` yourself and pass --scheduler (runs/README.md)."""
    from distributed import Client, LocalCluster

    if scheduler:
        if workers is not None:
            raise InputError("--workers applies to the local cluster only; a scheduler brings its own workers")
        try:
            return Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:  # ValueError: an unknown protocol (bogus://)
            raise InputError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
    n_workers, note = cap_workers(os.cpu_count() or 1 if workers is None else workers,
                                  tasks if tasks is not None else 2**31, "point")
    if note and workers is not None:
        log(note)
    options = dict(host="127.0.0.1", dashboard_address="127.0.0.1:0", preload=[__name__])
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, **{**options, **cluster_options})
    return Client(cluster)


def dask_setup(worker) -> None:
    """Dask preload of the local cluster's workers (make_client). Ctrl-C in a terminal reaches every process
    of the job, the workers too, which then print tracebacks; the client shuts them down, so they ignore it."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def close_client(client, own_cluster: bool, interrupted: bool = False) -> None:
    """Close the client (and the local cluster it started). After an interruption the cancelled tasks'
    warnings of the shutdown are noise: the finished points are on disk, so they are not shown (nor the
    scheduler's errors about workers that the same signal already ended)."""
    import logging

    if interrupted:
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        try:
            client.run(_quiet_logs)
        except Exception:  # a worker already gone: nothing left to quieten
            pass
    cluster = client.cluster
    client.close()
    if own_cluster and cluster is not None:
        cluster.close()


def _quiet_logs() -> None:
    import logging

    logging.getLogger("distributed").setLevel(logging.CRITICAL)


def stream_results(client, submissions: dict, total: int, initial: int = 0, desc: str = "", progress: bool = True):
    """Submit ``{key: (item, (function, *arguments))}`` to `client` and yield (item, record) as each finishes, with
    a progress bar over `total` (`initial` of them done before). A task that could not run at all (its workers
    kept dying, say) yields a "failed" record; stopping early (break) cancels what is still pending."""
    from distributed import as_completed
    from tqdm import tqdm

    token = uuid.uuid4().hex[:8]  # keeps task keys unique on a long-lived scheduler
    futures = {client.submit(*call, key=f"{key}-{token}", pure=False): item
               for key, (item, call) in submissions.items()}
    bar = tqdm(total=total, initial=initial, unit="point", disable=not progress, desc=desc, dynamic_ncols=True)
    failed = 0
    try:
        for future in as_completed(futures):
            item = futures.pop(future)  # dropping the future lets the cluster free its result
            if future.status == "finished":
                record = future.result()
            elif future.status == "cancelled":
                continue
            else:
                exc = future.exception()
                record = {"status": "failed", "metrics": None, "error": f"{type(exc).__name__}: {exc}"}
            failed += record["status"] != "ok"
            bar.update(1)
            bar.set_postfix(failed=failed, refresh=False)
            yield item, record
    finally:
        bar.close()
        client.cancel([f for f in futures if not f.done()])


def run_sweep(spec: SweepSpec, out: str | Path, client, resume: bool = False, point_function=run_point,
              max_points: int | None = None, progress: bool = True) -> SweepOutcome:
    """Run the unfinished points of `spec` on `client`'s cluster, writing each result as it arrives.

    point_function(values, model, build_root) -> record is run_point unless a test wraps it.
    max_points stops after that many results of this run (the rest is cancelled), as an interruption would.
    """
    checks.instance(spec, SweepSpec, "spec", "a SweepSpec (load_spec)")
    out = checks.path(out, "out")
    resume, progress = checks.flag(resume, "resume"), checks.flag(progress, "progress")
    if max_points is not None:
        max_points = checks.whole_number(max_points, "max_points", 1)
    if not hasattr(client, "submit"):
        raise InputError(f"client must be a distributed.Client (make_client, or your scheduler's), got "
                         f"{type(client).__name__}")
    check_out(out, resume, spec)
    try:
        (out / POINTS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write the sweep folder {str(out)!r}: {exc.strerror}") from None
    write_text(out / SPEC_COPY, spec.text, "spec copy")  # check_out made sure it has the same points
    points = enumerate_points(spec)
    finished = {p.id for p in points if (read_point(out, p.id) or {}).get("status") == "ok"}
    pending = [p for p in points if p.id not in finished]
    build_root = str((out / "build").resolve())
    submissions = {f"point-{p.id}": (p, (point_function, p.values, spec.model, build_root)) for p in pending}
    ran = 0
    with closing(stream_results(client, submissions, total=len(points), initial=len(finished), desc=spec.name,
                                progress=progress)) as results:
        for point, record in results:
            _write_point(out, point, spec, record)
            ran += 1
            if max_points is not None and ran >= max_points:
                break
    complete = len(finished) + ran == len(points)
    failed = sum((read_point(out, p.id) or {}).get("status") == "failed" for p in points)
    if complete:
        write_results(spec, out)
    return SweepOutcome(out=out, total=len(points), skipped=len(finished), ran=ran, failed=failed,
                        complete=complete)


def _write_point(out: Path, point: Point, spec: SweepSpec, record: dict) -> None:
    write_json(point_path(out, point.id), {"id": point.id, "index": list(point.index), "values": point.values,
                                           "model": spec.model, **record})


# -- assembling the results ---------------------------------------------------------------

def collect(spec: SweepSpec, out: str | Path):
    """(xarray Dataset over the axes, tidy pandas table) from the point files present, finished or not."""
    import pandas as pd
    import xarray as xr

    out = Path(out)
    points = enumerate_points(spec)
    shape = spec.shape
    data = {metric: np.full(shape, np.nan) for metric in spec.metrics}
    status = np.full(shape, "missing", dtype=object)
    error = np.full(shape, "", dtype=object)
    rows = []
    for p in points:
        record = read_point(out, p.id) or {"status": "missing"}
        status[p.index] = record["status"]
        error[p.index] = record.get("error") or ""
        metrics = record.get("metrics") or {}
        for metric in spec.metrics:
            value = record.get("run_seconds") if metric == "run_seconds" else metrics.get(metric)
            data[metric][p.index] = np.nan if value is None else value
        rows.append({"point": p.id, **p.values, "K": pattern_count(p.values), "status": record["status"],
                     **{m: data[m][p.index] for m in spec.metrics}, "run_seconds": record.get("run_seconds"),
                     "error": record.get("error") or ""})
    dims = [axis.name for axis in spec.axes]
    coords = {}
    for axis in spec.axes:
        for name, values in axis.values.items():
            coords[name] = (axis.name, list(values))
    variables = {metric: (dims, values) for metric, values in data.items()}
    variables["status"] = (dims, status.astype(str))
    variables["error"] = (dims, error.astype(str))
    attrs = {"name": spec.name, "description": spec.description, "fixed": json.dumps(spec.fixed),
             "model": json.dumps(spec.model)}
    dataset = xr.Dataset(variables, coords=coords, attrs=attrs)
    return dataset, pd.DataFrame(rows)


def write_results(spec: SweepSpec, out: str | Path) -> tuple[Path, Path]:
    out = Path(out)
    dataset, table = collect(spec, out)
    dataset_path, table_path = out / DATASET_FILE, out / TABLE_FILE
    write_netcdf(dataset_path, dataset)
    write_table(table_path, table)
    return dataset_path, table_path


def load_sweep(out: str | Path):
    """The spec a sweep folder ran with, and its results so far (Dataset, table)."""
    out = Path(out)
    info = file_status(out / SPEC_COPY, "sweep folder")
    if info is None or not stat.S_ISREG(info.st_mode):
        raise InputError(f"{out} is not a sweep folder (no {SPEC_COPY} in it)")
    spec = load_spec(out / SPEC_COPY)
    return (spec, *collect(spec, out))
