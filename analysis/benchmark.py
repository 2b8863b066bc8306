"""The retrieval benchmark (issue 3): a grid of cells (pattern set x load x corruption), every model run on
the same patterns and the same cues (paired), metrics with 95 % intervals, a tidy table and figures.

A cell's patterns and cues depend only on the base seed and the cell (never on the models or on the
order cells run in), so that results are identical with one worker or several. Temperatures are tuned
on cells drawn from a separate seed stream ("tuning"), never on the cells that are reported.
"""

from __future__ import annotations

import json
import math
import time
import tomllib
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from astrogate.analysis.bench_models import REGISTRY, SEEDED_KINDS, make_benchmark_model
from astrogate.analysis.datasets import load_image_set, image_patterns
from astrogate.analysis.metrics import RUN_FIELDS, TRIAL_METRICS, summarise, trial_metrics
from astrogate.analysis.io import write_json, write_netcdf, write_table
from astrogate.analysis.problems import corrupt
from astrogate.errors import InputError
from astrogate.files import read_text, write_text
from astrogate.models.baselines import naam_peak_bytes
from astrogate.models import checks
from astrogate.models.checks import MAX_COUNT, cap_workers, gib, machine_memory, pattern_bytes, seed as check_seed
from astrogate.models.parameters import PARAMETER_NAMES, SAME_QUANTITY
from astrogate.models.patterns import clustered_patterns, random_patterns

IMAGE_FAMILIES = {"digits": ("digits", False), "digits-same": ("digits", True),
                  "mnist": ("mnist", False), "mnist-same": ("mnist", True)}
IMAGE_N = {"digits": 64, "mnist": 196}  # pixels of the binarised images (analysis/datasets.py)
CLUSTER_SIZE = 10  # clustered family: members per prototype
CLUSTER_MEMBER_FLIP = 0.1  # each member differs from its prototype in 10 % of bits
PARAMETER_FIELDS = frozenset(PARAMETER_NAMES)  # the model parameters, in either vocabulary


# -- configuration ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str
    options: dict = field(default_factory=dict)
    max_load: float = math.inf  # cost caps: cells above them are reported as skipped, never dropped
    max_N: int = 10**9
    tune: dict = field(default_factory=dict)  # option -> candidate values, tuned on separate seeds
    params_from: str = ""  # a 'gated' model whose (tuned) model parameters this one takes, see inherit_parameters
    max_K: int = 10**9  # cost cap on the number of patterns (NAAM's step costs O(K N^2))


@dataclass(frozen=True)
class Config:
    seed: int
    N: int
    instances: int
    cues: int
    loads: tuple
    pattern_sets: tuple
    corruptions: tuple
    image_corruptions: tuple
    models: tuple
    tuning_cells: tuple = ()
    tuning_instances: int = 1
    tuning_cues: int = 16
    gallery_load: float | None = None
    gallery_cues: int = 4
    source: str = ""


BENCHMARK_KEYS = {"seed", "N", "instances", "cues", "loads", "pattern_sets", "corruptions", "image_corruptions",
                  "gallery_load", "gallery_cues"}
MODEL_KEYS = {"kind", "max_load", "max_N", "max_K", "tune", "params_from"}
TUNING_KEYS = {"cells", "instances", "cues"}
CELL_KEYS = {"pattern_set", "load", "corruption"}


NAMED_CONFIGS = ("quick", "full", "spiking")  # shipped with the package as bench_<name>.toml


