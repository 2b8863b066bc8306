"""Summed variables summed by all OpenMP threads on cpp_standalone.

Brian2 2.10 sums a `(summed)` synaptic variable in one serial loop (its `summed_variable.cpp` template
parallelises only the zeroing of the target), so with `openmp_threads` > 1 the O(N K) gating sums, which
are nearly all of a step's work, still run on one core. `ParallelSumCodeObject` is Brian2's own
cpp_standalone code object with a templater derived (`Templater.derive`, as brian2cuda derives its own)
to take `network/templates/summed_variable.cpp` instead: each thread sums its share of the synapses into
private partial sums, which are then added in thread order. Results agree with the serial loop up to the
order of the additions (bit for bit with one thread). Everything else is Brian2's code generation.
"""

from __future__ import annotations

import functools


@functools.cache
def parallel_sum_codeobject_class():
    """ParallelSumCodeObject, made on first use: importing Brian2 takes seconds, and the memory's module
    does not import it until a network is built."""
    from brian2.devices.cpp_standalone.codeobject import CPPStandaloneCodeObject

    class ParallelSumCodeObject(CPPStandaloneCodeObject):
        templater = CPPStandaloneCodeObject.templater.derive("astrogate.network")

    return ParallelSumCodeObject


def use_parallel_sums(updater) -> None:
    """Give a SummedVariableUpdater the parallel template where the active device is cpp_standalone
    (not runtime, and not cuda_standalone, whose device derives from cpp_standalone's)."""
    from brian2 import get_device
    from brian2.devices.cpp_standalone.device import CPPStandaloneDevice

    if type(get_device()) is CPPStandaloneDevice:
        updater.codeobj_class = parallel_sum_codeobject_class()
