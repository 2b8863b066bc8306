"""The one TOML schema of every study, read with tomllib and checked completely before anything runs.

    [study]          name, description, evaluation (default "retrieval"), metrics
    [model]          the evaluation's run settings (a retrieval's backend, duration, tol, ...)
    [models.NAME]    the models of a benchmark cell, each with its kind and options
    [tuning]         a benchmark's tuning cells, instances and cues (a first study on separate seeds)
    [fixed]          one value per field
    [axes]           one dimension per field: {values = [...]} or {start, stop, num, log = false}
    [[zip]]          several fields that vary together, one dimension named `name`

The dimensions come in the order they are written. Every error names the file and the line, as
`FILE:LINE: problem` (tomllib gives no line numbers for values: _Locator finds the line of a key by scanning
the text within its table). Files of earlier versions load too: a [sweep] table is the [study] table, and a
benchmark config's [benchmark] table is read as the fields and axes it became (runs/README.md).
"""

from __future__ import annotations

import math
import re
import stat
import tomllib
from pathlib import Path

import numpy as np

from astrogate.analysis.study import Axis, Study, evaluation
from astrogate.errors import InputError

SECTIONS = ("study", "model", "models", "tuning", "fixed", "axes", "zip")
OLD_SECTIONS = {"sweep": "study"}  # earlier name -> its name now
MAX_AXIS_VALUES = 10_000
MAX_POINTS = 1_000_000
STUDY_KEYS = ("name", "description", "evaluation", "metrics")


