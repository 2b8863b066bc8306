"""The retrieval benchmark: a grid of cells (pattern set x corruption x load), every model run on the same
patterns and the same cues (paired), metrics with 95 % intervals, a tidy table and figures. It is the
"benchmark" evaluation of the study engine: a point is a cell, the model a dimension of its rows.

A cell's patterns and cues depend only on the base seed and the cell (never on the models or on the
order cells run in), so that results are identical with one worker or several. Temperatures are tuned
on cells drawn from a separate seed stream ("tuning"): a first study, whose winners the cells then run.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from astrogate.analysis.bench_models import REGISTRY, SEEDED_KINDS, make_benchmark_model
from astrogate.analysis.datasets import image_patterns, load_image_set
from astrogate.analysis.metrics import MEANS, RATES, RUN_FIELDS, TRIAL_METRICS, summarise, trial_metrics
from astrogate.analysis.problems import corrupt
from astrogate.analysis.study import Axis, Evaluation, Field, Study, positive, seed, valid_rows, whole
from astrogate.errors import InputError
from astrogate.models.baselines import naam_peak_bytes
from astrogate.models import checks
from astrogate.machine import gib, machine_memory
from astrogate.models.checks import MAX_COUNT, pattern_bytes
from astrogate.models.parameters import PARAMETER_NAMES, SAME_QUANTITY
from astrogate.models.patterns import clustered_patterns, random_patterns

IMAGE_FAMILIES = {"digits": ("digits", False), "digits-same": ("digits", True),
                  "mnist": ("mnist", False), "mnist-same": ("mnist", True)}
IMAGE_N = {"digits": 64, "mnist": 196}  # pixels of the binarised images (analysis/datasets.py)
CLUSTER_SIZE = 10  # clustered family: members per prototype
CLUSTER_MEMBER_FLIP = 0.1  # each member differs from its prototype in 10 % of bits
CELL_FIELDS = ("pattern_set", "corruption", "load")  # the grid of a benchmark, in this order
# the Dataset's variables: the numbers of a row (analysis/metrics.py summarise) and the models' time
METRICS = ("trials", *(f"{m}{s}" for m in (*RATES, *MEANS) for s in ("", "_lo", "_hi")), "seconds")
TEXT_COLUMNS = ("model", "kind", "pattern_set", "family", "corruption", "corruption_kind", "options", "status")
NAMED_CONFIGS = ("quick", "full", "spiking")  # shipped with the package as bench_<name>.toml


# -- models ---------------------------------------------------------------------------------------------
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

    def settings(self) -> dict:
        """As a study's settings hold it (JSON: the caps that are set)."""
        data = {k: v for k, v in asdict(self).items() if v != ModelSpec.__dataclass_fields__[k].default}
        return {"name": self.name, "kind": self.kind, **{k: v for k, v in data.items() if k not in ("name", "kind")}}


def models_of(study: Study) -> tuple[ModelSpec, ...]:
    return tuple(ModelSpec(**m) for m in study.settings["models"])


MODEL_KEYS = {"kind", "max_load", "max_N", "max_K", "tune", "params_from"}
TUNING_KEYS = {"cells", "instances", "cues"}


