"""What the fuzz tests share (tests/test_fuzz_api.py, tests/test_fuzz_cli.py): hostile values, a draw that mixes
them with valid ones, and a runner that counts every example's outcome instead of stopping at the first.

A target is a function ``target(draw, tmp) -> (description, call)``: it draws one example's arguments (files go
in `tmp`, a fresh folder per example) and returns a call to make. The runner makes each call under a time limit
and sorts the outcome: accepted (finite results), refused (one InputError line, or exit 2 with one line on the
command line), or a failure: a traceback (any other exception, a multi-line message, an exit code other than 0
and 2), a hang (past the time limit) or a NaN result. The tests assert that the failures are zero; the counts of
a run are written as JSON where ASTROGATE_FUZZ_REPORT names a file.
"""

from __future__ import annotations

import json
import math
import os
import signal
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from astrogate.errors import InputError

# examples per target: a few in `make test`, 1000 in the slow-marked run (or ASTROGATE_FUZZ_EXAMPLES)
DEFAULT_EXAMPLES = 6
SLOW_EXAMPLES = 1000
# an example that takes longer than this hangs (the slowest accepted calls take seconds on a loaded 2-core machine)
HANG_SECONDS = float(os.environ.get("ASTROGATE_FUZZ_HANG_SECONDS", "240"))

# numbers at the edges, NumPy scalars, and values of the wrong type
EDGE_NUMBERS = [0, -1, 1.5, 1e-320, 1e308, -1e308, math.nan, math.inf, -math.inf, 10**400, -(10**400), 2**64,
                np.float32(3), np.int64(3), np.float64(np.nan), np.int8(-1), np.float16(np.inf)]
WRONG_TYPES = [None, True, False, np.bool_(True), "5", "", "abc", "euler", "0", [0], [], (1, 2), {"a": 1}, b"x",
               object(), np.array([1.0, 2.0]), np.array(3.0), np.matrix([[1.0]]), complex(1, 1), Path("x"), print]
HOSTILE = st.sampled_from(EDGE_NUMBERS + WRONG_TYPES)

ARRAY_DTYPES = st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.complex_number_dtypes(),
                         hnp.boolean_dtypes(), hnp.datetime64_dtypes(), hnp.unicode_string_dtypes(),
                         st.just(np.dtype([("a", float), ("b", "i4")])))


def arrays(max_side: int = 12):
    """Arrays of any dtype and 0-3 dimensions, NaN and inf included."""
    return hnp.arrays(ARRAY_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=max_side))


def pm1(rows, columns):
    """+-1 float arrays of the given (strategies of) sizes."""
    return st.tuples(rows, columns).flatmap(
        lambda shape: hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0])))


def real_matrix(rows, columns, low=-3.0, high=3.0):
    return st.tuples(rows, columns).flatmap(
        lambda shape: hnp.arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False)))


def odd_arrays(rows: int, columns: int):
    """Arrays of the right size that are wrong in another way: a matrix, masked, NaN, huge, tiny, complex."""
    base = np.ones((rows, columns))
    masked = np.ma.array(base, mask=np.zeros_like(base, bool))
    masked.mask[0, 0] = True
    return st.sampled_from([np.matrix(base), masked, np.ma.array(base), base * np.nan, base * 1e300,
                            base * 1e-300, base.astype(complex), base[:, :1], base.T, base.tolist(), base[0],
                            base.astype(np.float32), base.astype(int), np.zeros((rows, columns))])


OMIT = object()


class Draw:
    """Each argument valid or hostile: a share of the example's arguments (0, 10 % or 30 %, drawn per example)
    are hostile values; optional ones are sometimes left out (the default applies)."""

    def __init__(self, draw):
        self.draw = draw
        self.bad_share = draw(st.sampled_from([0.0, 0.0, 0.1, 0.3]))

    def __call__(self, valid, hostile=HOSTILE, optional: bool = False):
        if optional and self.draw(st.integers(0, 3)) == 0:
            return OMIT
        if self.draw(st.floats(0, 1)) < self.bad_share:
            return self.draw(hostile)
        return self.draw(valid)

    def kwargs(self, **values):
        """The keyword arguments that were not left out."""
        return {key: value for key, value in values.items() if value is not OMIT}


