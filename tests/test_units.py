"""Time, rate and frequency arguments of the public API: a Brian2 quantity, or a plain number in the documented
unit, give the same run; a quantity of another dimension is an InputError naming the argument and the unit."""

import numpy as np
import pytest

import astrogate as ag
from astrogate.errors import InputError

pytestmark = pytest.mark.brian2


def small_problem():
    return ag.generated_problem(K=6, N=20, seed=4)


def qkv(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(2, 4)), rng.normal(size=(3, 4)), rng.normal(size=(3, 2))


def run_recall(b2, unit):
    """recall: duration and tol."""
    result = ag.recall(small_problem(), duration=unit(20, b2.ms, "duration"),
                       tol=unit(1e-6, 1 / b2.ms, "tol"))
    return result.u, result.t


def run_recall_brian2(b2, unit):
    """recall on Brian2: duration, record_every, t_current."""
    problem = small_problem()
    result = ag.recall(problem, backend="brian2", target="numpy", duration=unit(2, b2.ms, "duration"),
                       record_every=unit(0.5, b2.ms, "record_every"), current=problem.cue,
                       t_current=unit(1, b2.ms, "t_current"), tol=0)
    return result.u, result.t


def run_memory(b2, unit):
    """AstrocyteGatedMemory(record_every) and set_cue(t_current)."""
    b2.prefs.codegen.target = "numpy"
    problem = small_problem()
    mem = ag.AstrocyteGatedMemory(problem.patterns, record_every=unit(0.5, b2.ms, "record_every"))
    mem.set_cue(problem.cue, current=problem.cue, t_current=unit(1, b2.ms, "t_current"))
    b2.Network(mem).run(2 * b2.ms)
    return mem.state()["u"], np.asarray(mem.monitors["astrocytes"].t / b2.ms)


def run_session(b2, unit):
    """Brian2Session(record_every) and its run(duration, t_current)."""
    problem = small_problem()
    session = ag.Brian2Session(target="numpy", record_every=unit(0.5, b2.ms, "record_every"))
    u0 = 0.5 * problem.cue
    _, results, _ = session.run(problem.patterns, ag.Parameters(), u0, duration=unit(2, b2.ms, "duration"),
                                current=problem.cue, t_current=unit(1, b2.ms, "t_current"))
    return results["u"], results["steps"]


def run_attention(b2, unit):
    """attention: tau_y, duration, tol, record_every, chunk (Brian2 backend for chunk)."""
    Q, K, V = qkv()
    abstract = ag.attention(Q, K, V, tau_y=unit(10, b2.ms, "tau_y"), duration=unit(20, b2.ms, "duration"),
                            tol=unit(1e-10, 1 / b2.ms, "tol"), record_every=unit(5, b2.ms, "record_every"))
    network = ag.attention(Q, K, V, backend="brian2", target="numpy", duration=unit(2, b2.ms, "duration"),
                           chunk=unit(1, b2.ms, "chunk"), tol=0)
    return abstract.outputs, network.outputs


CALLS = {"recall": (run_recall, ["duration", "tol"]),
         "recall_brian2": (run_recall_brian2, ["duration", "record_every", "t_current"]),
         "memory": (run_memory, ["record_every", "t_current"]),
         "session": (run_session, ["record_every", "duration", "t_current"]),
         "attention": (run_attention, ["tau_y", "duration", "tol", "record_every", "chunk"])}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_quantities_give_the_same_run_as_plain_numbers(call):
    import brian2 as b2

    run, _ = CALLS[call]
    with_quantities = run(b2, lambda value, unit, name: value * unit)
    with_numbers = run(b2, lambda value, unit, name: value)
    for got, expected in zip(with_quantities, with_numbers):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("call, argument", [(call, argument) for call in sorted(CALLS) for argument in CALLS[call][1]])
def test_a_quantity_of_the_wrong_dimension_names_the_argument_and_the_unit(call, argument):
    import brian2 as b2

    run, _ = CALLS[call]
    def unit(value, expected_unit, name):  # millivolts for this one argument, plain numbers for the others
        return value * b2.mV if name == argument else value

    expected = "1/ms" if argument == "tol" else "ms"
    with pytest.raises(InputError, match=rf"^{argument} must be a \w+ in {expected} \(") as info:
        run(b2, unit)
    assert "volt" in str(info.value)


def test_the_errors_name_the_unit_for_each_kind():
    import brian2 as b2

    from astrogate.models.units import argument_in_units

    assert argument_in_units(50 * b2.ms, "ms", "duration") == 50.0
    assert argument_in_units(1e-8 / b2.ms, "1/ms", "tol") == pytest.approx(1e-8)
    assert argument_in_units(0.2 * b2.kHz, "Hz", "nu_max") == pytest.approx(200.0)
    assert argument_in_units(7, "ms", "duration") == 7 and argument_in_units(None, "ms", "duration") is None
    with pytest.raises(InputError, match=r"duration must be a time in ms .*got 50\. \* mvolt"):
        argument_in_units(50 * b2.mV, "ms", "duration")
    with pytest.raises(InputError, match="nu_max must be a frequency in Hz"):
        argument_in_units(5 * b2.ms, "Hz", "nu_max")
    with pytest.raises(InputError, match="duration must be a single value"):
        argument_in_units(np.ones(3) * b2.ms, "ms", "duration")