def load_benchmark_config(config: str | Path = "full") -> Config:
    """A shipped benchmark config by name ("quick": the small grid, "full", "spiking") or a TOML file of the
    same form; every error names the file and the key."""
    if config in NAMED_CONFIGS:
        from astrogate.configs import config_path

        config = config_path(f"bench_{config}.toml")
    path = checks.path(config, "config")
    text = read_text(path, "config file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    return config_from_dict(data, str(path))


def config_from_dict(data: dict, source: str = "<config>") -> Config:
    """The checked Config of a parsed TOML file; every error an InputError naming the key."""
    try:
        return _config_from_dict(data, source)
    except InputError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a value of the wrong shape somewhere
        raise InputError(f"config file {source!r}: malformed ({type(exc).__name__}: {exc})") from None


def _config_from_dict(data: dict, source: str) -> Config:
    def fail(key, why):
        raise InputError(f"config file {source!r}: key {key!r}: {why}")

    unknown_sections = set(data) - {"benchmark", "models", "tuning"}
    if unknown_sections:
        fail(sorted(unknown_sections)[0], "unknown section (use [benchmark], [models.NAME], [tuning])")
    bench = data.get("benchmark", {})
    for key in bench:
        if key not in BENCHMARK_KEYS:
            fail(f"benchmark.{key}", f"unknown key (known: {', '.join(sorted(BENCHMARK_KEYS))})")
    for key in ("N", "instances", "cues", "loads", "pattern_sets", "corruptions"):
        if key not in bench:
            fail(f"benchmark.{key}", "missing")
    for key in ("N", "instances", "cues"):
        if isinstance(bench[key], bool) or not isinstance(bench[key], int) or not 1 <= bench[key] <= MAX_COUNT:
            fail(f"benchmark.{key}", f"must be a positive integer, got {bench[key]!r}")
    for key in ("pattern_sets", "corruptions"):
        if not isinstance(bench[key], list) or not bench[key] or not all(isinstance(x, str) for x in bench[key]):
            fail(f"benchmark.{key}", "must be a non-empty list of names")
    loads = bench["loads"]
    if not isinstance(loads, list) or not loads or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0 for x in loads):
        fail("benchmark.loads", "must be a non-empty list of positive numbers")
    if len(set(loads)) != len(loads):
        fail("benchmark.loads", f"repeats a load ({loads})")
    for key in ("pattern_sets", "corruptions", "image_corruptions"):
        for spec in bench.get(key, []):
            try:
                (parse_pattern_set if key == "pattern_sets" else parse_corruption)(spec)
            except InputError as exc:
                fail(f"benchmark.{key}", str(exc))
    models = []
    for name, spec in data.get("models", {}).items():
        if not isinstance(spec, dict) or "kind" not in spec:
            fail(f"models.{name}", "needs a kind")
        if spec["kind"] not in REGISTRY:
            fail(f"models.{name}.kind", f"unknown kind {spec['kind']!r} (known: {', '.join(REGISTRY)})")
        tune = spec.get("tune", {})
        if not isinstance(tune, dict) or not all(isinstance(v, list) and v for v in tune.values()):
            fail(f"models.{name}.tune", "must map option names to non-empty lists of candidate values")
        params_from = spec.get("params_from", "")
        if not isinstance(params_from, str):
            fail(f"models.{name}.params_from", f"must be the name of a model, got {params_from!r}")
        if params_from and tune:
            fail(f"models.{name}.params_from", "a model takes its parameters from another model or tunes them, not both")
        options = {k: v for k, v in spec.items() if k not in MODEL_KEYS}
        models.append(ModelSpec(name, spec["kind"], options, float(spec.get("max_load", math.inf)),
                                int(spec.get("max_N", 10**9)), tune, params_from, int(spec.get("max_K", 10**9))))
        try:  # catches unknown options now rather than an hour into the run
            probe = {**options, **{k: v[0] for k, v in tune.items()}}
            make_benchmark_model(spec["kind"], np.ones((2, 4)), **resolve_options(probe, 4))
        except InputError as exc:
            fail(f"models.{name}", str(exc))
        except TypeError as exc:
            fail(f"models.{name}", f"bad option: {exc}")
    if not models:
        fail("models", "no models given")
    kinds = {m.name: m.kind for m in models}
    for m in models:
        if m.params_from and kinds.get(m.params_from) != "gated":
            fail(f"models.{m.name}.params_from", f"must name a model of kind 'gated' in this config, got {m.params_from!r}")
    tuning = data.get("tuning", {})
    for key in tuning:
        if key not in TUNING_KEYS:
            fail(f"tuning.{key}", f"unknown key (known: {', '.join(sorted(TUNING_KEYS))})")
    cells = []
    for cell in tuning.get("cells", []):
        for key in cell:
            if key not in CELL_KEYS:
                fail(f"tuning.cells.{key}", f"unknown key (known: {', '.join(sorted(CELL_KEYS))})")
        cells.append((cell["pattern_set"], float(cell["load"]), cell["corruption"]))
    if any(m.tune for m in models) and not cells:
        fail("tuning.cells", "models ask for tuning but no tuning cells are given")
    try:
        seed = check_seed(bench.get("seed", 0), "seed")
    except InputError as exc:
        fail("benchmark.seed", str(exc))
    config = Config(
        seed=seed, N=bench["N"], instances=bench["instances"], cues=bench["cues"],
        loads=tuple(float(x) for x in loads), pattern_sets=tuple(bench["pattern_sets"]),
        corruptions=tuple(bench["corruptions"]), image_corruptions=tuple(bench.get("image_corruptions", ())),
        models=tuple(models), tuning_cells=tuple(cells), tuning_instances=int(tuning.get("instances", 1)),
        tuning_cues=int(tuning.get("cues", 16)), gallery_load=bench.get("gallery_load"),
        gallery_cues=int(bench.get("gallery_cues", 4)), source=source,
    )
    check_config_memory(config)
    return config