class _Locator:
    """Line numbers of keys, found by scanning the text (tomllib does not report them)."""

    HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\- \"']+?)\s*\]\]?\s*(#.*)?$")

    def __init__(self, path, text: str, renamed: dict | None = None):
        self.path = path
        self.lines = text.splitlines()
        self.renamed = renamed or {}  # (table, key) -> (table, key) where an old file wrote it

    def line(self, table: str | None = None, key: str | None = None, occurrence: int = 0) -> int | None:
        """The line of `key =` inside the `occurrence`-th [table] (or [[table]]; table None: before any
        header); the header's line if no key."""
        table, key = self.renamed.get((table, key), (table, key))
        current, seen = None, {None: 0}
        for number, text in enumerate(self.lines, start=1):
            header = self.HEADER.match(text)
            if header:
                current = header.group(2).replace('"', "").replace("'", "")
                index = seen.get(current, -1) + 1
                seen[current] = index
                if key is None and current == table and index == occurrence:
                    return number
                continue
            in_table = current == table and seen.get(current) == occurrence
            if key is not None and in_table and re.match(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=", text):
                return number
        return None

    def error(self, problem: str, table: str | None = None, key: str | None = None, occurrence: int = 0) -> InputError:
        problem = re.sub(r"\d{31,}", lambda m: f"<a number of {len(m.group())} digits>", problem)
        number = self.line(table, key, occurrence) if table or key else None
        if number is None and table:
            number = self.line(table, None, occurrence)
        return InputError(f"{self.path}:{number or 1}: {problem}")

    def error_at(self, problem: str, key: str) -> InputError:
        """The error at the line that sets `key` ([fixed], [axes] or a [[zip]]), else at the grid's first table."""
        places = [("fixed", 0), ("axes", 0), *(("zip", i) for i in range(len(self.lines)))]
        for table, occurrence in places:
            if self.line(table, key, occurrence) is not None:
                return self.error(problem, table, key, occurrence)
            if table == "zip" and self.line("zip", None, occurrence) is None:
                break
        table = next((t for t in ("axes", "zip", "fixed") if self.line(t) is not None), None)
        return self.error(problem, table)


def short(value) -> str:
    """repr of a value, cut short (a 400-digit integer is named by its length)."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:24]}...({len(text)} characters)"


# -- reading a study --------------------------------------------------------------------------------------

def load_study(path: str | Path) -> Study:
    """A study from a TOML file, or a shipped one by name ("study_load_taug", "bench_quick", ...)."""
    from astrogate.files import file_status, read_text
    from astrogate.models.checks import path as check_path

    path = check_path(path, "spec")
    status = file_status(path, "study spec")
    # a bare name is a shipped spec unless a file of that name is here (a folder is not: the study's own
    # output folder, say, from `astrogate sweep NAME --out NAME`)
    if (status is None or stat.S_ISDIR(status.st_mode)) and path.suffix == "" and len(path.parts) == 1:
        from astrogate.configs import config_path

        if config_path(f"{path}.toml").is_file():
            path = config_path(f"{path}.toml")
    return parse_study(read_text(path, "study spec"), path)


def shipped_study(name: str, fixed: dict | None = None, axes: dict | None = None) -> Study:
    """A shipped study (runs/configs/<name>.toml) with fields changed: `fixed` values set (None: unchanged) and
    `axes` {field: list of values} replaced; a changed study is named "<name>.toml with the options given"."""
    import tomllib

    from astrogate.configs import config_path

    path = config_path(f"{name}.toml")
    text = path.read_text()
    data = tomllib.loads(text)
    fixed = {k: v for k, v in (fixed or {}).items() if v is not None and data.get("fixed", {}).get(k) != v}
    axes = {k: list(v) for k, v in (axes or {}).items() if v is not None
            and data.get("axes", {}).get(k) != {"values": list(v)}}
    if not fixed and not axes:
        return study_from_tables(data, path, text)
    data.setdefault("fixed", {}).update(fixed)
    data.setdefault("axes", {}).update({k: {"values": v} for k, v in axes.items()})
    return study_from_tables(data, f"{path.name} with the options given")


def parse_study(text: str, path: str | Path = "<spec>") -> Study:
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise InputError(f"{path}:{where.group(1) if where else 1}: invalid TOML: {message}") from None
    except RecursionError:
        raise InputError(f"{path}:1: invalid TOML: values nested too deep") from None
    return study_from_tables(data, path, text)


def study_from_tables(data: dict, path: str | Path = "<spec>", text: str = "") -> Study:
    """The checked Study of parsed TOML tables (also for a study given as a dict in Python)."""
    if not isinstance(data, dict):
        raise InputError(f"{path}:1: a study is a table of tables, got {type(data).__name__}")
    loc = _Locator(path, text)
    if "benchmark" in data:
        data = _from_benchmark_table(data, loc)
    for old, new in OLD_SECTIONS.items():
        if old in data:
            if new in data:
                raise loc.error(f"[{old}] and [{new}] are the same table (its earlier name and its name): keep "
                                f"[{new}]", old)
            data = {(new if k == old else k): v for k, v in data.items()}
            loc.renamed.update({(new, key): (old, key) for key in STUDY_KEYS} | {(new, None): (old, None)})
    for section, content in data.items():
        if not isinstance(content, (dict, list)):
            raise loc.error(f"{section!r} is outside any table: fields go under [fixed] or [axes]", None, section)
        if section not in SECTIONS:
            raise loc.error(f"unknown section [{section}]; sections are {', '.join(SECTIONS)}", section)
    head = _table(data, "study", loc)
    for key in head:
        if key not in STUDY_KEYS:
            raise loc.error(f"unknown key {key!r} in [study]; use {', '.join(STUDY_KEYS)}", "study", key)
    stem = Path(str(path)).stem if str(path) != "<spec>" else "study"
    name = _string(head.get("name", stem), loc, "study", "name")
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or name != name.strip():
        raise loc.error(f"name {name!r} must be one folder name (it names runs/<name>): no '/', '\\', '.' or '..', "
                        f"not empty", "study", "name")
    description = _string(head.get("description", ""), loc, "study", "description")
    ev_name = _string(head.get("evaluation", "retrieval"), loc, "study", "evaluation")
    try:
        ev = evaluation(ev_name)
    except InputError as exc:
        raise loc.error(str(exc), "study", "evaluation") from None
    metrics = tuple(ev.default_metrics)
    if "metrics" in head:
        given = head["metrics"]
        if not isinstance(given, list) or not given or not all(isinstance(m, str) for m in given):
            raise loc.error("metrics must be a non-empty list of names", "study", "metrics")
        for metric in given:
            if metric not in ev.metrics:
                raise loc.error(f"unknown metric {metric!r}; known: {', '.join(ev.metrics)}", "study", "metrics")
        metrics = tuple(dict.fromkeys(given))

    tables = {name: data[name] for name in ("model", "models", "tuning") if name in data}
    for table in tables:
        if table not in ev.tables:
            raise loc.error(f"[{table}] does not apply to evaluation {ev_name!r}"
                            + (f" (its tables: {', '.join(ev.tables)})" if ev.tables else ""), table)
    settings = ev.settings({name: tables.get(name, {}) for name in ev.tables}, loc)

    fixed = {}
    for key, value in _table(data, "fixed", loc).items():
        fixed[key] = check_value(ev, key, value, loc, "fixed", key)
    axes, swept = [], {}
    for key, grid in _table(data, "axes", loc).items():
        _field(ev, key, loc, "axes", key, swept=True)
        axes.append((loc.line("axes", key) or 0, Axis(key, {key: _grid(ev, key, grid, loc, "axes", key)})))
        swept[key] = loc.line("axes", key)
    zips = data.get("zip", [])
    if not isinstance(zips, list):
        raise loc.error("zipped axes are written as [[zip]] tables", "zip")
    for index, group in enumerate(zips):
        axis = _parse_zip(ev, group, index, loc)
        for key in axis.values:
            if key in swept:
                raise loc.error(f"{key!r} is swept twice", "zip", key, index)
            swept[key] = loc.line("zip", key, index)
        if axis.name in [a.name for _, a in axes] or axis.name in axis.values or axis.name in fixed:
            raise loc.error(f"axis name {axis.name!r} is used twice", "zip", "name", index)
        axes.append((loc.line("zip", None, index) or 0, axis))
    axes = [axis for _, axis in sorted(axes, key=lambda item: item[0])]  # in the order written
    for key in swept:
        if key in fixed:
            raise loc.error(f"{key!r} is both fixed and swept", "fixed", key)
    ev.complete(fixed, swept, loc)
    study = Study(name=name, evaluation=ev_name, settings=settings, fixed=fixed, axes=tuple(axes), metrics=metrics,
                  description=description, text=text or _tables_text(data, path), path=path)
    if study.n_points > MAX_POINTS:
        raise loc.error(f"the grid has {study.n_points} points ({' x '.join(map(str, study.shape))}), more than "
                        f"{MAX_POINTS}: each point is a file and a task", "axes")
    study = ev.prepare(study)
    ev.check(study, loc)
    return study


def _tables_text(data: dict, path) -> str:
    """The TOML text of a study given as tables (a shipped one changed by options, a dict in Python): its
    folder's spec copy, which `astrogate plot` and load_folder read. "" where a value has no TOML form."""
    import tomli_w

    try:
        return f"# {path}\n" + tomli_w.dumps(data)
    except (TypeError, ValueError):
        return ""


def where(study: Study, index: tuple, values: dict) -> str:
    """A point named by its axes' values, for error messages."""
    return ", ".join(f"{axis.name} = {values[axis.name] if axis.name in values else index[i]}"
                     for i, axis in enumerate(study.axes)) or "the fixed point"


# -- fields and grids ---------------------------------------------------------------------------------------

def _table(data: dict, section: str, loc: _Locator) -> dict:
    table = data.get(section, {})
    if not isinstance(table, dict):
        raise loc.error(f"[{section}] must be a table", section)
    return table


def _string(value, loc, table, key) -> str:
    if not isinstance(value, str):
        raise loc.error(f"{key}: expected a string, got {short(value)}", table, key)
    return value


def _field(ev, key: str, loc: _Locator, table: str, line_key: str, occurrence: int = 0, swept: bool = False):
    if key not in ev.fields:
        raise loc.error(f"unknown field {key!r} for evaluation {ev.name!r}; known: {', '.join(ev.fields)}",
                        table, line_key, occurrence)
    rule = ev.fields[key]
    if swept and rule.fixed_only:
        raise loc.error(f"{key!r} is one value for the whole study: give it under [fixed]", table, line_key,
                        occurrence)
    return rule


def typed(value, kind: str):
    """value as `kind` ("int", "float", "str", "strings", "ints", "any"), or an InputError naming what was expected;
    ints pass as floats, booleans never pass as numbers."""
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            raise InputError(f"expected a finite number, got an integer of {len(str(abs(value)))} digits") from None
    if kind == "float" and isinstance(value, float):
        if math.isfinite(value):
            return value
        raise InputError(f"expected a finite number, got {value!r}")
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "strings" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if kind == "ints" and isinstance(value, list) and value and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    if kind == "any" and (isinstance(value, (str, bool, int, float)) or value is None):
        return value
    expected = {"float": "a finite number", "int": "a whole number", "str": "a string",
                "strings": "a list of strings", "ints": "a non-empty list of whole numbers",
                "any": "a number or a string"}[kind]
    raise InputError(f"expected {expected}, got {short(value)}")


def check_value(ev, key: str, value, loc: _Locator, table: str, line_key: str, occurrence: int = 0):
    """One value of a field: the right type and, on its own, a valid value."""
    rule = _field(ev, key, loc, table, line_key, occurrence)
    try:
        value = typed(value, rule.kind)
        return rule.check(value) if rule.check else value
    except InputError as exc:
        message = str(exc)
        raise loc.error(message if key in message.split(':')[0] else f"{key}: {message}", table, line_key,
                        occurrence) from None


def _grid(ev, key: str, grid, loc: _Locator, table: str, line_key: str, occurrence: int = 0,
          unique: bool = True) -> tuple:
    """{values = [...]} or {start, stop, num, log = false}: a tuple of checked values (distinct, unless zipped)."""
    where_ = (table, line_key, occurrence)
    kind = ev.fields[key].kind
    if not isinstance(grid, dict):
        raise loc.error(f"{key}: write the grid as {{values = [...]}} or {{start = ..., stop = ..., num = ...}}", *where_)
    if "values" in grid:
        if set(grid) != {"values"}:
            raise loc.error(f"{key}: a {{values = [...]}} grid takes no other keys", *where_)
        values = grid["values"]
        if not isinstance(values, list):
            raise loc.error(f"{key}: values must be a list", *where_)
        if len(values) > MAX_AXIS_VALUES:
            raise loc.error(f"{key}: {len(values)} values on one axis, more than {MAX_AXIS_VALUES}", *where_)
    else:
        unknown = set(grid) - {"start", "stop", "num", "log"}
        missing = {"start", "stop", "num"} - set(grid)
        if unknown or missing:
            problem = f"unknown key(s) {sorted(unknown)}" if unknown else f"missing {sorted(missing)}"
            raise loc.error(f"{key}: {problem}; a range is {{start = ..., stop = ..., num = ..., log = false}}", *where_)
        if kind not in ("int", "float"):
            raise loc.error(f"{key}: a range needs a numeric field; give {{values = [...]}}", *where_)
        num = grid["num"]
        if isinstance(num, bool) or not isinstance(num, int) or num < 0:
            raise loc.error(f"{key}: num must be a whole number", *where_)
        if num > MAX_AXIS_VALUES:
            raise loc.error(f"{key}: num = {num} values on one axis, more than {MAX_AXIS_VALUES}", *where_)
        log = grid.get("log", False)
        if not isinstance(log, bool):
            raise loc.error(f"{key}: log must be true or false", *where_)
        try:
            start, stop = (typed(grid[k], "float") for k in ("start", "stop"))
        except InputError as exc:
            raise loc.error(f"{key}: {exc}", *where_) from None
        if log and (start <= 0 or stop <= 0):
            raise loc.error(f"{key}: a log range needs start and stop > 0", *where_)
        with np.errstate(all="ignore"):
            values = (np.geomspace if log else np.linspace)(start, stop, num).tolist()
        if not all(math.isfinite(v) for v in values):
            raise loc.error(f"{key}: the range from {start:g} to {stop:g} overflows: its values are not all "
                            f"finite numbers", *where_)
        if kind == "int":
            values = [round(v) for v in values]
    if not values:
        raise loc.error(f"{key}: empty grid", *where_)
    checked = tuple(check_value(ev, key, value, loc, *where_) for value in values)
    if unique and len(set(map(repr, checked))) != len(checked):
        raise loc.error(f"{key}: the grid repeats a value ({short(list(checked))})", *where_)
    return checked


def _parse_zip(ev, group, index: int, loc: _Locator) -> Axis:
    if not isinstance(group, dict):
        raise loc.error("each [[zip]] entry must be a table", "zip", None, index)
    name = group.get("name")
    if not isinstance(name, str) or not name:
        raise loc.error("a [[zip]] group needs name = \"...\" (the dimension's name)", "zip", "name", index)
    values = {}
    for key, grid in group.items():
        if key == "name":
            continue
        _field(ev, key, loc, "zip", key, index, swept=True)
        values[key] = _grid(ev, key, grid, loc, "zip", key, index, unique=False)
    if len(values) < 2:
        raise loc.error(f"[[zip]] group {name!r} must zip at least two fields", "zip", "name", index)
    lengths = {key: len(v) for key, v in values.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise loc.error(f"zipped fields must have the same number of values: {detail}", "zip", "name", index)
    rows = list(zip(*(map(repr, v) for v in values.values())))
    if len(set(rows)) != len(rows):
        raise loc.error(f"[[zip]] group {name!r} repeats a combination of values", "zip", "name", index)
    return Axis(name, values)


# -- benchmark configs of earlier versions -----------------------------------------------------------------

# [benchmark] key -> (table, key) it is now
BENCHMARK_KEYS = {"seed": ("fixed", "seed"), "N": ("fixed", "N"), "instances": ("fixed", "instances"),
                  "cues": ("fixed", "cues"), "gallery_load": ("fixed", "gallery_load"),
                  "gallery_cues": ("fixed", "gallery_cues"), "image_corruptions": ("fixed", "image_corruptions"),
                  "loads": ("axes", "load"), "pattern_sets": ("axes", "pattern_set"),
                  "corruptions": ("axes", "corruption")}


def _from_benchmark_table(data: dict, loc: _Locator) -> dict:
    """A benchmark config of the earlier form ([benchmark] with lists of loads, pattern sets and corruptions)
    as the study it is now: its keys moved to [fixed] and [axes], evaluation = "benchmark"; errors point at
    the lines of the earlier keys."""
    old = data["benchmark"]
    if not isinstance(old, dict):
        raise loc.error("[benchmark] must be a table", "benchmark")
    mixed = [k for k in ("study", "sweep", "fixed", "axes", "zip") if k in data]
    if mixed:
        raise loc.error(f"[benchmark] is the earlier form of a benchmark config, [{mixed[0]}] the present one: "
                        f"move the keys of [benchmark] to [fixed] and [axes] (runs/README.md)", "benchmark")
    fixed, axes = {}, {}
    loc.renamed.update({("fixed", None): ("benchmark", None), ("axes", None): ("benchmark", None)})
    for key, value in old.items():
        if key not in BENCHMARK_KEYS:
            raise loc.error(f"unknown key {key!r} in [benchmark]; known: {', '.join(BENCHMARK_KEYS)}",
                            "benchmark", key)
        table, new = BENCHMARK_KEYS[key]
        loc.renamed[(table, new)] = ("benchmark", key)
        if table == "fixed":
            fixed[new] = value
        elif isinstance(value, list):
            axes[new] = {"values": value}
        else:
            raise loc.error(f"{key} must be a list, got {short(value)}", "benchmark", key)
    rest = {k: v for k, v in data.items() if k != "benchmark"}
    return {"study": {"evaluation": "benchmark"}, **rest, "fixed": fixed, "axes": axes}
