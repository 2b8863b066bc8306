"""Command-line options shared by the subcommands that run the model."""

from __future__ import annotations

import argparse
import math

from astrogate.errors import InputError
from astrogate.models import checks
from astrogate.models.parameters import Parameters
from astrogate.models.spiking_equations import SPIKING, SpikingParameters

_DEFAULTS = Parameters()
_SPIKING = SpikingParameters()


# -- argument types: the checks of models/checks.py, refusing as argparse errors (one line, exit 2) -------

def _argument_type(parse, check, label: str):
    def convert(text: str):
        try:
            value = parse(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {label}, got {text!r}") from None
        try:
            return check(value)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = label  # argparse names the type in its own messages
    return convert


def _whole(text: str) -> int:
    """An int; '1e3' too (a float with no fractional part), so that sizes can be written as powers of ten."""
    try:
        return int(text)
    except ValueError:
        value = float(text)
        if not (math.isfinite(value) and value.is_integer()):
            raise
        return int(value)


def positive_float(name: str):
    return _argument_type(float, lambda v: checks.positive_number(v, name), "a positive number")


def nonnegative_float(name: str):
    return _argument_type(float, lambda v: checks.nonnegative_number(v, name), "a number >= 0")


def count(name: str, minimum: int = 1, maximum: int = checks.MAX_COUNT):
    return _argument_type(_whole, lambda v: checks.whole_number(v, name, minimum, maximum), "a whole number")


seed_type = _argument_type(_whole, checks.seed, "a seed (a whole number >= 0)")


def check_outputs(args: argparse.Namespace) -> None:
    """--json, --plot and --raster checked before the run that fills them (a figure's format, not a folder)."""
    from astrogate.analysis.io import prepare_output

    for option, what in (("json", "JSON output"), ("plot", "plot"), ("raster", "plot")):
        if getattr(args, option, None):
            prepare_output(getattr(args, option), what)



def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model parameters (defaults: docs/model.md)")
    group.add_argument("--beta", type=float, default=None, help="allocation inverse temperature (default 20 N)")
    group.add_argument("--gamma", type=float, default=_DEFAULTS.gamma, help="neural gain (default %(default)s)")
    group.add_argument("--kappa", type=float, default=_DEFAULTS.kappa, help="coupling (default %(default)s)")
    group.add_argument("--tau-u", type=float, default=_DEFAULTS.tau_u, help="neuron time constant, ms (default %(default)s)")
    group.add_argument("--tau-g", type=float, default=_DEFAULTS.tau_g, help="astrocyte time constant, ms (default %(default)s)")
    group.add_argument("--similarity", default=_DEFAULTS.similarity,
                       help="F: quadratic, linear or power:n (default %(default)s)")
    group.add_argument("--cue-scale", type=float, default=_DEFAULTS.cue_scale,
                       help="u(0) = cue-scale * cue (default %(default)s)")
    group.add_argument("--dt", type=float, default=_DEFAULTS.dt, help="time step, ms (default %(default)s)")


def params_from_args(args: argparse.Namespace) -> Parameters:
    return Parameters(gamma=args.gamma, kappa=args.kappa, beta=args.beta, tau_u=args.tau_u, tau_g=args.tau_g,
                      similarity=args.similarity, dt=args.dt, cue_scale=args.cue_scale)


def add_problem_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("patterns and cue (files, or generated)")
    group.add_argument("--patterns", metavar="FILE.npy", help="K x N stored patterns")
    group.add_argument("--cue", metavar="FILE.npy", help="cue of length N (with --patterns)")
    group.add_argument("--target-pattern", type=int, default=None, metavar="I",
                       help="index of the pattern the cue belongs to, if known")
    group.add_argument("--K", type=int, default=400, help="generated: number of patterns (default %(default)s)")
    group.add_argument("--N", type=int, default=200, help="generated: number of neurons (default %(default)s)")
    group.add_argument("--correlation", type=float, default=0.0,
                       help="generated: probability that a bit copies the shared parent (default %(default)s)")
    group.add_argument("--flip", type=float, default=0.2, help="generated: fraction of cue bits flipped (default %(default)s)")
    group.add_argument("--seed", type=seed_type, default=0, help="generated: random seed (default %(default)s)")


def problem_from_args(args: argparse.Namespace):
    from astrogate.analysis.recall import file_problem, generated_problem

    if (args.patterns is None) != (args.cue is None):
        raise InputError("--patterns and --cue go together: give both files, or neither to generate a problem")
    if args.patterns is not None:
        return file_problem(args.patterns, args.cue, args.target_pattern)
    return generated_problem(args.K, args.N, args.correlation, args.flip, args.seed, args.target_pattern)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("integration")
    group.add_argument("--duration", type=positive_float("duration"), default=500.0,
                       help="time limit, ms (default %(default)s)")
    group.add_argument("--method", choices=("euler", "exponential_euler", "adaptive"), default="euler",
                       help="forward Euler at --dt, exponential Euler at --dt (as Brian2's method="
                            "'exponential_euler') or SciPy's adaptive LSODA (default %(default)s)")
    group.add_argument("--tol", type=nonnegative_float("tol"), default=1e-8,
                       help="converged when max|du/dt| and max|da/dt| < tol, in 1/ms (default %(default)s)")
    group.add_argument("--stop", choices=("fixed_point", "decided"), default="fixed_point",
                       help="stop at the fixed point (tol), or as soon as the outcome is decided: the leading gain "
                            "committed and every neuron on the side of its drive (default %(default)s)")
    group.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                       help="working precision of the abstract model (default %(default)s)")


