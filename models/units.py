"""Brian2 quantities where the plain-number parameters take numbers in fixed units (ms, Hz, mV).

Imports Brian2 only when a quantity is actually passed, so that code handling plain numbers (the command
line's --help, the abstract model) stays free of it.
"""

from __future__ import annotations

import signal
import sys
import threading

from astrogate.errors import InputError


def import_brian2():
    """Import Brian2, also from a thread other than the main one (a Dask worker runs its tasks in one).

    Brian2 installs its Ctrl-C handler at import, which Python allows in the main thread only (ValueError
    elsewhere). Off the main thread that one call is skipped: there Ctrl-C never reaches the code anyway
    (signals are delivered to the main thread, and this project's Dask workers ignore them).
    """
    if "brian2" in sys.modules or threading.current_thread() is threading.main_thread():
        import brian2

        return brian2
    install = signal.signal

    def keep_handler(signum, handler):
        if threading.current_thread() is threading.main_thread():
            return install(signum, handler)
        return signal.getsignal(signum)

    signal.signal = keep_handler
    try:
        import brian2
    finally:
        signal.signal = install
    return brian2


def in_units(value, unit: str, name: str):
    """`value` as a plain number in `unit` ('ms', 'Hz' or 'mV'); plain numbers pass through unchanged."""
    if not hasattr(value, "dim"):  # not a Brian2 Quantity
        return value
    import brian2

    target = getattr(brian2, unit)
    if not brian2.have_same_dimensions(value, target):
        raise InputError(f"parameter {name} must be in units of {unit} (dimension {brian2.get_unit(target.dim)!s}), "
                         f"got {value!r}")
    if getattr(value, "shape", ()) != ():
        raise InputError(f"parameter {name} must be a single value, got an array of shape {value.shape}")
    return float(value / target)



# what each unit of a time, rate or frequency argument measures, for the error that names it
ARGUMENT_UNITS = {"ms": "a time", "1/ms": "a rate", "Hz": "a frequency", "mV": "a voltage"}


def argument_in_units(value, unit: str, name: str):
    """A time, rate or frequency argument of the public API (``duration=50*ms`` or ``duration=50``) as a plain
    number in `unit` (a key of ARGUMENT_UNITS): a Brian2 quantity of that dimension is converted, anything else
    (a plain number, None) is returned as it is, for the caller's own checks. A quantity of another dimension,
    or an array quantity, is an InputError that names the argument and the unit."""
    if not hasattr(value, "dim"):  # not a Brian2 Quantity
        return value
    import brian2

    target = 1 / brian2.ms if unit == "1/ms" else getattr(brian2, unit)
    expected = f"{ARGUMENT_UNITS[unit]} in {unit} (a plain number of {unit}, or a Brian2 quantity such as " \
               f"{'1e-8/ms' if unit == '1/ms' else '50*' + unit})"
    if not brian2.have_same_dimensions(value, target):
        raise InputError(f"{name} must be {expected}, got {value!r}")
    if getattr(value, "shape", ()) != ():
        raise InputError(f"{name} must be a single value, {ARGUMENT_UNITS[unit]} in {unit}, got an array of shape "
                         f"{value.shape}")
    return float(value / target)
