"""Sweep specifications: a TOML file read with tomllib, checked completely before anything runs.

The format is documented in runs/README.md. Every error names the file and the line, as
`FILE:LINE: problem`. tomllib gives no line numbers for values, so `_Locator` finds the line of
a key by scanning the text within its table.
"""

from __future__ import annotations

import itertools
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrogate.errors import InputError
from astrogate.models.checks import euler_steps, gib, machine_memory, pattern_bytes
from astrogate.models.parameters import PAPER_NAMES, PARAMETER_NAMES, Parameters, check_field

PARAMETER_FIELDS = PARAMETER_NAMES  # the model parameters, in astrogate's names or the paper's
# fields of the retrieval problem, besides the model parameters; load = K / N, tau_ratio = tau_g / tau_u
PROBLEM_FIELDS = {
    "N": int, "K": int, "load": float, "tau_ratio": float,
    "correlation": float, "flip": float, "mask": float, "trials": int, "seed": int,
}
PROBLEM_LIMITS = {
    "N": (lambda v: v >= 2, ">= 2"), "K": (lambda v: v >= 1, ">= 1"), "trials": (lambda v: v >= 1, ">= 1"),
    "seed": (lambda v: v >= 0, ">= 0"), "load": (lambda v: v > 0, "> 0"), "tau_ratio": (lambda v: v > 0, "> 0"),
    **{name: (lambda v: 0 <= v <= 1, "in [0, 1]") for name in ("correlation", "flip", "mask")},
}
PROBLEM_DEFAULTS = {"correlation": 0.0, "flip": 0.2, "mask": 0.0, "trials": 16, "seed": 0}
# the same quantity given two ways: at most one of each pair (tau_ratio sets tau_g, which tau_p sets too)
EXCLUSIVE = (("K", "load"), ("tau_g", "tau_ratio"), ("tau_p", "tau_ratio"),
             *((field, paper) for paper, field in PAPER_NAMES.items()))

METRICS = ("nearest_accuracy", "exact_match", "final_overlap", "converged", "t_converged", "max_gain", "run_seconds",
           # the paper's observables (analysis/metrics.py), means over the point's trials
           "soft_hamming_error", "hamming_error", "perplexity", "convergence_time")
DEFAULT_METRICS = ("nearest_accuracy", "exact_match", "final_overlap", "converged", "t_converged")

BACKENDS = ("abstract", "brian2")
BRIAN2_DEVICES = ("runtime", "cpp_standalone", "cuda_standalone")
# [model] keys: name -> (type, default); the brian2 keys are allowed only with backend = "brian2"
# settings: the abstract model's run settings preset ("fast" or "reference", models/abstract.py); method, stop and
# dtype change single fields of it ("" keeps the preset's)
RUN_KEYS = {"backend": (str, "abstract"), "settings": (str, "fast"), "method": (str, ""), "stop": (str, ""),
            "dtype": (str, ""), "form": (str, ""), "duration": (float, 500.0), "tol": (float, 1e-6)}
ABSTRACT_ONLY_KEYS = ("settings", "stop", "dtype", "form")
RUN_SETTING_KEYS = ("method", "stop", "dtype", "form")  # single fields of the settings preset
BRIAN2_KEYS = {"device": (str, "cpp_standalone"), "neuron": (str, "rate"), "target": (str, "cython"),
               "gating": (str, "factorised")}

SECTIONS = ("sweep", "model", "fixed", "axes", "zip")
MAX_AXIS_VALUES = 10_000
MAX_POINTS = 1_000_000
TRACE_SAMPLES = 400  # about as many trace samples as models/abstract.py sample_steps keeps by default


@dataclass(frozen=True)
class Axis:
    """One dimension of the grid: a single field, or several zipped fields that vary together."""

    name: str
    values: dict[str, tuple]  # field -> values along this dimension, all the same length

    @property
    def size(self) -> int:
        return len(next(iter(self.values.values())))


@dataclass(frozen=True)
class SweepSpec:
    path: Path
    text: str
    name: str
    description: str
    model: dict  # backend, method, duration, tol (+ brian2 keys)
    fixed: dict  # field -> value, problem defaults filled in
    axes: tuple[Axis, ...]
    metrics: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(axis.size for axis in self.axes)

    @property
    def n_points(self) -> int:
        return math.prod(self.shape)