def option_name(key: str) -> str:
    """The option an options key sets: x for x, x_over_N and x_times_N."""
    for suffix in ("_over_N", "_times_N"):
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def inherit_parameters(models: tuple) -> tuple:
    """Models with params_from take that 'gated' model's model parameters (the Parameters fields: beta,
    tau_g, similarity, ...; as tuned when it is tuned, so call this after tuning); their own options
    win. The rate model's run options (settings, max_duration, ...) are not taken."""
    by_name = {m.name: m for m in models}
    inherited = []
    for m in models:
        if m.params_from:
            own = {option_name(k) for k in m.options}
            own |= {SAME_QUANTITY[name] for name in own if name in SAME_QUANTITY}  # its T excludes an inherited beta
            taken = {k: v for k, v in by_name[m.params_from].options.items()
                     if option_name(k) in PARAMETER_NAMES and option_name(k) not in own}
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
def parse_pattern_set(pattern_set: str) -> dict:
    """'iid', 'corr:c', 'clustered', or an image family: digits, digits-same, mnist, mnist-same."""
    if pattern_set == "iid":
        return {"family": "iid", "correlation": 0.0}
    if pattern_set.startswith("corr:"):
        try:
            c = float(pattern_set.split(":", 1)[1])
        except ValueError:
            c = -1.0
        if not 0.0 <= c <= 1.0:
            raise InputError(f"pattern set {pattern_set!r}: correlation must be a number in [0, 1]")
        return {"family": "correlated", "correlation": c}
    if pattern_set == "clustered":
        return {"family": "clustered", "correlation": float("nan")}
    if pattern_set in IMAGE_FAMILIES:
        return {"family": pattern_set, "correlation": float("nan")}
    raise InputError(f"unknown pattern set {pattern_set!r}: use iid, corr:c, clustered, {', '.join(IMAGE_FAMILIES)}")


def parse_corruption(corruption: str) -> tuple[str, float]:
    """'flip:p' (flip a fraction p of bits), 'mask:q' (set a fraction q to 0), 'occlude:f' (images:
    set the bottom fraction f of the rows to 0)."""
    kind, _, level = corruption.partition(":")
    try:
        value = float(level)
    except ValueError:
        value = -1.0
    if kind not in ("flip", "mask", "occlude") or not 0.0 <= value <= 1.0:
        raise InputError(f"corruption {corruption!r}: use flip:p, mask:q or occlude:f with a fraction in [0, 1]")
    return kind, value


def is_image_set(pattern_set: str) -> bool:
    return pattern_set in IMAGE_FAMILIES


def pattern_set_N(pattern_set: str, N: int) -> int:
    return load_image_set(IMAGE_FAMILIES[pattern_set][0]).N if is_image_set(pattern_set) else N


def cell_rng(seed: int, stream: str, *key) -> np.random.Generator:
    """A generator that depends only on the seed, the stream ('cells' or 'tuning') and the cell."""
    text = "|".join([stream, *map(str, key)])
    return np.random.default_rng([seed, zlib.crc32(text.encode())])


def make_problem(pattern_set: str, K: int, N: int, n_cues: int, corruption: str, rng: np.random.Generator):
    """(patterns K x N, targets, cues n_cues x N) for one pattern-set instance."""
    if is_image_set(pattern_set):
        name, same_class = IMAGE_FAMILIES[pattern_set]
        image_set = load_image_set(name)
        patterns, targets = image_patterns(image_set, K, n_cues, rng, same_class)
    else:
        family = parse_pattern_set(pattern_set)
        if family["family"] == "clustered":
            size = min(CLUSTER_SIZE, K)
            patterns, _ = clustered_patterns(math.ceil(K / size), size, N, rng, CLUSTER_MEMBER_FLIP)
            patterns = patterns[:K]
        else:
            patterns = random_patterns(K, N, rng, family["correlation"])
        targets = rng.choice(K, size=n_cues, replace=n_cues > K)
    kind, level = parse_corruption(corruption)
    if kind == "occlude" and not is_image_set(pattern_set):
        raise InputError(f"corruption {corruption!r} applies to image pattern sets only, not {pattern_set!r}")
    shape = load_image_set(IMAGE_FAMILIES[pattern_set][0]).shape if is_image_set(pattern_set) else None
    # targets drawn without replacement where they can be (the earlier tables' draws): see analysis/problems.py
    return patterns, targets, corrupt(patterns[targets], [(kind, level)], rng, shape)


# -- one cell -------------------------------------------------------------------------------------------
def cap_reason(model: ModelSpec, load: float, N: int, K: int) -> str:
    if load > model.max_load:
        return f"skipped: K/N = {load:g} above this model's cost cap {model.max_load:g}"
    if N > model.max_N:
        return f"skipped: N = {N} above this model's cost cap {model.max_N}"
    if K > model.max_K:
        return f"skipped: K = {K} above this model's cost cap {model.max_K}"
    return ""