def add_brian2_options(parser: argparse.ArgumentParser, title: str = "Brian2 network (--backend brian2)",
                       spiking: bool = True) -> None:
    """The device options under `title`; the neuron model and the spiking options unless spiking=False
    (a command that runs the rate network only)."""
    group = parser.add_argument_group(title)
    group.add_argument("--device", default=None,
                       help="runtime, cpp_standalone or cuda_standalone (default runtime)")
    group.add_argument("--target", dest="codegen_target", default=None,
                       help="runtime code generation: cython or numpy (default cython)")
    group.add_argument("--gating", default=None,
                       help="factorised (neurons <-> astrocytes, O(NK)), wired (the same with +-1 patterns as the wiring: "
                            "a synapse per +1 entry, no weights, about 3x faster) or dense (N x N synapses gated by the "
                            "astrocytes, O(KN^2), F quadratic only) (default factorised)")
    group.add_argument("--build-dir", default=None, metavar="DIR",
                       help="standalone devices: build in a fresh subfolder of DIR and keep it "
                            "(default: a temporary folder, removed after the run)")
    group.add_argument("--compute-capability", type=float, default=None, metavar="X.Y",
                       help="cuda_standalone: GPU architecture to compile for (default: the GPU's, or 9.0 "
                            "where there is none)")
    group.add_argument("--threads", type=int, default=None, metavar="T",
                       help="cpp_standalone: OpenMP threads, the gating sums included (default 1: no OpenMP)")
    if not spiking:
        return
    group.add_argument("--neuron", default=None,
                       help="rate (tanh), poisson or lif: spiking neurons talk to the astrocytes only through "
                            "spikes (default rate)")
    group.add_argument("--nu-max", type=float, default=None, metavar="HZ",
                       help=f"spiking: largest firing rate, Hz (default {_SPIKING.nu_max:g}; LIF: below 1/t_ref)")
    group.add_argument("--tau-r", type=float, default=None, metavar="MS",
                       help=f"spiking: readout time constant of the rate estimate, ms (default {_SPIKING.tau_r:g})")
    group.add_argument("--readout", default=None,
                       help="spiking: trace (per-neuron low-pass of the spikes) or event (each spike updates the "
                            "astrocytes' overlap traces) (default trace)")


BRIAN2_FLAGS = {"device": "--device", "codegen_target": "--target", "gating": "--gating", "build_dir": "--build-dir",
                "compute_capability": "--compute-capability", "threads": "--threads", "neuron": "--neuron",
                "nu_max": "--nu-max",
                "tau_r": "--tau-r", "readout": "--readout"}
# command-line dest -> recall keyword
BRIAN2_OPTIONS = {"device": "device", "codegen_target": "target", "gating": "gating", "build_dir": "build_dir",
                  "compute_capability": "compute_capability", "threads": "threads", "neuron": "neuron"}
# command-line dest -> SpikingParameters field (recall's `spiking`; the Brian2 seed is --seed)
SPIKING_OPTIONS = {"nu_max": "nu_max", "tau_r": "tau_r", "readout": "readout"}


def brian2_options_from_args(args: argparse.Namespace, backend: str = "brian2") -> dict:
    """The Brian2 options that were given, as recall keywords; an InputError for the abstract backend."""
    from astrogate.models.brian2_equations import GATINGS
    from astrogate.models.spiking_equations import NEURON_MODELS
    from astrogate.network.devices import DEVICES, TARGETS

    given = {dest: getattr(args, dest) for dest in BRIAN2_FLAGS if getattr(args, dest, None) is not None}
    if backend != "brian2":
        if given:
            flags = ", ".join(BRIAN2_FLAGS[dest] for dest in given)
            raise InputError(f"{flags}: for --backend brian2 only")
        return {}
    # each name on its own first, so that a misspelt device is named as such, not as a misplaced --target
    for dest, names in (("device", DEVICES), ("codegen_target", TARGETS), ("gating", GATINGS),
                        ("neuron", NEURON_MODELS)):
        if dest in given and given[dest] not in names:
            raise InputError(f"{BRIAN2_FLAGS[dest]} {given[dest]!r}: unknown; use one of {', '.join(names)}")
    if "codegen_target" in given and given.get("device", "runtime") != "runtime":
        raise InputError("--target (cython or numpy) applies to --device runtime only")
    options = {BRIAN2_OPTIONS[dest]: value for dest, value in given.items() if dest in BRIAN2_OPTIONS}
    spiking = {SPIKING_OPTIONS[dest]: value for dest, value in given.items() if dest in SPIKING_OPTIONS}
    if given.get("neuron") in SPIKING:
        options["spiking"] = SpikingParameters(seed=getattr(args, "seed", 0), **spiking)
    elif spiking:
        flags = ", ".join(BRIAN2_FLAGS[dest] for dest in given if dest in SPIKING_OPTIONS)
        raise InputError(f"{flags}: for spiking neurons only (--neuron poisson or lif)")
    return options
