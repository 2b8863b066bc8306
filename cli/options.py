"""Command-line options shared by the subcommands that run the model."""

from __future__ import annotations

import argparse
import math

from astrogate.errors import InputError
from astrogate.models import checks
from astrogate.models.abstract import METHODS
from astrogate.models.declared import Declared, check_value
from astrogate.models.parameters import PARAMETER_TABLE, SAME_QUANTITY, Parameters
from astrogate.models.spiking_equations import SPIKING, SPIKING_TABLE, SpikingParameters


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



def declared_type(declared: Declared, what: str = "parameter"):
    """The argparse type of a declared parameter: the row's own check (models/declared.py), refusing as an
    argparse error (one line, exit 2)."""
    parse = str if declared.kind in ("choice", "similarity") else (_whole if declared.kind in ("count", "seed") else float)
    label = {"choice": "a name", "similarity": "a name"}.get(declared.kind, "a number")
    return _argument_type(parse, lambda value: check_value(declared, value, what), label)


def add_declared_options(group, table, what: str = "parameter") -> None:
    """One option per row of a declared table that is an option (--tau-u for tau_u, --T for T); default None,
    so that only the options given reach the parameter class, which fills in its own defaults."""
    for spec in table:
        if spec.option:
            metavar = spec.unit.upper() if spec.unit else None
            help_text = f"{spec.describe()} (default {spec.default_words})".replace("%", "%%")
            group.add_argument(spec.flag, dest=spec.name, type=declared_type(spec, what), default=None,
                               metavar=metavar, help=help_text)


def declared_from_args(args: argparse.Namespace, table) -> dict:
    """The declared options that were given on the command line, by parameter name."""
    return {spec.name: getattr(args, spec.name) for spec in table
            if spec.option and getattr(args, spec.name, None) is not None}


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "model parameters (docs/model.md), in astrogate's names or the paper's (--T, --tau-p, --tau-x, --sigma; "
        "one name per quantity)")
    add_declared_options(group, PARAMETER_TABLE)


def params_from_args(args: argparse.Namespace) -> Parameters:
    return Parameters(**declared_from_args(args, PARAMETER_TABLE))


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


# the integration options' defaults, unless a preset gives its own (--preset)
RUN_DEFAULTS = {"duration": 500.0, "method": "euler", "tol": 1e-8, "stop": "fixed_point", "dtype": "float64",
                "form": "logit"}


def add_run_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("integration")
    group.add_argument("--duration", type=positive_float("duration"), default=None,
                       help=f"time limit, ms (default {RUN_DEFAULTS['duration']:g})")
    group.add_argument("--method", choices=METHODS, default=None,
                       help="forward Euler at --dt, exponential Euler at --dt (as Brian2's method="
                            "'exponential_euler') or SciPy's adaptive LSODA (default euler)")
    group.add_argument("--tol", type=nonnegative_float("tol"), default=None,
                       help="converged when max|du/dt| and max|da/dt| < tol, in 1/ms; 0 runs the whole duration "
                            f"(default {RUN_DEFAULTS['tol']:g})")
    group.add_argument("--stop", choices=("fixed_point", "decided"), default=None,
                       help="stop at the fixed point (tol), or as soon as the outcome is decided: the leading gain "
                            "committed and every neuron on the side of its drive (default fixed_point)")
    group.add_argument("--dtype", choices=("float64", "float32"), default=None,
                       help="working precision of the abstract model (default float64)")
    group.add_argument("--form", choices=("logit", "replicator"), default=None,
                       help="the gains' equation: logit (softmax of logits, the simplex exact) or replicator (the "
                            "paper's eq. 6 by forward Euler on the gains) (default logit)")


def run_options_from_args(args: argparse.Namespace, preset=None) -> dict:
    """The integration options: those given, else the preset's, else RUN_DEFAULTS."""
    own = preset.run if preset is not None else {}
    return {name: getattr(args, name) if getattr(args, name) is not None else own.get(name, default)
            for name, default in RUN_DEFAULTS.items()}