def cell_size(values: dict) -> tuple[int, int]:
    """(N, K) of a cell: N of its pattern set (an image set's pixels), K = round(load N), at least 1."""
    N = pattern_set_N(values["pattern_set"], values["N"])
    return N, max(1, int(round(values["load"] * N)))


def cell_columns(values: dict, model: ModelSpec, N: int, K: int) -> dict:
    """The columns of a row that say which cell and model it is."""
    family = parse_pattern_set(values["pattern_set"])
    kind, level = parse_corruption(values["corruption"])
    return {"model": model.name, "kind": model.kind, "pattern_set": values["pattern_set"], "family": family["family"],
            "correlation": family["correlation"], "load": values["load"], "K": K, "N": N,
            "corruption": values["corruption"], "corruption_kind": kind, "corruption_level": level,
            "options": json.dumps(resolve_options(model.options, N), sort_keys=True)}


def run_cell(values: dict, models: tuple, stream: str = "cells") -> dict:
    """Every model on the same instances of one cell (values: the point's fields). Returns
    {'rows': [one per model], 'gallery': the first cues and what each model retrieved, or None}."""
    pattern_set, load, corruption = values["pattern_set"], values["load"], values["corruption"]
    N, K = cell_size(values)
    shown = slice(0, values.get("gallery_cues", 4))
    keep_gallery = stream == "cells" and is_image_set(pattern_set) and values.get("gallery_load") == load
    per_model = {m.name: [] for m in models}
    seconds = {m.name: 0.0 for m in models}
    gallery = None
    for instance in range(values["instances"]):
        rng = cell_rng(values["seed"], stream, pattern_set, load, corruption, instance)
        patterns, targets, cues = make_problem(pattern_set, K, N, values["cues"], corruption, rng)
        model_seed = int(rng.integers(2**31))
        if keep_gallery and instance == 0:
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
                gallery["states"][m.name] = result.states[shown]
    rows = []
    for m in models:
        row = cell_columns(values, m, N, K)
        reason = cap_reason(m, load, N, K)
        if reason:
            row.update(summarise({k: np.zeros(0) for k in (*TRIAL_METRICS, *RUN_FIELDS)}))
            row.update(status=reason, seconds=0.0)
        else:
            joined = {k: np.concatenate([t[k] for t in per_model[m.name]]) for k in per_model[m.name][0]}
            row.update(summarise(joined))
            row.update(status="ok", seconds=seconds[m.name])
        rows.append(row)
    return {"rows": rows, "gallery": gallery}


def tuning_candidates(models: tuple) -> list[tuple[ModelSpec, ModelSpec, dict]]:
    """(candidate, its model, its choice of options) for every point of every model's `tune` grid; the
    candidates are named <model>#<i>."""
    candidates = []
    for m in models:
        if not m.tune:
            continue
        keys = sorted(m.tune)
        for values in np.array(np.meshgrid(*[np.arange(len(m.tune[k])) for k in keys])).reshape(len(keys), -1).T:
            choice = {k: m.tune[k][i] for k, i in zip(keys, values)}
            candidates.append((m, choice))
    return [(replace(m, name=f"{m.name}#{i}", options={**m.options, **choice}), m, choice)
            for i, (m, choice) in enumerate(candidates)]


def tuning_study(study: Study) -> Study:
    """The first stage of a benchmark: every tuning candidate on the tuning cells, on their own seed stream."""
    tuning = study.settings["tuning"]
    cells = tuning["cells"]
    axis = Axis("cell", {"pattern_set": tuple(c[0] for c in cells), "load": tuple(float(c[1]) for c in cells),
                         "corruption": tuple(c[2] for c in cells)})
    candidates = [c.settings() for c, _, _ in tuning_candidates(models_of(study))]
    fixed = {"seed": study.fixed["seed"], "N": study.fixed["N"], "instances": tuning["instances"],
             "cues": tuning["cues"]}
    return Study(name=f"{study.name} (tuning)", evaluation="benchmark", fixed=fixed, axes=(axis,), metrics=METRICS,
                 settings={"models": candidates, "stream": "tuning"})


