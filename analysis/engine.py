"""The study engine: every study runs here, point by point as Dask tasks, into one output format.

Output folder (runs/README.md)::

    OUT/study.json        what the folder holds: the study's name, evaluation and definition (its hash)
    OUT/spec.toml         the TOML of the study, when it was read from a file
    OUT/points/<id>.json  one file per finished point (status "ok" or "failed" with the error), written
                          as soon as it arrives
    OUT/results.nc        xarray Dataset over the evaluation's dimensions and the grid's axes
    OUT/results.csv       tidy table, one row per point (per model or method where a point has several)
    OUT/...               the evaluation's own outputs (a benchmark's summary and figures, ...)

A point's id is a hash of everything that determines its result, so a resumed study recognises finished
points and a changed study never reuses a stale one. The folder is owned by one run at a time and written
without half-files (analysis/folder.py); a damaged point file counts as not finished.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
import uuid
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from astrogate.analysis.folder import RunFolder, read_own_file, read_own_json
from astrogate.analysis.study import Study, definition_hash, enumerate_points, evaluation
from astrogate.errors import InputError
from astrogate.files import file_status
from astrogate.models.checks import whole_number

POINTS_DIR = "points"
MANIFEST = "study.json"
SPEC_COPY = "spec.toml"
DATASET_FILE = "results.nc"
TABLE_FILE = "results.csv"


@dataclass
class Outcome:
    """What one run of a study did."""

    out: Path
    total: int
    skipped: int  # finished before this run (--resume)
    ran: int  # finished in this run
    failed: int  # failed points in the whole study
    complete: bool
    records: dict = field(default_factory=dict, repr=False)  # point id -> record, of every finished point
    dataset: object = field(default=None, repr=False)  # the Dataset written, once the study is complete


@dataclass
class Finished:
    """A complete study, handed to its evaluation's finish(): the dataset, the table and the run."""

    study: Study
    dataset: object
    table: object
    records: dict
    out: Path
    runtime_seconds: float
    workers: int
    notes: dict  # what earlier stages left for the outputs (a benchmark's tuning record)


# -- one point ------------------------------------------------------------------------------------------------

def run_task(name: str, values: dict, settings: dict, context: dict) -> dict:
    """Run one point of evaluation `name` and return its record; never raises, so that one bad point cannot
    stop a study (its error and traceback are the record)."""
    start = time.perf_counter()
    record = {"status": "ok", "error": None}
    try:
        record.update(evaluation(name).run(values, settings, context))
    except Exception as exc:  # any failure of a point is data for the study, not a crash
        record.update(status="failed", metrics=None, error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc(limit=8))
    record["run_seconds"] = time.perf_counter() - start
    record["host"] = f"{socket.gethostname()}:{os.getpid()}"
    return record


def point_path(out: Path, pid: str, sub: str = "") -> Path:
    return Path(out) / sub / POINTS_DIR / f"{pid}.json"


def read_point(out: Path, pid: str, study: Study, sub: str = ""):
    """The record of a point, None when absent, "damaged" when its file is not a record this evaluation
    writes (not JSON, a link, a metric that is not a finite number, no status, ...)."""
    path = point_path(out, pid, sub)
    if not os.path.lexists(path):
        return None
    record = read_own_json(path)
    if not isinstance(record, dict) or record.get("status") not in ("ok", "failed") or record.get("id", pid) != pid:
        return "damaged"
    if record["status"] == "ok" and not evaluation(study.evaluation).valid(record):
        return "damaged"
    if not isinstance(record.get("error") or "", str):
        return "damaged"
    return record


def read_points(study: Study, out: Path, sub: str = "") -> tuple[dict, list[str]]:
    """({point id: record} of the point files present, [ids of damaged point files])."""
    records, damaged = {}, []
    for point in enumerate_points(study):
        record = read_point(out, point.id, study, sub)
        if record == "damaged":
            damaged.append(point.id)
        elif record is not None:
            records[point.id] = record
    return records, damaged


# -- the cluster ----------------------------------------------------------------------------------------------

