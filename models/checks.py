"""Checks of user-given numbers and sizes, shared by the Python API and the command line.

Each check returns the value (normalised: an int for a whole number) or raises an InputError whose
message names the quantity; cli/options.py wraps them as argparse types, so that the command line and
the Python API refuse the same inputs with the same words.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import numpy as np

from astrogate.errors import InputError
from astrogate.models.units import argument_in_units

# numpy.random seeds are 32-bit words; a larger or negative seed is a mistake, not a choice
MAX_SEED = 2**32 - 1
# beyond this a count is a typo (and K * N would overflow NumPy's index arithmetic long before)
MAX_COUNT = 2**40
# forward-Euler steps of one run: 10^9 steps is hours even for the smallest network
MAX_STEPS = 10**9


def shown(value) -> str:
    """repr(value) for a one-line message: a long one (a 400-digit integer, a big array) shortened."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and abs(value) >= 10**30:
        digits = math.floor(int(value).bit_length() * math.log10(2)) + 1  # str() refuses over 4300 digits
        return f"<a number of about {digits} digits>" if digits > 4000 else f"<a number of {len(str(abs(int(value))))} digits>"
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not turn a refusal into a traceback
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= 60 else f"{text[:40]}...{text[-12:]} ({len(text)} characters)"


def _is_number(value) -> bool:
    """A real number: int, float or a NumPy scalar of either kind (numbers.Real); never a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def finite_number(value, name: str) -> float:
    """A real number that is finite as a float: NumPy scalars are numbers; an integer beyond float's range
    (10**400) is not finite."""
    if _is_number(value):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise InputError(f"{name} must be a finite number, got {shown(value)}")


def positive_number(value, name: str) -> float:
    value = finite_number(value, name)
    if value <= 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")
    return value


def nonnegative_number(value, name: str) -> float:
    value = finite_number(value, name)
    if value < 0:
        raise InputError(f"{name} must be >= 0, got {value!r}")
    return value


def fraction(value, name: str) -> float:
    value = finite_number(value, name)
    if not 0.0 <= value <= 1.0:
        raise InputError(f"{name} must lie in [0, 1], got {value!r}")
    return value


# -- one check per kind of argument: the Python API calls these at its edge (after units are converted) ------

def duration(value, name: str = "duration") -> float:
    """A length of simulated time: a positive, finite number of ms, or a Brian2 time (``50*ms``)."""
    value = finite_number(argument_in_units(value, "ms", name), name)
    if value <= 0:
        raise InputError(f"{name} must be a positive number of ms, got {value!r}")
    return value


def optional_duration(value, name: str) -> float | None:
    """None (the default applies) or a duration in ms (record_every, a time limit left to the caller)."""
    return None if value is None else duration(value, name)


def tolerance(value, name: str = "tol") -> float:
    """A stopping tolerance: a finite number >= 0 in 1/ms, or a Brian2 rate (``1e-8/ms``)."""
    return nonnegative_number(argument_in_units(value, "1/ms", name), name)


def flag(value, name: str) -> bool:
    """True or False (NumPy's bool too); 0, 1, 'yes' or None are not flags."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {shown(value)}")
    return bool(value)


def index(value, size: int, name: str) -> int:
    """An index into `size` items (a pattern's, say): a whole number in [0, size); not a bool, not 1.5."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be a whole number (an index), got {shown(value)}")
    value = int(value)
    if not 0 <= value < size:
        raise InputError(f"{name} {value} is not an index of {size} (0 <= {name} < {size})")
    return value


def instance(value, kind: type, name: str, what: str | None = None):
    """`value` if it is a `kind`; else an InputError naming the argument and what it got."""
    if not isinstance(value, kind):
        got = "None" if value is None else f"{type(value).__name__} {shown(value)}"
        raise InputError(f"{name} must be {what or 'a ' + kind.__name__}, got {got}")
    return value


def path(value, name: str) -> Path:
    """A file or folder path: a non-empty str or os.PathLike (bytes and numbers are not paths)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise InputError(f"{name} must be a path (a non-empty str or pathlib.Path), got {shown(value)}")
    if "\0" in value:
        raise InputError(f"{name} {shown(value)} contains a NUL character, which no path can")
    return Path(value)


def one_of(value, choices, what: str):
    """`value` if it is one of `choices`; else an InputError "<what>: use one of <choices>" (what names the
    value, for example "unknown method 'rk4'"). Only values of the choices' own types compare: an array or
    a list is never "in" a tuple of names."""
    kinds = {type(choice) for choice in choices}
    if type(value) not in kinds or value not in choices:
        raise InputError(f"{what}: use one of {', '.join(map(str, choices))}")
    return value


def whole_number(value, name: str, minimum: int = 0, maximum: int = MAX_COUNT) -> int:
    """An int in [minimum, maximum]; floats with no fractional part pass (TOML and JSON write 1e3 as a float),
    NumPy integers and floats too."""
    if _is_number(value) and not isinstance(value, numbers.Integral):
        try:
            number = float(value)
        except OverflowError:
            number = math.nan
        if math.isfinite(number) and number.is_integer():
            value = int(number)
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be a whole number, got {shown(value)}")
    value = int(value)
    if value < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {shown(value)}")
    if value > maximum:
        raise InputError(f"{name} must be at most {maximum}, got {shown(value)}")
    return value


def seed(value, name: str = "seed") -> int:
    return whole_number(value, name, 0, MAX_SEED)


def comma_list(text: str, name: str) -> list[str]:
    """A comma-separated list with no empty items, repeats dropped (first occurrence kept)."""
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise InputError(f"{name}: empty list")
    if not all(items):
        raise InputError(f"{name}: an empty item in {text!r}")
    return list(dict.fromkeys(items))


def euler_steps(duration: float, dt: float) -> int:
    """The number of forward-Euler steps of a run, refused when it is absurd (and before int() overflows)."""
    duration = positive_number(duration, "duration")
    ratio = duration / dt
    if not math.isfinite(ratio) or ratio > MAX_STEPS:
        raise InputError(f"duration {duration:g} ms at dt = {dt:g} ms is {ratio:.3g} steps, more than "
                         f"{MAX_STEPS:.0e}: shorten the duration")
    if round(ratio) < 1:
        raise InputError(f"duration {duration:g} ms is shorter than one step dt = {dt:g} ms")
    return int(round(ratio))


def euler_stable_dt(dt: float, time_constants: dict[str, float]) -> None:
    """Forward Euler multiplies a decay by 1 - dt/tau per step: it overshoots zero for dt >= tau (and
    diverges for dt >= 2 tau), so the Lyapunov function is no longer monotone. Refuse such a dt."""
    name, tau = min(time_constants.items(), key=lambda item: item[1])
    if dt >= tau:
        raise InputError(f"dt = {dt:g} ms is not below {name} = {tau:g} ms: forward Euler overshoots (and for "
                         f"dt >= 2 {name} diverges); use dt <= {name}/10 = {tau / 10:g} ms")


# -- sizes -------------------------------------------------------------------------------------------------

def pattern_bytes(K: int, N: int, batch: int = 1) -> int:
    """Peak bytes of generating K x N patterns and running a batch of cues on them (NumPy float64): the
    patterns and the generator's K x N temporaries (about four arrays), and per cue N- and K-vectors."""
    return 8 * (4 * K * N + 8 * batch * (N + K))


class SettingsObject:
    """A frozen dataclass of settings (RunSettings, NetworkSettings, AttentionSettings): `changed` makes a
    copy with some fields changed, checked again by the dataclass's own __post_init__."""

    kind = "setting"  # names the fields in the error: "unknown run setting(s): ..."

    def changed(self, **changes):
        """These settings with some fields changed (an unknown field is an InputError naming it)."""
        import dataclasses

        names = [field.name for field in dataclasses.fields(self)]
        unknown = set(changes) - set(names)
        if unknown:
            raise InputError(f"unknown {self.kind}(s): {', '.join(sorted(unknown))} (the settings are "
                             f"{', '.join(names)})")
        return dataclasses.replace(self, **changes) if changes else self