def tuning_record(study: Study) -> dict:
    """tuning.json of a benchmark before any score: its tuning cells, instances and cues."""
    t = study.settings["tuning"]
    return {"cells": [list(c) for c in t["cells"]], "instances": t["instances"], "cues": t["cues"],
            "stream": "tuning (seeds disjoint from the reported cells)", "models": {}}


def choose_tuned(study: Study, records: dict) -> tuple[tuple, dict]:
    """The winner of each model's tuning grid: the highest mean nearest-memory accuracy over the tuning cells,
    then the highest exact-match rate, then the first in the grid. Returns (models with the chosen options,
    a record of every score)."""
    record = tuning_record(study)
    models = models_of(study)
    jobs = tuning_candidates(models)
    scores = {j[0].name: [] for j in jobs}
    for rec in records.values():
        for row in rec.get("rows") or []:
            if row["status"] == "ok":
                scores[row["model"]].append((row["nearest_accuracy"], row["exact_match"]))
    chosen = {}
    for m in models:
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
                  for m in models)
    return tuned, record


# -- memory -------------------------------------------------------------------------------------------
N2_KINDS = ("hopfield", "hopfield-continuous")  # an N x N weight matrix
NAAM_KIND = "naam"  # N x N synapses and processes per cue, several copies during a step, in chunks


def cell_bytes(values: dict, models: tuple) -> int:
    """Estimated peak memory of one cell: the patterns and cues, plus the largest model's own state."""
    N, K = cell_size(values)
    n_cues = values["cues"]
    own = [0]
    for m in models:
        if cap_reason(m, values["load"], N, K):
            continue
        if m.kind in N2_KINDS:
            own.append(2 * 8 * N * N)
        elif m.kind == NAAM_KIND:
            own.append(naam_peak_bytes(N, K, n_cues))
        else:  # gains, overlaps and their traces: a few B x K arrays
            own.append(8 * 8 * n_cues * K)
    return pattern_bytes(K, N, n_cues) + max(own)


def check_memory(study: Study, workers: int = 1) -> None:
    """Refuse, before anything runs, a benchmark whose largest cell (times the workers running cells at
    once) needs more memory than this machine has available."""
    from astrogate.analysis.study import enumerate_points

    available, total = machine_memory()
    models = models_of(study)
    cells = [p.values for p in enumerate_points(study)]
    if study.settings.get("tuning", {}).get("cells") and any(m.tune for m in models):
        cells += [p.values for p in enumerate_points(tuning_study(study))]
    for values in cells:
        need = workers * cell_bytes(values, models)
        if need > available:
            on = f" on {workers} workers" if workers > 1 else ""
            raise InputError(f"{study.path or study.name}: the cell ({values['pattern_set']}, K/N = "
                             f"{values['load']:g}, {values['corruption']}) needs about {gib(need)} of memory{on}, "
                             f"more than the {gib(available)} available on this machine ({gib(total)} in all): "
                             f"lower N, the loads or the cues, or cap the models (max_load, max_N, max_K)")


# -- the evaluation ------------------------------------------------------------------------------------
def _checked(parse):
    def check(value):
        parse(value)
        return value
    return check


def _corruptions(values):
    for value in values:
        parse_corruption(value)
    return values