@dataclass
class Outcome:
    target: str
    examples: int = 0
    accepted: int = 0
    refused: int = 0
    tracebacks: list = field(default_factory=list)
    hangs: list = field(default_factory=list)
    nan_results: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list:
        return self.tracebacks + self.hangs + self.nan_results

    def counts(self) -> dict:
        return {"examples": self.examples, "accepted": self.accepted, "refused": self.refused,
                "tracebacks": len(self.tracebacks), "hangs": len(self.hangs), "nan_results": len(self.nan_results),
                "seconds": round(self.seconds, 1)}


class _Hang(BaseException):  # BaseException: no `except Exception` in the code under test swallows it
    pass


def _alarm(signum, frame):
    raise _Hang()


def finite_everywhere(value, depth: int = 0) -> bool:
    """No NaN (or inf) in a result's numbers: arrays, floats, and those inside dicts, lists and dataclasses."""
    if depth > 4:
        return True
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isfinite(value)
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in "fc" or bool(np.all(np.isfinite(value)))
    if isinstance(value, dict):
        return all(finite_everywhere(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(finite_everywhere(v, depth + 1) for v in value)
    return True


def run_target(name: str, target, examples: int, check=None, finite=None) -> Outcome:
    """`examples` examples of `target` (see the module docstring). `check(description, result)` raises
    AssertionError for an outcome that is a failure other than an exception (the command line's exit codes),
    and returns "refused" for a refusal that is not an exception (exit 2);
    `finite(result)` returns the numbers that must be finite (default: the result itself)."""
    outcome = Outcome(name)
    start = time.perf_counter()

    @settings(max_examples=examples, deadline=None, derandomize=examples < SLOW_EXAMPLES, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def one(data):
        with tempfile.TemporaryDirectory() as folder:
            description, call = target(Draw(data.draw), Path(folder))
            outcome.examples += 1
            previous = signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
            try:
                result = call()
            except _Hang:
                outcome.hangs.append(description)
                return
            except InputError as exc:
                if "\n" in str(exc):
                    outcome.tracebacks.append(f"{description}: a multi-line message {str(exc)!r}")
                else:
                    outcome.refused += 1
                return
            except Exception as exc:
                outcome.tracebacks.append(f"{description}: {type(exc).__name__}: {exc}\n"
                                          f"{''.join(traceback.format_exc(limit=-4))}")
                return
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
            try:
                verdict = check(description, result) if check is not None else None
            except AssertionError as exc:
                outcome.tracebacks.append(f"{description}: {exc}")
                return
            if verdict == "refused":  # the command line's exit 2 with one line
                outcome.refused += 1
                return
            if not finite_everywhere(finite(result) if finite else result):
                outcome.nan_results.append(description)
                return
            outcome.accepted += 1

    one()
    outcome.seconds = time.perf_counter() - start
    report(outcome)
    return outcome


def report(outcome: Outcome) -> None:
    """Add the target's counts to the JSON file named by ASTROGATE_FUZZ_REPORT, if any."""
    path = os.environ.get("ASTROGATE_FUZZ_REPORT")
    if not path:
        return
    path = Path(path)
    counts = json.loads(path.read_text()) if path.is_file() else {}
    counts[outcome.target] = outcome.counts()
    path.write_text(json.dumps(counts, indent=1, sort_keys=True))


def assert_no_failures(outcome: Outcome) -> None:
    assert outcome.examples > 0
    shown = "\n\n".join(outcome.failures[:5])
    assert not outcome.failures, (f"{outcome.target}: {len(outcome.tracebacks)} tracebacks, {len(outcome.hangs)} "
                                  f"hangs, {len(outcome.nan_results)} NaN results in {outcome.examples} examples; "
                                  f"the first:\n{shown}")


def examples_for(slow: bool) -> int:
    """ASTROGATE_FUZZ_EXAMPLES, else SLOW_EXAMPLES for the slow-marked run and DEFAULT_EXAMPLES otherwise."""
    return int(os.environ.get("ASTROGATE_FUZZ_EXAMPLES", "0")) or (SLOW_EXAMPLES if slow else DEFAULT_EXAMPLES)
