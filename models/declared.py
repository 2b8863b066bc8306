"""Declared parameters: each parameter of a parameter class is written once, as a `Declared` row (name, default,
unit, bounds, meaning, the paper's symbol and equation), and everything that needs to know it is generated from
the rows: the class's checks (`check_value`), its docstring (`docstring_section`), the command-line options
(cli/options.py), the sweep specs' per-field checks (analysis/sweep.py) and the Brian2 namespace
(models/brian2_equations.py). The tables are `PARAMETER_TABLE` (models/parameters.py) and `SPIKING_TABLE`
(models/spiking_equations.py).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from astrogate.errors import InputError
from astrogate.models.checks import shown
from astrogate.models.units import in_units

KINDS = ("number", "count", "seed", "choice", "similarity")
BOUNDS = ("", "> 0", ">= 0")


@dataclass(frozen=True)
class Declared:
    """One parameter: what it is, its default and the values it takes."""

    name: str
    default: object
    meaning: str
    unit: str = ""  # "ms", "Hz" or "mV" (a Brian2 quantity of that dimension is converted); "" dimensionless
    bounds: str = ""  # "> 0", ">= 0" or "" (any finite number); numbers only
    kind: str = "number"  # number, count (a whole number >= 1), seed, choice, similarity
    choices: tuple = ()  # kind "choice"
    paper: str = ""  # the paper's symbol for this quantity (Vivet & Arenas 2026), in its terms
    equation: str = ""  # where the paper defines it
    default_text: str = ""  # the default in words where it is not a plain value ("20 N")
    option: bool = True  # a command-line option and a sweep axis
    same_as: str = ""  # a paper name: the field that holds the same quantity (docs/model.md, the mapping)
    group: str = ""  # the Brian2 group holding it as a shared variable ("neurons", "astrocytes"), if any
    optional: bool = False  # None is accepted: not given (beta: 20 N; T: from beta); refused otherwise

    def __post_init__(self):
        assert self.kind in KINDS and self.bounds in BOUNDS, self  # a mistake in a table, not in user input

    @property
    def flag(self) -> str:
        """The command-line option: --tau-u for tau_u, --T for T."""
        return "--" + self.name.replace("_", "-")

    @property
    def default_words(self) -> str:
        if self.default_text:
            return self.default_text
        value = f"{self.default:g}" if isinstance(self.default, float) else str(self.default)
        return f"{value} {self.unit}" if self.unit else value

    def describe(self) -> str:
        """One line: the meaning, the unit and the paper's symbol."""
        text = self.meaning + (f", in {self.unit}" if self.unit else "")
        if self.paper:
            text += f" (paper: {self.paper}" + (f", {self.equation})" if self.equation else ")")
        return text


def is_number(value) -> bool:
    """A real number, NumPy scalars included; not bool (nor NumPy's), not str, not None."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_value(declared: Declared, value, what: str = "parameter"):
    """`value` checked against its row and normalised (a float, an int for counts and seeds, a number in the
    row's unit for a Brian2 quantity); an InputError naming the parameter otherwise. None passes where the row
    is optional (not given)."""
    name = declared.name
    if value is None and declared.optional:
        return None
    if declared.kind == "similarity":
        from astrogate.models.similarity import parse_similarity

        if not isinstance(value, str):
            raise InputError(f"{what} {name} must be a name such as 'quadratic', got {value!r}")
        parse_similarity(value)  # refuses an unknown name
        return value
    if declared.kind == "choice":
        if not isinstance(value, str) or value not in declared.choices:  # `in` on an array is ambiguous
            raise InputError(f"{what} {name}: unknown value {shown(value)}; use one of {', '.join(declared.choices)}")
        return value
    if declared.unit:
        value = in_units(value, declared.unit, name)
    elif hasattr(value, "dim"):  # a Brian2 quantity where a plain number is meant
        from astrogate.models.units import import_brian2

        if not import_brian2().have_same_dimensions(value, 1):
            raise InputError(f"{what} {name} is dimensionless, got {value!r}")
        value = float(value)
    unit = f" ({declared.unit})" if declared.unit else ""
    if declared.kind in ("count", "seed"):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise InputError(f"{what} {name} must be a whole number, got {value!r}")
        value = int(value)
        low = 1 if declared.kind == "count" else 0
        if value < low:
            raise InputError(f"{what} {name} must be at least {low}, got {value}")
        return value
    try:  # an integer beyond float's range (10**400) overflows: not a finite number
        finite = is_number(value) and math.isfinite(float(value))
    except OverflowError:
        finite = False
    if not finite:
        raise InputError(f"{what} {name} must be a finite number{unit}, got {shown(value)}")
    value = float(value)
    if declared.bounds == "> 0" and not value > 0:
        raise InputError(f"{what} {name} must be positive{unit}, got {value:g}")
    if declared.bounds == ">= 0" and not value >= 0:
        raise InputError(f"{what} {name} must be >= 0{unit}, got {value:g}")
    return value


def docstring_section(table, title: str = "Parameters") -> str:
    """A numpy-style section listing every row: name, type, default, meaning, unit, the paper's symbol."""
    lines = [title, "-" * len(title)]
    for row in table:
        kind = {"number": "float", "count": "int", "seed": "int", "choice": "str", "similarity": "str"}[row.kind]
        lines.append(f"{row.name} : {kind}, default {row.default_words}")
        lines.append(f"    {row.describe()}.")
    return "\n".join(lines)