def select_models(config: Config, names: list[str]) -> Config:
    """The config with only the models named (in the config's order); an InputError names an unknown one or a
    model whose params_from is left out."""
    known = [m.name for m in config.models]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InputError(f"model(s) {', '.join(unknown)} not in config {config.source!r} (its models: "
                         f"{', '.join(known)})")
    models = tuple(m for m in config.models if m.name in names)
    for m in models:
        if m.params_from and m.params_from not in names:
            raise InputError(f"model {m.name!r} takes its parameters from {m.params_from!r}: select that one too")
    return replace(config, models=models)


# rough peak bytes of a model's own state beyond the patterns and cues, per (cue, N, K) (see check_config_memory)
N2_KINDS = ("hopfield", "hopfield-continuous")  # an N x N weight matrix
NAAM_KIND = "naam"  # N x N synapses and processes per cue, several copies during a step, in chunks


def cell_bytes(config: Config, spec: str, load: float, models: tuple, n_cues: int) -> int:
    """Estimated peak memory of one cell: the patterns and cues, plus the largest model's own state."""
    N = config.N if not is_image_set(spec) else IMAGE_N.get(IMAGE_FAMILIES[spec][0], config.N)
    K = max(1, int(round(load * N)))
    own = [0]
    for m in models:
        if cap_reason(m, load, N, K):
            continue
        if m.kind in N2_KINDS:
            own.append(2 * 8 * N * N)
        elif m.kind == NAAM_KIND:
            own.append(naam_peak_bytes(N, K, n_cues))
        else:  # gains, overlaps and their traces: a few B x K arrays
            own.append(8 * 8 * n_cues * K)
    return pattern_bytes(K, N, n_cues) + max(own)


def check_config_memory(config: Config, workers: int = 1) -> None:
    """Refuse, before anything runs, a grid whose largest cell (times the workers running cells at once)
    needs more memory than this machine has available."""
    available, total = machine_memory()
    cells = [(cell, config.cues) for cell in grid_cells(config)]
    cells += [(cell, config.tuning_cues) for cell in config.tuning_cells]
    for (spec, load, corruption), n_cues in cells:
        need = workers * cell_bytes(config, spec, load, config.models, n_cues)
        if need > available:
            on = f" on {workers} workers" if workers > 1 else ""
            raise InputError(f"config {config.source!r}: the cell ({spec}, K/N = {load:g}, {corruption}) needs about "
                             f"{gib(need)} of memory{on}, more than the {gib(available)} available on this machine "
                             f"({gib(total)} in all): lower N, the loads or the cues, or cap the models (max_load, max_N, max_K)")


def option_name(key: str) -> str:
    """The option an options key sets: x for x, x_over_N and x_times_N."""
    for suffix in ("_over_N", "_times_N"):
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def inherit_parameters(models: tuple) -> tuple:
    """Models with params_from take that 'gated' model's model parameters (the Parameters fields: beta,
    tau_g, similarity, ...; as tuned when it is tuned, so call this after tune_models); their own options
    win. The rate model's run options (settings, max_duration, ...) are not taken."""
    by_name = {m.name: m for m in models}
    inherited = []
    for m in models:
        if m.params_from:
            own = {option_name(k) for k in m.options}
            own |= {SAME_QUANTITY[name] for name in own if name in SAME_QUANTITY}  # its T excludes an inherited beta
            taken = {k: v for k, v in by_name[m.params_from].options.items()
                     if option_name(k) in PARAMETER_FIELDS and option_name(k) not in own}
            m = replace(m, options={**taken, **m.options})
        inherited.append(m)
    return tuple(inherited)