class Benchmark(Evaluation):
    name = "benchmark"
    fields = {"seed": Field("int", seed(), fixed_only=True), "N": Field("int", whole("N"), fixed_only=True),
              "instances": Field("int", whole("instances"), fixed_only=True),
              "cues": Field("int", whole("cues"), fixed_only=True),
              "pattern_set": Field("str", _checked(parse_pattern_set)),
              "corruption": Field("str", _checked(parse_corruption)),
              "load": Field("float", positive("load")),
              "image_corruptions": Field("strings", _corruptions, fixed_only=True),
              "gallery_load": Field("float", positive("gallery_load"), fixed_only=True),
              "gallery_cues": Field("int", whole("gallery_cues"), fixed_only=True)}
    tables = ("models", "tuning")
    metrics = METRICS
    default_metrics = METRICS
    dims = ("model",)
    text_columns = TEXT_COLUMNS
    outputs = ("results.md", "tuning.json", "summary.json", "tuning", "exact_match_vs_load.png",
               "nearest_accuracy_vs_load.png", "gallery.png")

    def settings(self, tables: dict, loc) -> dict:
        models = _parse_models(tables["models"], loc)
        return {"models": [m.settings() for m in models], "tuning": _parse_tuning(tables["tuning"], models, loc),
                "stream": "cells"}

    def complete(self, fixed: dict, swept: dict, loc) -> None:
        for key in ("N", "instances", "cues", *CELL_FIELDS):
            if key not in fixed and key not in swept:
                raise loc.error(f"{key!r} must be given (a benchmark needs N, instances, cues, pattern_set, "
                                f"corruption and load)", "fixed")
        fixed.setdefault("seed", 0)
        fixed.setdefault("gallery_cues", 4)
        fixed.setdefault("image_corruptions", ())

    def prepare(self, study: Study) -> Study:
        """The grid as a benchmark runs it: pattern_set x corruption x load, in this order; the corruption
        axis also holds the image sets' corruptions (image_corruptions), each set taking its own."""
        if study.settings.get("stream") == "tuning":
            return study
        by_name = {a.name: a for a in study.axes}
        for axis in study.axes:
            if axis.name not in CELL_FIELDS:
                raise InputError(f"{study.path}:1: a benchmark's grid is pattern_set x corruption x load: give "
                                 f"each under [axes] or [fixed], not in the [[zip]] {axis.name!r}")
        fixed = dict(study.fixed)
        axes = [by_name.get(name) or Axis(name, {name: (fixed.pop(name),)}) for name in CELL_FIELDS]
        generated = axes[1].values["corruption"]
        union = generated + tuple(c for c in fixed["image_corruptions"] if c not in generated)
        axes[1] = Axis("corruption", {"corruption": union})
        return replace(study, fixed=fixed, axes=tuple(axes), settings={**study.settings, "corruptions": list(generated)})

    def applies(self, values: dict, settings: dict) -> bool:
        if settings.get("stream") == "tuning":
            return True
        if is_image_set(values["pattern_set"]):
            return values["corruption"] in values["image_corruptions"]
        return values["corruption"] in settings["corruptions"]

    def check(self, study: Study, loc) -> None:
        from astrogate.analysis.study import enumerate_points

        cells = [(p.values, ("axes", "load")) for p in enumerate_points(study)]
        if any(m.tune for m in models_of(study)):
            cells += [(p.values, ("tuning", "cells")) for p in enumerate_points(tuning_study(study))]
        for values, where in cells:
            pattern_set, load, corruption = values["pattern_set"], values["load"], values["corruption"]
            N = pattern_set_N(pattern_set, values["N"])
            if not load * N < MAX_COUNT:
                raise loc.error(f"load = {load:g} at N = {N} is K = {load * N:.3g} patterns, more than {MAX_COUNT}",
                                *where)
            if parse_corruption(corruption)[0] == "occlude" and not is_image_set(pattern_set):
                raise loc.error(f"corruption {corruption!r} applies to image pattern sets only, not {pattern_set!r}", *where)
            images = len(load_image_set(IMAGE_FAMILIES[pattern_set][0]).images) if is_image_set(pattern_set) else None
            if images is not None and cell_size(values)[1] > images:
                raise loc.error(f"pattern set {pattern_set!r} has {images} distinct images, fewer than K = "
                                f"{cell_size(values)[1]} at load {load:g}", *where)
        try:
            check_memory(study)
        except InputError as exc:
            raise loc.error(str(exc), "axes") from None

    def run(self, values: dict, settings: dict, context: dict) -> dict:
        from threadpoolctl import threadpool_limits

        models = tuple(ModelSpec(**m) for m in settings["models"])
        with threadpool_limits(1):  # one BLAS thread per process: threads fight over shared cores (measured 7x slower)
            return run_cell(values, models, settings["stream"])

    def valid(self, record: dict) -> bool:
        gallery = record.get("gallery")
        return valid_rows(record.get("rows"), TEXT_COLUMNS) and (gallery is None or isinstance(gallery, dict))

    def rows(self, point, record: dict, study: Study) -> list[dict]:
        if record["status"] == "ok":
            return record["rows"]
        N, K = cell_size(point.values)
        return [{**cell_columns(point.values, m, N, K), "status": record["status"], "error": record.get("error") or ""}
                for m in models_of(study)]

    def execute(self, study: Study, runner) -> None:
        """The tuning study (when a model tunes), then the cells with the chosen options."""
        models, record = models_of(study), tuning_record(study)
        if any(m.tune for m in models):
            outcome = runner.run(tuning_study(study), sub="tuning", results=False)
            if not outcome.complete:
                return
            models, record = choose_tuned(study, outcome.records)
        runner.notes["tuning"] = record
        runner.run(replace(study, settings={**study.settings,
                                            "models": [m.settings() for m in inherit_parameters(models)]}))

    def finish(self, study: Study, finished, stage: Path) -> list[str]:
        from astrogate.analysis.bench_plots import plot_accuracy_vs_load, plot_gallery
        from astrogate.analysis.io import write_json
        from astrogate.analysis.study import enumerate_points
        from astrogate.files import write_text

        table = finished.table
        loads = study.axes[2].values["load"]
        write_text(stage / "results.md", "".join(
            f"### {metric}\n\n{markdown_table(table, metric, loads=loads)}\n"
            for metric in ("exact_match", "nearest_accuracy")), "Markdown table")
        write_json(stage / "tuning.json", finished.notes.get("tuning", {}))
        figures = plot_accuracy_vs_load(table, stage)
        points = enumerate_points(study)
        gallery = [{"cell": (p.values["pattern_set"], p.values["load"], p.values["corruption"]),
                    "gallery": finished.records[p.id]["gallery"]} for p in points
                   if (finished.records.get(p.id) or {}).get("gallery")]
        if gallery:
            figures.append(plot_gallery(gallery, stage / "gallery.png"))
        capped = sorted({f"{r['model']}: {r['status']}" for _, r in table.iterrows() if r["status"] != "ok"})
        models = models_of(study)
        outputs = ["results.csv", "results.nc", "results.md", "summary.json", "tuning.json"]
        summary = {"config": str(study.path or study.name), "seed": study.fixed["seed"], "cells": len(points),
                   "workers": finished.workers, "runtime_seconds": finished.runtime_seconds,
                   "models": {m.name: {"kind": m.kind, "options": m.options, "max_load": m.max_load, "max_N": m.max_N,
                                       "max_K": m.max_K, **({"params_from": m.params_from} if m.params_from else {})}
                              for m in models},
                   "cost_caps": capped, "outputs": outputs, "figures": [p.name for p in figures]}
        write_json(stage / "summary.json", summary)
        return outputs