class _Locator:
    """Line numbers of keys, found by scanning the text (tomllib does not report them)."""

    HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\- ]+?)\s*\]\]?\s*(#.*)?$")

    def __init__(self, path: Path, text: str):
        self.path = path
        self.lines = text.splitlines()

    def line(self, table: str | None = None, key: str | None = None, occurrence: int = 0) -> int | None:
        """The line of `key =` inside the `occurrence`-th [table] (or [[table]]; table None: before any
        header); the header's line if no key."""
        current, seen = None, {None: 0}
        for number, text in enumerate(self.lines, start=1):
            header = self.HEADER.match(text)
            if header:
                current = header.group(2)
                index = seen.get(current, -1) + 1
                seen[current] = index
                if key is None and current == table and index == occurrence:
                    return number
                continue
            in_table = current == table and seen.get(current) == occurrence
            if key is not None and in_table and re.match(rf"^\s*{re.escape(key)}\s*=", text):
                return number
        return None

    def error(self, problem: str, table: str | None = None, key: str | None = None, occurrence: int = 0) -> InputError:
        number = self.line(table, key, occurrence) if table or key else None
        if number is None and table:
            number = self.line(table, None, occurrence)
        return InputError(f"{self.path}:{number or 1}: {problem}")


def load_spec(path: str | Path) -> SweepSpec:
    """A sweep spec from a TOML file, or a shipped study by name ("study_load_taug", "study_beta_correlation")."""
    from astrogate.files import file_status, read_text
    from astrogate.models.checks import path as check_path

    path = check_path(path, "spec")
    if file_status(path, "sweep spec") is None and path.suffix == "" and len(path.parts) == 1:
        from astrogate.configs import config_path

        if config_path(f"{path}.toml").is_file():
            path = config_path(f"{path}.toml")
    return parse_spec(read_text(path, "sweep spec"), path)


def parse_spec(text: str, path: str | Path = "<spec>") -> SweepSpec:
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise InputError(f"{path}:{where.group(1) if where else 1}: invalid TOML: {message}") from None
    loc = _Locator(path, text)

    for section, content in data.items():
        if not isinstance(content, (dict, list)):
            raise loc.error(f"{section!r} is outside any table: model parameters and problem fields go under "
                            f"[fixed] or [axes]", None, section)
        if section not in SECTIONS:
            raise loc.error(f"unknown section [{section}]; sections are {', '.join(SECTIONS)}", section)
    sweep = _table(data, "sweep", loc)
    for key in sweep:
        if key not in ("name", "description", "metrics"):
            raise loc.error(f"unknown key {key!r} in [sweep]; use name, description, metrics", "sweep", key)
    name = _typed(sweep.get("name", path.stem), str, loc, "sweep", "name")
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or name != name.strip():
        raise loc.error(f"name {name!r} must be one folder name (it names runs/<name>): no '/', '\\', '.' or '..', "
                        f"not empty", "sweep", "name")
    description = _typed(sweep.get("description", ""), str, loc, "sweep", "description")
    metrics = tuple(sweep.get("metrics", DEFAULT_METRICS))
    if "metrics" in sweep:
        if not isinstance(sweep["metrics"], list) or not sweep["metrics"]:
            raise loc.error("metrics must be a non-empty list of names", "sweep", "metrics")
        for metric in metrics:
            if metric not in METRICS:
                raise loc.error(f"unknown metric {metric!r}; known: {', '.join(METRICS)}", "sweep", "metrics")

    model = _parse_model(_table(data, "model", loc), loc)
    fixed = {}
    for key, value in _table(data, "fixed", loc).items():
        fixed[key] = _check_value(key, value, loc, "fixed", key)

    axes, swept = [], {}
    for key, grid in _table(data, "axes", loc).items():
        _check_field_name(key, loc, "axes", key)
        values = _grid(key, grid, loc, "axes", key)
        axes.append(Axis(key, {key: values}))
        swept[key] = loc.line("axes", key)
    zips = data.get("zip", [])
    if not isinstance(zips, list):
        raise loc.error("zipped axes are written as [[zip]] tables", "zip")
    for index, group in enumerate(zips):
        axis = _parse_zip(group, index, loc)
        for key in axis.values:
            if key in swept:
                raise loc.error(f"{key!r} is swept twice", "zip", key, index)
            swept[key] = loc.line("zip", key, index)
        if axis.name in [a.name for a in axes]:
            raise loc.error(f"axis name {axis.name!r} is used twice", "zip", "name", index)
        axes.append(axis)

    for key in swept:
        if key in fixed:
            raise loc.error(f"{key!r} is both fixed and swept", "fixed", key)
    given = set(fixed) | set(swept)
    for a, b in EXCLUSIVE:
        if a in given and b in given:
            raise InputError(f"{path}:{swept.get(b) or loc.line('fixed', b) or 1}: give {a!r} or {b!r}, not both")
    if "N" not in given:
        raise loc.error("'N' must be fixed or swept", "fixed")
    if "K" not in given and "load" not in given:
        raise loc.error("the number of patterns must be given, as 'K' or as 'load' (K / N)", "fixed")
    for key, value in PROBLEM_DEFAULTS.items():
        if key not in given:
            fixed[key] = value
    spec = SweepSpec(path=path, text=text, name=name, description=description, model=model, fixed=fixed,
                     axes=tuple(axes), metrics=metrics)
    _check_points(spec, loc)
    return spec


def point_values(spec: SweepSpec):
    """Every point's field values, in grid order (fixed fields and the point's swept ones)."""
    for index in itertools.product(*(range(axis.size) for axis in spec.axes)):
        values = dict(spec.fixed)
        for axis, i in zip(spec.axes, index):
            values.update({name: axis_values[i] for name, axis_values in axis.values.items()})
        yield index, values


def point_parameters(values: dict) -> Parameters:
    """The model parameters of a point: its parameter fields, tau_g = tau_ratio * tau_u where given."""
    params = Parameters(**{k: v for k, v in values.items() if k in PARAMETER_FIELDS})
    if "tau_ratio" in values:
        params = params.updated(tau_g=values["tau_ratio"] * params.tau_u)
    return params


def pattern_count(values: dict) -> int:
    """K, given directly or as load = K / N."""
    return values["K"] if "K" in values else int(round(values["load"] * values["N"]))


def point_bytes(values: dict, model: dict) -> int:
    """Estimated peak memory of one point: its patterns and its batch of trials with their traces; a Brian2
    network also holds about 2 N K synapses (weights and indices)."""
    N, K = values["N"], pattern_count(values)
    trials = values["trials"]
    traces = 2 * 8 * TRACE_SAMPLES * trials * K
    synapses = 2 * N * K * 48 if model["backend"] == "brian2" else 0
    return pattern_bytes(K, N, trials) + traces + synapses


def _check_points(spec: SweepSpec, loc: _Locator) -> None:
    """Every combination of values before anything runs: the grid's size, each point's parameters (dt
    against the time constants, the number of steps) and its memory against this machine's."""
    if spec.n_points > MAX_POINTS:
        raise loc.error(f"the grid has {spec.n_points} points ({' x '.join(map(str, spec.shape))}), more than "
                        f"{MAX_POINTS}: each point is a file and a task", "axes")
    available, total = machine_memory()
    checked = set()
    for index, values in point_values(spec):
        where = ", ".join(f"{axis.name} = {values[axis.name] if axis.name in values else index[i]}"
                          for i, axis in enumerate(spec.axes)) or "the fixed point"
        key = tuple(sorted((k, v) for k, v in values.items() if k in PARAMETER_FIELDS or k == "tau_ratio"))
        if key not in checked:
            checked.add(key)
            try:
                params = point_parameters(values)
                euler_steps(spec.model["duration"], params.dt)
            except InputError as exc:
                raise loc.error(f"at {where}: {exc}", "axes" if spec.axes else "fixed") from None
        if pattern_count(values) < 1:
            raise loc.error(f"at {where}: load = {values['load']:g} with N = {values['N']} is K = "
                            f"{values['load'] * values['N']:.3g}, which rounds to no pattern", "axes" if spec.axes else "fixed")
        need = point_bytes(values, spec.model)
        if need > available:
            raise loc.error(f"at {where}: a point needs about {gib(need)} of memory, more than the {gib(available)} "
                            f"available on this machine ({gib(total)} in all): choose smaller N, K or trials",
                            "axes" if spec.axes else "fixed")


def _table(data: dict, section: str, loc: _Locator) -> dict:
    table = data.get(section, {})
    if not isinstance(table, dict):
        raise loc.error(f"[{section}] must be a table", section)
    return table


def _parse_model(table: dict, loc: _Locator) -> dict:
    model = {key: default for key, (_, default) in RUN_KEYS.items()}
    for key, value in table.items():
        if key in RUN_KEYS:
            model[key] = _typed(value, RUN_KEYS[key][0], loc, "model", key)
        elif key not in BRIAN2_KEYS:
            known = ", ".join([*RUN_KEYS, *BRIAN2_KEYS])
            raise loc.error(f"unknown key {key!r} in [model]; known: {known}", "model", key)
    if model["backend"] not in BACKENDS:
        raise loc.error(f"unknown backend {model['backend']!r}; use {' or '.join(BACKENDS)}", "model", "backend")
    from astrogate.models.abstract import DTYPES, FORMS, METHODS, SETTINGS, STOP_RULES

    for key, allowed in (("settings", SETTINGS), ("method", METHODS), ("stop", STOP_RULES), ("dtype", DTYPES),
                         ("form", FORMS)):
        if model[key] not in allowed and not (key != "settings" and model[key] == ""):
            raise loc.error(f"unknown {key} {model[key]!r}; use {', '.join(allowed)}", "model", key)
    if model["backend"] == "abstract":
        from astrogate.models.abstract import run_settings

        settings = run_settings(model["settings"], **{k: model[k] for k in RUN_SETTING_KEYS if model[k]})
        if settings.method == "adaptive" and (settings.stop, settings.dtype) != ("fixed_point", "float64"):
            raise loc.error('method "adaptive" stops at the fixed point in float64: add settings = "reference"',
                            "model", "method")
        if settings.form == "replicator" and (settings.method, settings.stop, settings.dtype) != (
                "euler", "fixed_point", "float64"):
            raise loc.error('form "replicator" runs forward Euler to the fixed point in float64: add settings = '
                            '"reference"', "model", "form")
    if not model["duration"] > 0:
        raise loc.error("duration must be a positive number of ms", "model", "duration")
    if not model["tol"] >= 0:
        raise loc.error("tol must be >= 0", "model", "tol")
    brian2_keys = [key for key in table if key in BRIAN2_KEYS]
    if model["backend"] == "brian2":
        given = [key for key in ABSTRACT_ONLY_KEYS if key in table]
        if given:
            raise loc.error(f"{given[0]!r} applies to backend = \"abstract\" only (the Brian2 network runs forward "
                            f"Euler in float64)", "model", given[0])
        if model["method"] not in ("", "euler"):
            raise loc.error("the Brian2 network runs method = \"euler\"", "model", "method")
        for key, (kind, default) in BRIAN2_KEYS.items():
            model[key] = _typed(table.get(key, default), kind, loc, "model", key)
        if model["device"] not in BRIAN2_DEVICES:
            raise loc.error(f"unknown Brian2 device {model['device']!r}; use {', '.join(BRIAN2_DEVICES)}",
                            "model", "device")
    elif brian2_keys:
        raise loc.error(f"{brian2_keys[0]!r} applies to backend = \"brian2\" only", "model", brian2_keys[0])
    return model


def _parse_zip(group: dict, index: int, loc: _Locator) -> Axis:
    if not isinstance(group, dict):
        raise loc.error("each [[zip]] entry must be a table", "zip", None, index)
    name = group.get("name")
    if not isinstance(name, str) or not name:
        raise loc.error("a [[zip]] group needs name = \"...\" (the dimension's name)", "zip", "name", index)
    values = {}
    for key, grid in group.items():
        if key == "name":
            continue
        _check_field_name(key, loc, "zip", key, index)
        values[key] = _grid(key, grid, loc, "zip", key, index)
    if len(values) < 2:
        raise loc.error(f"[[zip]] group {name!r} must zip at least two fields", "zip", "name", index)
    lengths = {key: len(v) for key, v in values.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise loc.error(f"zipped fields must have the same number of values: {detail}", "zip", "name", index)
    return Axis(name, values)


def _check_field_name(key: str, loc: _Locator, table: str, line_key: str, occurrence: int = 0) -> None:
    if key not in PARAMETER_FIELDS and key not in PROBLEM_FIELDS:
        known = ", ".join([*PARAMETER_FIELDS, *PROBLEM_FIELDS])
        raise loc.error(f"unknown parameter {key!r}; known: {known}", table, line_key, occurrence)


def _grid(key: str, grid, loc: _Locator, table: str, line_key: str, occurrence: int = 0) -> tuple:
    """{values = [...]} or {start, stop, num, log = false}: a tuple of checked values."""
    where = (table, line_key, occurrence)
    if not isinstance(grid, dict):
        raise loc.error(f"{key}: write the grid as {{values = [...]}} or {{start = ..., stop = ..., num = ...}}", *where)
    if "values" in grid:
        if set(grid) != {"values"}:
            raise loc.error(f"{key}: a {{values = [...]}} grid takes no other keys", *where)
        values = grid["values"]
        if not isinstance(values, list):
            raise loc.error(f"{key}: values must be a list", *where)
        if len(values) > MAX_AXIS_VALUES:
            raise loc.error(f"{key}: {len(values)} values on one axis, more than {MAX_AXIS_VALUES}", *where)
    else:
        unknown = set(grid) - {"start", "stop", "num", "log"}
        missing = {"start", "stop", "num"} - set(grid)
        if unknown or missing:
            problem = f"unknown key(s) {sorted(unknown)}" if unknown else f"missing {sorted(missing)}"
            raise loc.error(f"{key}: {problem}; a range is {{start = ..., stop = ..., num = ..., log = false}}",
                            *where)
        num = grid["num"]
        if isinstance(num, bool) or not isinstance(num, int) or num < 0:
            raise loc.error(f"{key}: num must be a whole number", *where)
        if num > MAX_AXIS_VALUES:
            raise loc.error(f"{key}: num = {num} values on one axis, more than {MAX_AXIS_VALUES}", *where)
        log = grid.get("log", False)
        if not isinstance(log, bool):
            raise loc.error(f"{key}: log must be true or false", *where)
        start, stop = (_typed(grid[k], float, loc, *where) for k in ("start", "stop"))
        if log and (start <= 0 or stop <= 0):
            raise loc.error(f"{key}: a log range needs start and stop > 0", *where)
        values = (np.geomspace if log else np.linspace)(start, stop, num).tolist()
        if PROBLEM_FIELDS.get(key) is int:
            values = [round(v) for v in values]
    if not values:
        raise loc.error(f"{key}: empty grid", *where)
    checked = tuple(_check_value(key, value, loc, *where) for value in values)
    if len(set(checked)) != len(checked):
        raise loc.error(f"{key}: the grid repeats a value ({list(checked)})", *where)
    return checked


def _typed(value, kind: type, loc: _Locator, table: str, key: str | None, occurrence: int = 0):
    """value as `kind`; ints are accepted where floats are expected, booleans never pass as numbers."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, float) and math.isfinite(value):
        return value
    if kind is not float and isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    expected = {float: "a finite number", int: "a whole number", str: "a string"}[kind]
    raise loc.error(f"{key}: expected {expected}, got {value!r}", table, key, occurrence)


def _check_value(key: str, value, loc: _Locator, table: str, line_key: str, occurrence: int = 0):
    """One value of a field: the right type and, on its own, a valid value."""
    where = (table, line_key, occurrence)
    _check_field_name(key, loc, *where)
    if key in PARAMETER_FIELDS:
        kind = str if key == "similarity" else float
        value = _typed(value, kind, loc, table, line_key, occurrence)
        try:
            check_field(key, value)
        except InputError as exc:
            raise loc.error(str(exc), *where) from None
        return value
    value = _typed(value, PROBLEM_FIELDS[key], loc, table, line_key, occurrence)
    valid, bound = PROBLEM_LIMITS[key]
    if not valid(value):
        raise loc.error(f"{key} must be {bound}, got {value!r}", *where)
    return value