def resolve_options(options: dict, N: int) -> dict:
    """Options named x_over_N or x_times_N become x = value / N or value * N (temperatures scale with N)."""
    resolved = {}
    for key, value in options.items():
        if key.endswith("_over_N"):
            resolved[key[: -len("_over_N")]] = value / N
        elif key.endswith("_times_N"):
            resolved[key[: -len("_times_N")]] = value * N
        else:
            resolved[key] = value
    return resolved


# -- pattern sets and cues ----------------------------------------------------------------------
def parse_pattern_set(spec: str) -> dict:
    """'iid', 'corr:c', 'clustered', or an image family: digits, digits-same, mnist, mnist-same."""
    if spec == "iid":
        return {"family": "iid", "correlation": 0.0}
    if spec.startswith("corr:"):
        try:
            c = float(spec.split(":", 1)[1])
        except ValueError:
            c = -1.0
        if not 0.0 <= c <= 1.0:
            raise InputError(f"pattern set {spec!r}: correlation must be a number in [0, 1]")
        return {"family": "correlated", "correlation": c}
    if spec == "clustered":
        return {"family": "clustered", "correlation": float("nan")}
    if spec in IMAGE_FAMILIES:
        return {"family": spec, "correlation": float("nan")}
    raise InputError(f"unknown pattern set {spec!r}: use iid, corr:c, clustered, {', '.join(IMAGE_FAMILIES)}")


def parse_corruption(spec: str) -> tuple[str, float]:
    """'flip:p' (flip a fraction p of bits), 'mask:q' (set a fraction q to 0), 'occlude:f' (images:
    set the bottom fraction f of the rows to 0)."""
    kind, _, level = spec.partition(":")
    try:
        value = float(level)
    except ValueError:
        value = -1.0
    if kind not in ("flip", "mask", "occlude") or not 0.0 <= value <= 1.0:
        raise InputError(f"corruption {spec!r}: use flip:p, mask:q or occlude:f with a fraction in [0, 1]")
    return kind, value


def is_image_set(spec: str) -> bool:
    return spec in IMAGE_FAMILIES


def pattern_set_N(spec: str, config: Config) -> int:
    return load_image_set(IMAGE_FAMILIES[spec][0]).N if is_image_set(spec) else config.N


def cell_rng(seed: int, stream: str, *key) -> np.random.Generator:
    """A generator that depends only on the seed, the stream ('cells' or 'tuning') and the cell."""
    text = "|".join([stream, *map(str, key)])
    return np.random.default_rng([seed, zlib.crc32(text.encode())])


def make_problem(spec: str, K: int, N: int, n_cues: int, corruption: str, rng: np.random.Generator):
    """(patterns K x N, targets, cues n_cues x N) for one pattern-set instance."""
    if is_image_set(spec):
        name, same_class = IMAGE_FAMILIES[spec]
        image_set = load_image_set(name)
        patterns, targets = image_patterns(image_set, K, n_cues, rng, same_class)
    else:
        family = parse_pattern_set(spec)
        if family["family"] == "clustered":
            size = min(CLUSTER_SIZE, K)
            patterns, _ = clustered_patterns(math.ceil(K / size), size, N, rng, CLUSTER_MEMBER_FLIP)
            patterns = patterns[:K]
        else:
            patterns = random_patterns(K, N, rng, family["correlation"])
        targets = rng.choice(K, size=n_cues, replace=n_cues > K)
    kind, level = parse_corruption(corruption)
    if kind == "occlude" and not is_image_set(spec):
        raise InputError(f"corruption {corruption!r} applies to image pattern sets only, not {spec!r}")
    shape = load_image_set(IMAGE_FAMILIES[spec][0]).shape if is_image_set(spec) else None
    # targets drawn without replacement where they can be (the earlier tables' draws): see analysis/problems.py
    return patterns, targets, corrupt(patterns[targets], [(kind, level)], rng, shape)


# -- running cells --------------------------------------------------------------------------------
def cap_reason(spec: ModelSpec, load: float, N: int, K: int) -> str:
    if load > spec.max_load:
        return f"skipped: K/N = {load:g} above this model's cost cap {spec.max_load:g}"
    if N > spec.max_N:
        return f"skipped: N = {N} above this model's cost cap {spec.max_N}"
    if K > spec.max_K:
        return f"skipped: K = {K} above this model's cost cap {spec.max_K}"
    return ""


