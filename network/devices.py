"""Choosing and resetting the Brian2 device.

- runtime: Python drives the loop; code generated for `target` numpy or cython.
- cpp_standalone: a C++ project, one fresh build directory per build (two builds in one directory
  give wrong results silently, measured); re-run with run_args without recompiling.
- cuda_standalone: brian2cuda, preferences from network/cuda.py; without a GPU the project can be
  generated and compiled but not run.
"""

from __future__ import annotations

import contextlib
import logging
import numbers
import os
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrogate.errors import InputError
from astrogate.files import os_reason
from astrogate.models import checks

DEVICES = ("runtime", "cpp_standalone", "cuda_standalone")
CODEGEN_TARGETS = ("cython", "numpy")  # Brian2 runtime code generation (prefs.codegen.target)
STANDALONE = ("cpp_standalone", "cuda_standalone")
# Cython's compiled-module cache: the user's cache folder (never the installed package's folder)
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "astrogate" / "cython"
# counts device activations and resets in this process: a network built before the last one is gone
_generation = 0
# the start of a build (Cython, a standalone project) and how long it took: silence with
# logging.getLogger(BUILD_LOGGER).setLevel(logging.WARNING)
BUILD_LOGGER = "astrogate.build"


class _CurrentStderr(logging.StreamHandler):
    """Writes to the sys.stderr of the moment (a notebook's, a test's), not to the one at creation."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def build_log() -> logging.Logger:
    """The logger of build messages; on first use it prints INFO to stderr as "astrogate: ..." unless the
    application configured it."""
    logger = logging.getLogger(BUILD_LOGGER)
    if not logger.handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("astrogate: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


@contextlib.contextmanager
def announced_build(what: str, expected: str):
    """Say that `what` starts and how long it usually takes, and when it is done how long it took."""
    log = build_log()
    log.info(f"{what} ({expected}) ...")
    start = time.perf_counter()
    yield
    log.info(f"{what}: done in {time.perf_counter() - start:.1f} s")


def expected_build_time(device: str, target: str = "cython") -> str | None:
    """How long a build of the network usually takes on this project's machines, or None for one that is
    quick (the numpy target generates Python code)."""
    if device == "cpp_standalone":
        return "a C++ project: about a minute"
    if device == "cuda_standalone":
        return "a CUDA project: minutes"
    if target in ("cython", "auto"):
        return f"Cython: 30 to 150 s the first time, then cached in {CACHE_DIR}"
    return None


def generation() -> int:
    """How many times this process has activated or reset a device: a runtime network built under an
    earlier generation has been forgotten by device.reinit() and must be built again."""
    return _generation


@dataclass(frozen=True)
class DeviceChoice:
    name: str  # one of DEVICES
    target: str = "cython"  # runtime only
    build_root: Path | None = None  # standalone: builds go in fresh subfolders of this folder
    compute_capability: float | None = None  # cuda_standalone: None -> detected, or the default without a GPU
    threads: int = 1  # cpp_standalone: OpenMP threads (1: built without OpenMP, Brian2's default)

    @property
    def standalone(self) -> bool:
        return self.name in STANDALONE


def check_device(device: str, target: str = "cython", build_dir: str | Path | None = None,
                 compute_capability: float | None = None, threads: int = 1) -> DeviceChoice:
    """Validate the names; an InputError names the valid ones."""
    checks.one_of(device, DEVICES, f"unknown device {checks.shown(device)}")
    checks.one_of(target, CODEGEN_TARGETS, f"unknown target {checks.shown(target)}")
    build_dir = None if build_dir is None else checks.path(build_dir, "build_dir")
    if device == "cuda_standalone":
        try:
            import brian2cuda  # noqa: F401  (registers the device)
        except ImportError:
            raise InputError("device cuda_standalone needs brian2cuda, which is not installed "
                             "(pip install -e '.[cuda]')") from None
    if compute_capability is not None:
        if device != "cuda_standalone":
            raise InputError("a compute capability applies to device cuda_standalone only")
        compute_capability = checks.finite_number(compute_capability, "compute capability")
        if not 5.0 <= compute_capability < 20.0:
            raise InputError(f"compute capability {compute_capability!r} is not a CUDA one (for example 9.0 for an H100)")
    if isinstance(threads, (bool, np.bool_)) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise InputError(f"threads must be a whole number >= 1, got {checks.shown(threads)}")
    threads = int(threads)
    if threads > 1 and device != "cpp_standalone":
        raise InputError(f"threads (OpenMP) apply to device cpp_standalone only, not {device!r}")
    return DeviceChoice(device, target, build_dir, compute_capability, threads)


def quiet_brian2() -> None:
    """No debug logs or script copies in the temp folder; the Cython cache in the user's cache folder.
    Called by Brian2Session and the command line only: the library's network objects leave prefs alone."""
    from brian2 import prefs

    prefs.logging.file_log = False
    prefs.logging.save_script = False
    # Ctrl-C interrupts (KeyboardInterrupt, exit 130), rather than ending the run early with partial results
    prefs.core.stop_on_keyboard_interrupt = False
    prefs.codegen.runtime.cython.cache_dir = str(CACHE_DIR)