def make_client(scheduler: str | None = None, workers: int | None = None, tasks: int | None = None, log=print,
                **cluster_options):
    """A Client of the scheduler at `scheduler`, or of a new LocalCluster of single-threaded worker processes
    (at most one per core and per task; log says so when fewer than asked for are started).

    The local cluster listens on the loopback only, its dashboard included (any free port, so that several
    clusters on one machine do not collide on 8787): to serve a dashboard to other machines, start
    `dask scheduler` and `dask worker` yourself and pass --scheduler (runs/README.md)."""
    import dask
    from distributed import Client, LocalCluster

    _drop_distributed_cancel_error()
    if scheduler:
        if workers is not None:
            raise InputError("--workers applies to the local cluster only; a scheduler brings its own workers")
        try:
            return Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:  # ValueError: an unknown protocol (bogus://)
            raise InputError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
    n_workers, note = cap_workers(os.cpu_count() or 1 if workers is None else workers,
                                  max(1, tasks) if tasks is not None else 2**31, "point")
    if note and workers is not None:
        log(note)
    options = dict(host="127.0.0.1", dashboard_address="127.0.0.1:0", preload=[__name__])
    # Dask's nannies also write their environment into this process's (distributed/nanny.py): a cluster that
    # Dask's defaults started here before left its malloc setting for every later worker to inherit
    dask_setting = dask.config.get(f"{PRE_SPAWN}.{MALLOC_SETTING}", None)
    if dask_setting is not None and os.environ.get(MALLOC_SETTING) == str(dask_setting):
        del os.environ[MALLOC_SETTING]
    with dask.config.set({f"{PRE_SPAWN}.{MALLOC_SETTING}": None}):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               **{**options, **cluster_options})
    return Client(cluster)


# The local workers' environment: one BLAS thread each (Dask's default), but not Dask's MALLOC_TRIM_THRESHOLD_,
# which also fixes glibc's mmap threshold: every NumPy temporary above 128 KiB is then mapped and unmapped anew,
# and a Fig. 4 point of the gated model took 3 times as long (25 s against 8.8 s, 15 s of it in the kernel).
PRE_SPAWN = "distributed.nanny.pre-spawn-environ"
MALLOC_SETTING = "MALLOC_TRIM_THRESHOLD_"


def _is_not_the_cancel_race(record) -> bool:
    """False for the one record distributed's `sync` leaves on Ctrl-C: a KeyboardInterrupt that arrives before
    its coroutine has started makes its cancel callback read an unassigned variable (a NameError logged by
    tornado from the event-loop thread, at any moment after the signal). Nothing is lost by it."""
    exc = record.exc_info[1] if record.exc_info else None
    return not (isinstance(exc, NameError) and "sync.<locals>.cancel" in record.getMessage())


def _drop_distributed_cancel_error() -> None:
    import logging

    logger = logging.getLogger("tornado.application")
    if _is_not_the_cancel_race not in logger.filters:
        logger.addFilter(_is_not_the_cancel_race)


def cap_workers(requested: int, tasks: int, unit: str = "task") -> tuple[int, str]:
    """Worker processes actually worth starting: no more than the cores, nor than the tasks to share.
    Returns (workers, a note saying why fewer were started, or "")."""
    requested = whole_number(requested, "workers", minimum=1)
    cores = os.cpu_count() or 1
    workers = max(1, min(requested, cores, tasks))
    if workers == requested:
        return workers, ""
    limit = f"{cores} cores" if workers == cores else f"{tasks} {unit}{'s' if tasks != 1 else ''} to run"
    return workers, f"using {workers} worker process{'es' if workers > 1 else ''}, not {requested}: {limit}"