def run_cell(config: Config, cell: tuple, models: tuple, stream: str = "cells", instances: int | None = None,
             n_cues: int | None = None, keep_gallery: bool = False) -> dict:
    """Every model on the same instances of one cell. Returns {'rows': [...], 'gallery': ...}."""
    spec, load, corruption = cell
    instances = instances or config.instances
    n_cues = n_cues or config.cues
    N = pattern_set_N(spec, config)
    K = max(1, int(round(load * N)))
    per_model = {m.name: [] for m in models}
    seconds = {m.name: 0.0 for m in models}
    gallery = None
    for instance in range(instances):
        rng = cell_rng(config.seed, stream, spec, load, corruption, instance)
        patterns, targets, cues = make_problem(spec, K, N, n_cues, corruption, rng)
        model_seed = int(rng.integers(2**31))
        if keep_gallery and instance == 0:
            shown = slice(0, config.gallery_cues)
            gallery = {"targets": patterns[targets[shown]], "cues": cues[shown], "states": {}}
        for m in models:
            if cap_reason(m, load, N, K):
                continue
            options = resolve_options(m.options, N)
            if m.kind in SEEDED_KINDS:
                options.setdefault("seed", model_seed)
            start = time.perf_counter()
            result = make_benchmark_model(m.kind, patterns, **options).retrieve(cues)
            seconds[m.name] += time.perf_counter() - start
            metrics = trial_metrics(result.states, patterns, targets, cues, gains=result.gains, rates=result.rates)
            metrics["steps"], metrics["converged"] = result.steps, result.converged
            metrics["convergence_time"] = (np.full(len(cues), np.nan) if result.convergence_time is None
                                           else result.convergence_time)
            per_model[m.name].append(metrics)
            if gallery is not None and instance == 0:
                gallery["states"][m.name] = result.states[: config.gallery_cues]
    family = parse_pattern_set(spec)
    rows = []
    for m in models:
        row = {"model": m.name, "kind": m.kind, "pattern_set": spec, "family": family["family"],
               "correlation": family["correlation"], "load": load, "K": K, "N": N, "corruption": corruption,
               "corruption_kind": parse_corruption(corruption)[0], "corruption_level": parse_corruption(corruption)[1],
               "options": json.dumps(resolve_options(m.options, N), sort_keys=True)}
        reason = cap_reason(m, load, N, K)
        if reason:
            row.update(summarise({k: np.zeros(0) for k in (*TRIAL_METRICS, *RUN_FIELDS)}))
            row.update(status=reason, seconds=0.0)
        else:
            joined = {k: np.concatenate([t[k] for t in per_model[m.name]]) for k in per_model[m.name][0]}
            row.update(summarise(joined))
            row.update(status="ok", seconds=seconds[m.name])
        rows.append(row)
    return {"cell": cell, "rows": rows, "gallery": gallery}


def grid_cells(config: Config) -> list[tuple]:
    cells = []
    for spec in config.pattern_sets:
        corruptions = config.image_corruptions if is_image_set(spec) else config.corruptions
        for corruption in corruptions:
            for load in config.loads:
                cells.append((spec, load, corruption))
    return cells


def tune_models(config: Config, workers: int = 1, progress=None) -> tuple[tuple, dict]:
    """Grid search of each model's `tune` options on the tuning cells (separate seeds). The winner has the
    highest mean nearest-memory accuracy over the tuning cells, then the highest exact-match rate, then
    comes first in the grid. Returns (models with the chosen options, a record of every score)."""
    record = {"cells": [list(c) for c in config.tuning_cells], "instances": config.tuning_instances,
              "cues": config.tuning_cues, "stream": "tuning (seeds disjoint from the reported cells)", "models": {}}
    candidates = []
    for m in config.models:
        if not m.tune:
            continue
        keys = sorted(m.tune)
        for values in np.array(np.meshgrid(*[np.arange(len(m.tune[k])) for k in keys])).reshape(len(keys), -1).T:
            choice = {k: m.tune[k][i] for k, i in zip(keys, values)}
            candidates.append((m, choice))
    jobs = [(replace(m, name=f"{m.name}#{i}", options={**m.options, **choice}), m, choice)
            for i, (m, choice) in enumerate(candidates)]
    tuning_models = tuple(j[0] for j in jobs)
    scores = {j[0].name: [] for j in jobs}
    if jobs:
        results = _map_cells(config, list(config.tuning_cells), tuning_models, workers, "tuning", progress,
                             instances=config.tuning_instances, n_cues=config.tuning_cues)
        for result in results:
            for row in result["rows"]:
                if row["status"] == "ok":
                    scores[row["model"]].append((row["nearest_accuracy"], row["exact_match"]))
    chosen = {}
    for m in config.models:
        if not m.tune:
            continue
        mine = [(j, np.mean([s[0] for s in scores[j[0].name]] or [np.nan]),
                 np.mean([s[1] for s in scores[j[0].name]] or [np.nan])) for j in jobs if j[1] is m]
        best = max(mine, key=lambda x: (np.nan_to_num(x[1], nan=-1), np.nan_to_num(x[2], nan=-1)))
        chosen[m.name] = best[0][2]
        record["models"][m.name] = {
            "grid": m.tune, "chosen": best[0][2],
            "scores": [{"options": j[2], "nearest_accuracy": na, "exact_match": em} for j, na, em in mine]}
    tuned = tuple(replace(m, options={**m.options, **chosen[m.name]}, tune={}) if m.name in chosen else m
                  for m in config.models)
    return tuned, record