BENCHMARK = Benchmark()


def _parse_models(table: dict, loc) -> tuple[ModelSpec, ...]:
    from astrogate.analysis.spec import short

    models = []
    for name, entry in table.items():
        where = f"models.{name}"
        if not isinstance(entry, dict) or "kind" not in entry:
            raise loc.error(f"[{where}] needs a kind", where)
        if entry["kind"] not in REGISTRY:
            raise loc.error(f"[{where}] unknown kind {short(entry['kind'])} (known: {', '.join(REGISTRY)})", where, "kind")
        tune = entry.get("tune", {})
        if not isinstance(tune, dict) or not all(isinstance(v, list) and v for v in tune.values()):
            raise loc.error(f"[{where}] tune must map option names to non-empty lists of candidate values", where, "tune")
        params_from = entry.get("params_from", "")
        if not isinstance(params_from, str):
            raise loc.error(f"[{where}] params_from must be the name of a model, got {short(params_from)}", where,
                            "params_from")
        if params_from and tune:
            raise loc.error(f"[{where}] params_from: a model takes its parameters from another model or tunes them, "
                            f"not both", where, "params_from")
        caps = {}
        max_load = entry.get("max_load", math.inf)
        if isinstance(max_load, bool) or not isinstance(max_load, (int, float)) or not max_load > 0:
            raise loc.error(f"[{where}] max_load must be a positive number (inf: no cap), got {short(max_load)}", where,
                            "max_load")
        caps["max_load"] = float(max_load)
        for key in ("max_N", "max_K"):
            value = entry.get(key, 10**9)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
                raise loc.error(f"[{where}] {key} must be a whole number from 1 to {MAX_COUNT}, got {short(value)}",
                                where, key)
            caps[key] = value
        options = {k: v for k, v in entry.items() if k not in MODEL_KEYS}
        model = ModelSpec(name, entry["kind"], options, tune=tune, params_from=params_from, **caps)
        try:  # catches unknown options now rather than an hour into the run
            for choice in itertools.product(*tune.values()):
                probe = {**options, **dict(zip(tune, choice))}
                make_benchmark_model(entry["kind"], np.ones((2, 4)), **resolve_options(probe, 4))
        except InputError as exc:
            raise loc.error(f"[{where}] {exc}", where) from None
        except (TypeError, ValueError, OverflowError) as exc:
            raise loc.error(f"[{where}] bad option: {exc}", where) from None
        models.append(model)
    if not models:
        raise loc.error("no models given: add [models.NAME] tables with a kind", "models")
    kinds = {m.name: m.kind for m in models}
    for m in models:
        if m.params_from and kinds.get(m.params_from) != "gated":
            raise loc.error(f"[models.{m.name}] params_from must name a model of kind 'gated' in this config, got "
                            f"{m.params_from!r}", f"models.{m.name}", "params_from")
    return tuple(models)