def dask_setup(worker) -> None:
    """Dask preload of the local cluster's workers (make_client). Ctrl-C in a terminal, a batch system's
    SIGTERM or a closed terminal's SIGHUP reaches every process of the job, the workers too, which then print
    tracebacks or die before the main process has heard of it (and its scheduler reports them lost). The main
    process stops the run and its cluster, which closes them (their nanny kills one that does not close), so
    they disregard these signals: by a handler that does nothing, not by ignoring them, which the programs they
    start (a compiled Brian2 simulation) would inherit."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), _disregard_signal)


def _disregard_signal(signum, frame) -> None:
    """A worker's handler of the job's stop signals (dask_setup)."""


@contextmanager
def study_client(studies, scheduler: str | None = None, workers: int | None = None):
    """One client (make_client) for `studies` run one after another, or None when none of them runs its points
    on a cluster; closed at the end, quietly after an interruption or a failure (close_client)."""
    studies = [study for study in studies if evaluation(study.evaluation).on_cluster]
    if not studies:
        yield None
        return
    client = make_client(scheduler, workers, max(study.n_points for study in studies))
    interrupted = False
    try:
        yield client
    except BaseException:  # the cancelled points' shutdown is no news
        interrupted = True
        raise
    finally:
        close_client(client, own_cluster=not scheduler, interrupted=interrupted)


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


# -- a run --------------------------------------------------------------------------------------------------

class Runner:
    """Runs the points of one or more studies (a benchmark's tuning study, then its cells) into one folder
    on one client. point_function(values, settings, build_root) -> record replaces the evaluation's point
    (tests wrap it); max_points stops after that many results of this run, as an interruption would."""

    def __init__(self, folder: RunFolder, client=None, progress: bool = True, log=print, point_function=None,
                 max_points: int | None = None):
        self.folder, self._client, self.progress, self.log = folder, client, progress, log
        self.point_function, self.max_points = point_function, max_points
        self.workers: int | None = None  # of the local cluster started when a point first needs one
        self.tasks = 1  # the most points a stage runs: no more local workers than these are started
        self.own_client = False
        self.notes: dict = {}
        self.started = time.perf_counter()
        self.outcomes: list[Outcome] = []

    def client(self):
        """The client given, or a local cluster of self.workers processes started now (at most one per task)."""
        if self._client is None:
            self._client = make_client(workers=self.workers, tasks=self.tasks, log=self.log)
            self.own_client = True
        return self._client

    def close(self, interrupted: bool = False) -> None:
        if self.own_client:
            close_client(self._client, own_cluster=True, interrupted=interrupted)
            self._client, self.own_client = None, False

    @property
    def out(self) -> Path:
        return self.folder.path

    def run(self, study: Study, sub: str = "", results: bool = True) -> Outcome:
        """The unfinished points of `study` (in OUT/sub/points), each written as it arrives; the dataset,
        table and the evaluation's outputs once every point has a result (when `results`)."""
        points = enumerate_points(study)
        self.folder.own_folder(f"{sub}/{POINTS_DIR}" if sub else POINTS_DIR)  # a link there is not followed
        records, _ = read_points(study, self.out, sub)
        finished = {pid for pid, r in records.items() if r["status"] == "ok"}
        pending = evaluation(study.evaluation).order([p for p in points if p.id not in finished], study)
        context = {"build_root": str((self.out / "build").resolve()), "function": study.function}
        submissions = {}
        for p in pending:
            call = ((self.point_function, p.values, study.settings, context["build_root"]) if self.point_function
                    else (run_task, study.evaluation, p.values, study.settings, context))
            submissions[f"point-{p.id}"] = (p, call)
        ran = 0
        if submissions:
            with closing(stream_results(self.client(), submissions, total=len(points), initial=len(finished),
                                        desc=study.name, progress=self.progress)) as stream:
                for point, record in stream:
                    record = {"id": point.id, "index": list(point.index), "values": point.values,
                              "settings": study.settings, **record}
                    self.folder.write(f"{sub}/{POINTS_DIR}/{point.id}.json" if sub else
                                      f"{POINTS_DIR}/{point.id}.json", _json(record), "point file")
                    records[point.id] = record
                    ran += 1
                    if self.max_points is not None and ran >= self.max_points:
                        break
        complete = all(p.id in records for p in points)
        failed = sum(records[p.id]["status"] == "failed" for p in points if p.id in records)
        outcome = Outcome(self.out, len(points), len(finished), ran, failed, complete, records)
        self.outcomes.append(outcome)
        if complete and results:
            outcome.dataset = self.write_results(study, records).dataset
        return outcome

    def write_results(self, study: Study, records: dict) -> Finished:
        """The dataset, the table and the evaluation's own outputs, written together (folder.staged)."""
        from astrogate.analysis.io import write_netcdf, write_table

        dataset, table = collect(study, records)
        workers = len(self._client.scheduler_info().get("workers", {})) if self._client is not None else 0
        finished = Finished(study, dataset, table, records, self.out, time.perf_counter() - self.started, workers,
                            self.notes)
        with self.folder.staged() as stage:
            write_netcdf(stage / DATASET_FILE, dataset)
            write_table(stage / TABLE_FILE, table)
            evaluation(study.evaluation).finish(study, finished, stage)
        self.folder.remove(["sweep.nc"])  # the dataset's earlier name: one dataset per folder
        return finished


def _json(record: dict) -> str:
    from astrogate.analysis.io import to_jsonable

    return json.dumps(to_jsonable(record), separators=(",", ":"))


def run_study(study: Study, out: str | Path, client=None, *, workers: int | None = None, resume: bool = False,
              force: bool = False, progress: bool = True, log=print) -> Outcome:
    """Run `study` into the folder `out` on `client` (None: a local cluster of `workers` processes, one per
    core by default) and return the outcome of its last stage.

    resume: continue a run of the same study in `out`, skipping its finished points; force: replace the
    results of another run in `out`. Without either, a folder holding results is refused."""
    from astrogate.models import checks

    checks.instance(study, Study, "study", "a Study (load_study)")
    out = checks.path(out, "out")
    resume, force, progress = checks.flag(resume, "resume"), checks.flag(force, "force"), checks.flag(progress, "progress")
    if workers is not None:
        workers = checks.whole_number(workers, "workers", 1)
    if client is not None and not hasattr(client, "submit"):
        raise InputError(f"client must be a distributed.Client (or None for a local cluster), got "
                         f"{type(client).__name__}")
    if not callable(log):
        raise InputError(f"log must be a function of one line (print, say), got {checks.shown(log)}")
    evaluation(study.evaluation)  # an unknown evaluation is refused before the folder is touched
    with prepare_folder(study, out, resume, force) as folder:
        return execute(study, folder, client, workers=workers, progress=progress, log=log)


def execute(study: Study, folder: RunFolder, client=None, *, workers: int | None = None, progress: bool = True,
            log=print, point_function=None, max_points: int | None = None) -> Outcome:
    """The stages of `study` in a folder held by prepare_folder, on `client` or, when a point first needs
    one, a local cluster of `workers` processes of its own."""
    runner = Runner(folder, client, progress, log, point_function, max_points)
    runner.workers, runner.tasks = workers, max(1, study.n_points)
    interrupted = False
    try:
        evaluation(study.evaluation).execute(study, runner)
        return runner.outcomes[-1] if runner.outcomes else Outcome(folder.path, 0, 0, 0, 0, True)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (cli/main.py Stopped, which keeps its signal)
        interrupted = True
        exc.args = (f"the finished points are in {folder.path / POINTS_DIR}; continue with --resume",)
        raise
    except BaseException:
        # a failure (a full disk, say) cancels the pending points: their cancellation is no news either
        interrupted = True
        raise
    finally:
        runner.close(interrupted)


def prepare_folder(study: Study, out: str | Path, resume: bool = False, force: bool = False) -> RunFolder:
    """The folder `out`, locked for this run, checked to hold no other run's results (see run_study), with
    the study's manifest and spec copy written. Everything here happens before any point runs."""
    folder = RunFolder.open(out, "output folder")
    try:
        _claim(folder, study, resume, force)
    except BaseException:
        folder.close()
        raise
    return folder


def _claim(folder: RunFolder, study: Study, resume: bool, force: bool) -> None:
    out = folder.path
    ev = evaluation(study.evaluation)
    # removed in this order by --force: the results, then the points, the manifest last (a run killed while it
    # replaces them leaves a folder that the same study resumes)
    order = (*ev.outputs, DATASET_FILE, TABLE_FILE, "sweep.nc", "figures", "build", POINTS_DIR, SPEC_COPY, MANIFEST)
    ours = [name for name in order if os.path.lexists(out / name)]
    held = [name for name in ours if name not in ("build", "figures") and not (out / name).is_symlink()]
    if resume and force:
        raise InputError("--resume continues the run in the folder, --force replaces it: give one of them")
    if held and force:
        folder.remove(ours)
    elif held and not resume:
        raise InputError(f"{out} holds the results of a run ({_describe(out)}): pass --resume to continue it, "
                         f"--force to replace it, or choose another --out")
    elif held:
        before = _previous_definition(out)
        if before is None and not os.path.lexists(out / POINTS_DIR):
            raise InputError(f"--resume: {out} holds results of an earlier version without point files "
                             f"({', '.join(held)}): they cannot be resumed; pass --force to replace them, or "
                             f"choose another --out")
        if before is not None and before != definition_hash(study):
            raise InputError(f"--resume: {study.path or study.name} is not the study the run in {out} ran "
                             f"({_describe(out)}: other points or settings); resume with that study, or choose "
                             f"another --out")
    manifest = {"name": study.name, "evaluation": study.evaluation, "definition": definition_hash(study),
                "points": study.n_points, "description": study.description}
    folder.write(MANIFEST, json.dumps(manifest, indent=1), "study manifest")
    if study.text:
        folder.write(SPEC_COPY, study.text, "spec copy")


def _previous_definition(out: Path) -> str | None:
    """The definition hash of the run in `out`: its manifest's, or for a sweep of the first version its spec
    copy's; None when neither is readable (a damaged or linked manifest counts as absent)."""
    from astrogate.analysis.spec import parse_study

    manifest = read_own_json(out / MANIFEST)
    if isinstance(manifest, dict) and isinstance(manifest.get("definition"), str):
        return manifest["definition"]
    text = read_own_file(out / SPEC_COPY)
    if text is None:
        return None
    try:
        return definition_hash(parse_study(text, out / SPEC_COPY))
    except InputError:
        return None


def _describe(out: Path) -> str:
    manifest = read_own_json(out / MANIFEST)
    if isinstance(manifest, dict) and isinstance(manifest.get("name"), str):
        return f"study {manifest['name']!r}, evaluation {manifest.get('evaluation')!r}"
    points = len(list((out / POINTS_DIR).glob("*.json"))) if (out / POINTS_DIR).is_dir() else 0
    return f"{points} point results" if points else "files of an earlier version"


# -- the one output format ------------------------------------------------------------------------------------

def collect(study: Study, records: dict, damaged=()):
    """(xarray Dataset, tidy pandas table) of a study from its records ({point id: record}; points without one
    are "missing", or "damaged" where listed). The Dataset's dimensions are the evaluation's own (a benchmark's
    model) and then the grid's axes; one variable per metric (NaN where absent), with `status` and `error`."""
    import pandas as pd
    import xarray as xr

    ev = evaluation(study.evaluation)
    damaged = set(damaged)
    per_point = []
    for p in enumerate_points(study):
        record = records.get(p.id) or {"status": "damaged" if p.id in damaged else "missing"}
        per_point.append((p, record, ev.rows(p, record, study)))
    rows = [row for _, _, point_rows in per_point for row in point_rows]
    extra = {d: list(dict.fromkeys(row[d] for row in rows if row.get(d) is not None)) for d in ev.dims}
    shape = tuple(len(extra[d]) for d in ev.dims) + study.shape
    data = {metric: np.full(shape, np.nan) for metric in study.metrics}
    status = np.full(shape, "missing", dtype=object)
    error = np.full(shape, "", dtype=object)
    for p, record, point_rows in per_point:
        for row in point_rows:
            if any(row.get(d) is None for d in ev.dims):
                continue
            at = tuple(extra[d].index(row[d]) for d in ev.dims) + tuple(p.index)
            status[at], error[at] = row.get("status", record["status"]), row.get("error") or ""
            for metric in study.metrics:
                value = row.get(metric)
                data[metric][at] = np.nan if value is None else value
    dims = [*ev.dims, *(axis.name for axis in study.axes)]
    coords = {d: (d, values) for d, values in extra.items()}
    for axis in study.axes:
        for name, values in axis.values.items():
            coords[name] = (axis.name, list(values))
    variables = {metric: (dims, values) for metric, values in data.items()}
    variables["status"] = (dims, status.astype(str))
    variables["error"] = (dims, error.astype(str))
    attrs = {"name": study.name, "description": study.description, "evaluation": study.evaluation,
             "fixed": json.dumps(study.fixed), "settings": json.dumps(study.settings)}
    return xr.Dataset(variables, coords=coords, attrs=attrs), pd.DataFrame(rows)


def load_folder(out: str | Path):
    """(study, Dataset, table, damaged point ids) of a study's folder, finished or not: the study from its
    spec copy, the results from the point files present (damaged ones counted as not finished)."""
    from astrogate.analysis.spec import parse_study

    out = Path(out)
    file_status(out / SPEC_COPY, "study folder")  # a name too long, a folder not searchable: one line
    text = read_own_file(out / SPEC_COPY)
    if text is None:
        if os.path.lexists(out / SPEC_COPY):
            raise InputError(f"{out / SPEC_COPY} is not a readable spec (a link, not a file, or not UTF-8)")
        raise InputError(f"{out} is not a study folder (no {SPEC_COPY} in it)")
    study = parse_study(text, out / SPEC_COPY)
    records, damaged = read_points(study, out)
    return (study, *collect(study, records, damaged), damaged)