def _cell_job(args):
    config, cell, models, stream, instances, n_cues, keep_gallery = args
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one BLAS thread per process: threads fight over shared cores (measured 7x slower)
        return run_cell(config, cell, models, stream, instances, n_cues, keep_gallery)


def _map_cells(config, cells, models, workers, stream, progress, instances=None, n_cues=None):
    jobs = [(config, cell, models, stream, instances, n_cues,
             stream == "cells" and is_image_set(cell[0]) and config.gallery_load == cell[1]) for cell in cells]
    results = []
    if workers <= 1:
        for job in jobs:
            results.append(_cell_job(job))
            if progress:
                progress.update(1)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_cell_job, job) for job in jobs]
            for future in as_completed(futures):
                results.append(future.result())
                if progress:
                    progress.update(1)
    order = {cell: i for i, cell in enumerate(cells)}
    return sorted(results, key=lambda r: order[tuple(r["cell"])])


def run_benchmark(config: Config, out: str | Path, workers: int = 1, show_progress: bool = True,
                  log=print) -> dict:
    """Tune, run the grid, write results.csv, results.nc, tuning.json, summary.json and the figures.
    workers is capped at the cores and the cells (log says so)."""
    import pandas as pd
    from tqdm import tqdm

    from astrogate.analysis.bench_plots import plot_accuracy_vs_load, plot_gallery

    checks.instance(config, Config, "config", "a benchmark Config (load_benchmark_config)")
    out = checks.path(out, "out")
    show_progress = checks.flag(show_progress, "show_progress")
    if not callable(log):
        raise InputError(f"log must be a function of one line (print, say), got {checks.shown(log)}")
    workers, note = cap_workers(workers, max(len(grid_cells(config)), len(config.tuning_cells)), "cell")
    if note:
        log(note)
    check_config_memory(config, workers)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {str(out)!r}: {exc.strerror}") from None
    start = time.perf_counter()
    cells = grid_cells(config)
    n_tuning = len(config.tuning_cells) if any(m.tune for m in config.models) else 0
    with tqdm(total=len(cells) + n_tuning, desc="bench retrieval", unit="cell", disable=not show_progress) as bar:
        models, tuning = tune_models(config, workers, bar)
        models = inherit_parameters(models)
        results = _map_cells(config, cells, models, workers, "cells", bar)
    table = pd.DataFrame([row for r in results for row in r["rows"]])
    runtime = time.perf_counter() - start
    paths = {"results.csv": out / "results.csv", "results.nc": out / "results.nc", "tuning.json": out / "tuning.json",
             "summary.json": out / "summary.json", "results.md": out / "results.md"}
    write_table(paths["results.csv"], table)
    write_text(paths["results.md"], "".join(
        f"### {metric}\n\n{markdown_table(table, metric, loads=config.loads)}\n"
        for metric in ("exact_match", "nearest_accuracy")), "Markdown table")
    write_dataset(table, paths["results.nc"])
    _write_json(paths["tuning.json"], tuning)
    capped = sorted({f"{r['model']}: {r['status']}" for _, r in table.iterrows() if r["status"] != "ok"})
    summary = {"config": config.source, "seed": config.seed, "cells": len(cells), "workers": workers,
               "runtime_seconds": runtime, "models": {m.name: {"kind": m.kind, "options": m.options,
                                                               "max_load": m.max_load, "max_N": m.max_N,
                                                               "max_K": m.max_K,
                                                               **({"params_from": m.params_from}
                                                                  if m.params_from else {})}
                                                      for m in models},
               "cost_caps": capped, "outputs": sorted(paths)}
    figures = plot_accuracy_vs_load(table, out)
    gallery = [r for r in results if r["gallery"] is not None]
    if gallery:
        figures.append(plot_gallery(gallery, out / "gallery.png"))
    summary["figures"] = [str(p.name) for p in figures]
    _write_json(paths["summary.json"], summary)
    return {"table": table, "summary": summary, "tuning": tuning, "out": out}