def _parse_tuning(table: dict, models: tuple, loc) -> dict:
    from astrogate.analysis.spec import short
    from astrogate.models.checks import whole_number

    for key in table:
        if key not in TUNING_KEYS:
            raise loc.error(f"unknown key {key!r} in [tuning] (known: {', '.join(sorted(TUNING_KEYS))})", "tuning", key)
    counts = {}
    for key, default in (("instances", 1), ("cues", 16)):
        try:
            counts[key] = whole_number(table.get(key, default), f"tuning {key}", minimum=1)
        except InputError as exc:
            raise loc.error(str(exc), "tuning", key) from None
    cells = table.get("cells", [])
    if not isinstance(cells, list):
        raise loc.error("cells must be a list of {pattern_set, load, corruption} tables", "tuning", "cells")
    parsed = []
    for cell in cells:
        if not isinstance(cell, dict) or set(cell) != set(CELL_FIELDS):
            raise loc.error(f"each tuning cell is {{pattern_set = ..., load = ..., corruption = ...}}, got "
                            f"{short(cell)}", "tuning", "cells")
        pattern_set, load, corruption = cell["pattern_set"], cell["load"], cell["corruption"]
        try:
            if not isinstance(pattern_set, str) or not isinstance(corruption, str):
                raise InputError(f"pattern_set and corruption are names, got {short(pattern_set)} and {short(corruption)}")
            parse_pattern_set(pattern_set)
            parse_corruption(corruption)
            if isinstance(load, bool) or not isinstance(load, (int, float)) or not 0 < load < math.inf:
                raise InputError(f"load must be a positive finite number, got {short(load)}")
        except InputError as exc:
            raise loc.error(f"tuning cell: {exc}", "tuning", "cells") from None
        parsed.append([pattern_set, float(load), corruption])
    if any(m.tune for m in models) and not parsed:
        raise loc.error("models ask for tuning but no tuning cells are given", "tuning", "cells")
    return {"cells": parsed, **counts}


