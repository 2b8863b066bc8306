"""Brian2 quantities where the plain-number parameters take numbers in fixed units (ms, Hz, mV).

Imports Brian2 only when a quantity is actually passed, so that code handling plain numbers (the command
line's --help, the abstract model) stays free of it.
"""

from __future__ import annotations

from astrogate.errors import InputError

UNIT_NAMES = ("ms", "Hz", "mV")


def in_units(value, unit: str, name: str):
    """`value` as a plain number in `unit` ('ms', 'Hz' or 'mV'); plain numbers pass through unchanged."""
    if not hasattr(value, "dim"):  # not a Brian2 Quantity
        return value
    import brian2

    target = getattr(brian2, unit)
    if not brian2.have_same_dimensions(value, target):
        raise InputError(f"parameter {name} must be in units of {brian2.get_unit(target.dim)!s}, got {value!r}")
    if getattr(value, "shape", ()) != ():
        raise InputError(f"parameter {name} must be a single value, got an array of shape {value.shape}")
    return float(value / target)


def convert_fields(instance, units: dict[str, str]) -> None:
    """In a (frozen) dataclass's __post_init__: replace quantities by plain numbers in their field's unit."""
    for name, unit in units.items():
        value = getattr(instance, name)
        converted = in_units(value, unit, name)
        if converted is not value:
            object.__setattr__(instance, name, converted)
