"""No public function of astrogate takes more than 8 parameters (self and cls not counted).

Walks every callable of `astrogate.__all__` and every public method that astrogate's own classes define
(methods inherited from Brian2 or the standard library are theirs, not ours). A dataclass's generated
__init__ is a record's list of fields, not a call's settings, and is left out.
"""

import dataclasses
import inspect


import astrogate

MAX_PARAMETERS = 8

def _parameter_count(function) -> int:
    return sum(1 for name in inspect.signature(function).parameters if name not in ("self", "cls"))


def _own_methods(cls):
    """(name, function) of the public methods defined by astrogate's classes in cls's MRO, __init__ included
    unless dataclasses generated it."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("astrogate"):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") and name != "__init__":
                continue
            if name == "__init__" and dataclasses.is_dataclass(klass):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if inspect.isfunction(member):
                yield name, member


def public_signatures() -> dict[str, int]:
    """Public name -> number of parameters, for every function and method of the public API."""
    counts = {}
    for name in astrogate.__all__:
        obj = getattr(astrogate, name)
        if inspect.isclass(obj):
            for method, function in _own_methods(obj):
                counts.setdefault(f"{name}.{method}", _parameter_count(function))
        elif inspect.isfunction(obj):
            counts[name] = _parameter_count(obj)
    return counts


def test_the_walk_reaches_functions_and_methods():
    counts = public_signatures()
    for name in ("recall", "generated_problem", "run_study", "explore", "Parameters.resolved",
                 "AstroGateModel.derivatives", "AstroGateModel.run"):
        assert name in counts, name
    assert len(counts) > 40


def test_no_public_function_takes_more_than_8_parameters():
    """Settings travel as one checked object (RunSettings, NetworkSettings, AttentionSettings, RecallRun)."""
    over = {name: n for name, n in public_signatures().items() if n > MAX_PARAMETERS}
    assert over == {}, over