def write_dataset(table, path: Path) -> None:
    """The table as an xarray Dataset over (model, pattern_set, corruption, load), netCDF3 via SciPy."""
    numeric = table.select_dtypes(include=[np.number]).columns.difference(["load", "K", "N", "correlation"])
    ds = table.set_index(["model", "pattern_set", "corruption", "load"])[list(numeric)].to_xarray()
    ds.attrs["description"] = "astrogate retrieval benchmark; NaN where a model was skipped (cost cap) or a cell absent"
    write_netcdf(path, ds)


def _write_json(path: Path, data) -> None:
    write_json(path, data)


def markdown_table(table, metric: str = "exact_match", loads=(0.14, 2.0, 10.0), models=None) -> str:
    """A results table for the README: one row per (pattern set, corruption, load), one column per model,
    each entry 'rate [95 % CI]'; '-' where the model was skipped by its cost cap."""
    models = list(models or dict.fromkeys(table["model"]))
    lines = ["| pattern set | corruption | K/N | " + " | ".join(models) + " |",
             "|---|---|---|" + "---|" * len(models)]
    for (spec, corruption), group in table.groupby(["pattern_set", "corruption"], sort=False):
        for load in loads:
            at = group[np.isclose(group["load"], load)]
            if at.empty:
                continue
            cells = []
            for model in models:
                row = at[at["model"] == model]
                if row.empty or row["status"].iloc[0] != "ok":
                    cells.append("-")
                    continue
                r = row.iloc[0]
                cells.append(f"{r[metric]:.2f} [{r[f'{metric}_lo']:.2f}, {r[f'{metric}_hi']:.2f}]")
            lines.append(f"| {spec} | {corruption} | {load:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def head_to_head(table, model: str, baseline: str, metric: str = "exact_match") -> dict:
    """Where ``model`` wins, ties and loses against ``baseline`` in a benchmark table (results.csv).

    Over the cells both ran (status "ok"): "above" where model's 95 % interval lies entirely above the
    baseline's, "below" where it lies entirely below, "overlap" otherwise. Each entry is a list of
    (pattern_set, corruption, load) cells; "skipped" lists the cells where either model was skipped.
    Disjoint intervals are a conservative reading of a paired design (both models see the same cues).
    """
    import pandas as pd

    checks.instance(table, pd.DataFrame, "table", "a pandas DataFrame (run_benchmark's table, or results.csv read "
                    "with pandas.read_csv)")
    for name, value in (("model", model), ("baseline", baseline), ("metric", metric)):
        checks.instance(value, str, name, "a name (str)")
    missing = sorted({"model", "status", "pattern_set", "corruption", "load"} - set(table.columns))
    if missing:
        raise InputError(f"table: not a benchmark table, it lacks the column(s) {', '.join(missing)}")
    names = set(table["model"])
    for name in (model, baseline):
        if name not in names:
            raise InputError(f"model {name!r} is not in the table (models: {', '.join(sorted(names))})")
    if f"{metric}_lo" not in table.columns:
        raise InputError(f"metric {metric!r} has no interval columns in the table")
    key = ["pattern_set", "corruption", "load"]
    pair = pd.merge(table[table["model"] == model], table[table["model"] == baseline], on=key,
                    suffixes=("_model", "_baseline"))
    verdict = {"above": [], "overlap": [], "below": [], "skipped": []}
    for _, row in pair.iterrows():
        cell = (row["pattern_set"], row["corruption"], float(row["load"]))
        if row["status_model"] != "ok" or row["status_baseline"] != "ok":
            verdict["skipped"].append(cell)
        elif row[f"{metric}_lo_model"] > row[f"{metric}_hi_baseline"]:
            verdict["above"].append(cell)
        elif row[f"{metric}_hi_model"] < row[f"{metric}_lo_baseline"]:
            verdict["below"].append(cell)
        else:
            verdict["overlap"].append(cell)
    return verdict