def add_preset_option(parser: argparse.ArgumentParser) -> None:
    from astrogate.models.presets import PRESETS

    parser.add_argument("--preset", choices=tuple(PRESETS), default=None,
                        help="a named protocol whose parameters and integration options become the defaults; options "
                             "given override them. paper: Vivet & Arenas (2026): T = 0.01, tau_x = tau_p = 1 ms, "
                             "sigma, x(0) = the cue, replicator form, dt = 0.001 ms, t_f = 10 ms (docs/model.md)")


def params_and_preset(args: argparse.Namespace):
    """(Parameters, preset or None): the preset's parameters updated by the options given."""
    from astrogate.models.presets import preset

    given = declared_from_args(args, PARAMETER_TABLE)
    chosen = preset(args.preset) if getattr(args, "preset", None) else None
    if chosen is None:
        return Parameters(**given), None
    # the preset's keywords, less those given in either name: --T 0.05 keeps the preset's tau_p
    kept = {k: v for k, v in chosen.params.items() if k not in given and SAME_QUANTITY.get(k) not in given}
    return Parameters(**kept, **given), chosen


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
    add_declared_options(group, SPIKING_TABLE, "spiking parameter")

# the spiking options: the rows of SPIKING_TABLE (models/spiking_equations.py) that are options
SPIKING_OPTIONS = tuple(spec.name for spec in SPIKING_TABLE if spec.option)
BRIAN2_FLAGS = {"device": "--device", "codegen_target": "--target", "gating": "--gating", "build_dir": "--build-dir",
                "compute_capability": "--compute-capability", "threads": "--threads", "neuron": "--neuron",
                **{spec.name: spec.flag for spec in SPIKING_TABLE if spec.option}}
# command-line dest -> recall keyword
BRIAN2_OPTIONS = {"device": "device", "codegen_target": "target", "gating": "gating", "build_dir": "build_dir",
                  "compute_capability": "compute_capability", "threads": "threads", "neuron": "neuron"}


def brian2_options_from_args(args: argparse.Namespace, backend: str = "brian2") -> dict:
    """The Brian2 options that were given, as recall keywords; an InputError for the abstract backend."""
    from astrogate.models.brian2_equations import GATINGS
    from astrogate.models.spiking_equations import NEURON_MODELS
    from astrogate.network.devices import CODEGEN_TARGETS, DEVICES

    given = {dest: getattr(args, dest) for dest in BRIAN2_FLAGS if getattr(args, dest, None) is not None}
    if backend != "brian2":
        if given:
            flags = ", ".join(BRIAN2_FLAGS[dest] for dest in given)
            raise InputError(f"{flags}: for --backend brian2 only")
        return {}
    # each name on its own first, so that a misspelt device is named as such, not as a misplaced --target
    for dest, names in (("device", DEVICES), ("codegen_target", CODEGEN_TARGETS), ("gating", GATINGS),
                        ("neuron", NEURON_MODELS)):
        if dest in given and given[dest] not in names:
            raise InputError(f"{BRIAN2_FLAGS[dest]} {given[dest]!r}: unknown; use one of {', '.join(names)}")
    if "codegen_target" in given and given.get("device", "runtime") != "runtime":
        raise InputError("--target (cython or numpy) applies to --device runtime only")
    options = {BRIAN2_OPTIONS[dest]: value for dest, value in given.items() if dest in BRIAN2_OPTIONS}
    spiking = {dest: value for dest, value in given.items() if dest in SPIKING_OPTIONS}
    if given.get("neuron") in SPIKING:
        options["spiking"] = SpikingParameters(seed=getattr(args, "seed", 0), **spiking)
    elif spiking:
        flags = ", ".join(BRIAN2_FLAGS[dest] for dest in given if dest in SPIKING_OPTIONS)
        raise InputError(f"{flags}: for spiking neurons only (--neuron poisson or lif)")
    return options