def activate(choice: DeviceChoice, dt_ms: float) -> Path | None:
    """Reset Brian2 to a clean state on the chosen device and set the clock.
    Returns the fresh build directory for standalone devices, None for runtime."""
    from brian2 import defaultclock, device, ms, prefs, set_device

    global _generation
    _generation += 1
    # preferences of an earlier device (CUDA's compiler flags, say) must not leak into this one
    prefs.reset_to_defaults()
    quiet_brian2()
    build_dir = None
    if choice.name == "runtime":
        set_device("runtime")
        prefs.codegen.target = choice.target
    else:
        build_dir = fresh_build_dir(choice.build_root)
        if choice.name == "cuda_standalone":
            from astrogate.network.cuda import configure_cuda

            configure_cuda(build_dir, choice.compute_capability)
        set_device(choice.name, build_on_run=False)
        if choice.threads > 1:  # the gating sums use them too (network/parallel_sum.py)
            prefs.devices.cpp_standalone.openmp_threads = choice.threads
    # forget the objects and code of any earlier network on this device
    device.reinit()
    device.activate(build_on_run=False)
    defaultclock.dt = dt_ms * ms  # reinit resets the clock
    return build_dir


def fresh_build_dir(root: Path | None) -> Path:
    """A new, empty folder for one standalone build: under `root`, else under this user's private folder of
    builds in the temporary folder (private_build_root), else directly in the temporary folder."""
    base = Path(root) if root is not None else private_build_root()
    try:
        if base is None:  # mkdtemp makes a folder only this user can enter
            return Path(tempfile.mkdtemp(prefix=f"astrogate-build-{os.getpid()}-"))
        base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"build-{os.getpid()}-", dir=base))
    except OSError as exc:
        where = tempfile.gettempdir() if base is None else str(base)
        raise InputError(f"cannot create a build directory under {where!r}: {os_reason(exc)}") from None


def private_build_root() -> Path | None:
    """TMPDIR/astrogate-builds-<uid> (created mode 0700) while it is this user's own folder that no one else
    can write to; None otherwise. A folder of that name that someone else made, a link, or one that others
    can write to would let them change the code that gets compiled and run."""
    base = Path(tempfile.gettempdir()) / f"astrogate-builds-{os.getuid()}"
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(base)
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022
    return base if private else None


def reset_runtime() -> None:
    """Back to the runtime device with default preferences (tests and after a standalone run)."""
    from brian2 import defaultclock, device, ms, prefs, set_device

    global _generation
    _generation += 1
    set_device("runtime")
    device.reinit()
    device.activate()
    prefs.reset_to_defaults()
    quiet_brian2()
    defaultclock.dt = 0.1 * ms