# -- the Python API --------------------------------------------------------------------------------------
def load_benchmark_config(config: str | Path = "full") -> Study:
    """A shipped benchmark study by name ("quick": the small grid, "full", "spiking") or a TOML file (the
    study schema with evaluation = "benchmark", or a benchmark config of the earlier form); every error
    names the file and the line."""
    from astrogate.analysis.spec import load_study

    if isinstance(config, str) and config in NAMED_CONFIGS:
        from astrogate.configs import config_path

        config = config_path(f"bench_{config}.toml")
    study = load_study(checks.path(config, "config"))
    if study.evaluation != "benchmark":
        raise InputError(f"{config}: a study of evaluation {study.evaluation!r}, not a benchmark config")
    return study


def select_models(config: Study, names: list[str]) -> Study:
    """The benchmark with only the models named (in the config's order); an InputError names an unknown one or
    a model whose params_from is left out."""
    models = models_of(config)
    known = [m.name for m in models]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InputError(f"model(s) {', '.join(unknown)} not in config {str(config.path or config.name)!r} (its models: "
                         f"{', '.join(known)})")
    kept = tuple(m for m in models if m.name in names)
    for m in kept:
        if m.params_from and m.params_from not in names:
            raise InputError(f"model {m.name!r} takes its parameters from {m.params_from!r}: select that one too")
    # the file's text no longer describes the study: the folder gets the study as the engine writes it
    return replace(config, settings={**config.settings, "models": [m.settings() for m in kept]}, text="")


def run_benchmark(config: Study, out: str | Path, workers: int = 1, show_progress: bool = True, log=print,
                  resume: bool = False, force: bool = False) -> dict:
    """Tune, run the grid, write results.csv, results.nc, results.md, tuning.json, summary.json and the
    figures into `out`. workers (local Dask processes) is capped at the cores and the cells (log says so).
    Returns {"table", "summary", "tuning", "out"}."""
    import pandas as pd

    from astrogate.analysis.engine import Outcome, cap_workers, run_study
    from astrogate.files import read_text

    checks.instance(config, Study, "config", "a benchmark study (load_benchmark_config)")
    out = checks.path(out, "out")
    show_progress, resume, force = (checks.flag(show_progress, "show_progress"), checks.flag(resume, "resume"),
                                    checks.flag(force, "force"))
    if not callable(log):
        raise InputError(f"log must be a function of one line (print, say), got {checks.shown(log)}")
    workers, note = cap_workers(workers, config.n_points, "cell")
    if note:
        log(note)
    check_memory(config, workers)
    outcome: Outcome = run_study(config, out, workers=workers, resume=resume, force=force, progress=show_progress,
                                 log=log)
    out = Path(out)
    if not outcome.complete:
        raise InputError(f"the benchmark in {out} did not finish: continue it with --resume")
    return {"table": pd.read_csv(out / "results.csv"), "summary": json.loads(read_text(out / "summary.json", "summary")),
            "tuning": json.loads(read_text(out / "tuning.json", "tuning record")), "out": out}


def grid_cells(study: Study) -> list[tuple]:
    """(pattern set, load, corruption) of every cell of a benchmark, in the order they run."""
    from astrogate.analysis.study import enumerate_points

    return [(p.values["pattern_set"], p.values["load"], p.values["corruption"]) for p in enumerate_points(study)]


def markdown_table(table, metric: str = "exact_match", loads=(0.14, 2.0, 10.0), models=None) -> str:
    """A results table for the README: one row per (pattern set, corruption, load), one column per model,
    each entry 'rate [95 % CI]'; '-' where the model was skipped by its cost cap."""
    models = list(models or dict.fromkeys(table["model"]))
    lines = ["| pattern set | corruption | K/N | " + " | ".join(models) + " |",
             "|---|---|---|" + "---|" * len(models)]
    for (pattern_set, corruption), group in table.groupby(["pattern_set", "corruption"], sort=False):
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
            lines.append(f"| {pattern_set} | {corruption} | {load:g} | " + " | ".join(cells) + " |")
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
