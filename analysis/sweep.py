"""The "retrieval" evaluation: a sweep point is one batch of cues retrieved by the gated model (the abstract
model or the Brian2 network), measured by the retrieval metrics. The studies of runs/configs/study_*.toml.

A point's patterns come from its `seed` alone (the same patterns at every point with the same K, N,
correlation and seed: common random numbers make neighbouring points comparable). The [model] table holds
the run settings (runs/README.md). `run_sweep` and `load_spec` are the Python API of these studies; the engine
(analysis/engine.py) runs them as every other study.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np

from astrogate.analysis.recall import BACKENDS
from astrogate.analysis.study import Evaluation, Field, Study, evaluation, fraction, positive, seed, whole
from astrogate.errors import InputError
from astrogate.machine import gib, machine_memory
from astrogate.models.checks import MAX_COUNT, euler_steps, pattern_bytes
from astrogate.models.abstract import TRACE_SAMPLES
from astrogate.models.parameters import PAPER_NAMES, PARAMETER_NAMES, Parameters, check_field

# the metrics that are means over a point's trials of trial_metrics (analysis/metrics.py): adding a name
# there and here records it in every sweep
TRIAL_MEANS = ("nearest_accuracy", "exact_match", "final_overlap",
               # the paper's observables; convergence_time is the run's own (the first sample after which the
               # state moves no more), the others are functions of the final state
               "soft_hamming_error", "hamming_error", "perplexity", "convergence_time")
METRICS = (*TRIAL_MEANS, "converged", "t_converged", "max_gain", "run_seconds")
DEFAULT_METRICS = ("nearest_accuracy", "exact_match", "final_overlap", "converged", "t_converged")
# [model] keys: name -> (type, default); the brian2 keys are allowed only with backend = "brian2"
# settings: the abstract model's run settings preset ("fast" or "reference", models/abstract.py); method, stop and
# dtype change single fields of it ("" keeps the preset's)
RUN_KEYS = {"backend": ("str", "abstract"), "settings": ("str", "fast"), "method": ("str", ""), "stop": ("str", ""),
            "dtype": ("str", ""), "form": ("str", ""), "duration": ("float", 500.0), "tol": ("float", 1e-6)}
ABSTRACT_ONLY_KEYS = ("settings", "stop", "dtype", "form")
RUN_SETTING_KEYS = ("method", "stop", "dtype", "form")  # single fields of the settings preset
BRIAN2_KEYS = {"device": ("str", "cpp_standalone"), "neuron": ("str", "rate"), "target": ("str", "cython"),
               "gating": ("str", "factorised")}
PROBLEM_DEFAULTS = {"correlation": 0.0, "flip": 0.2, "mask": 0.0, "trials": 16, "seed": 0}
# the same quantity given two ways: at most one of each pair (tau_ratio sets tau_g, which tau_p sets too)
EXCLUSIVE = (("K", "load"), ("tau_g", "tau_ratio"), ("tau_p", "tau_ratio"),
             *((field, paper) for paper, field in PAPER_NAMES.items()))


def _parameter(name):
    def check(value):
        check_field(name, value)
        return value
    return check


# fields of the retrieval problem, besides the model parameters; load = K / N, tau_ratio = tau_g / tau_u
PROBLEM_FIELDS = {
    "N": Field("int", whole("N", 2)), "K": Field("int", whole("K")), "load": Field("float", positive("load")),
    "tau_ratio": Field("float", positive("tau_ratio")), "correlation": Field("float", fraction("correlation")),
    "flip": Field("float", fraction("flip")), "mask": Field("float", fraction("mask")),
    "trials": Field("int", whole("trials")), "seed": Field("int", seed()),
}


def point_parameters(values: dict) -> Parameters:
    """The model parameters of a point: its parameter fields, tau_g = tau_ratio * tau_u where given."""
    params = Parameters(**{k: v for k, v in values.items() if k in PARAMETER_NAMES})
    if "tau_ratio" in values:
        params = params.updated(tau_g=values["tau_ratio"] * params.tau_u)
    return params


def pattern_count(values: dict) -> int:
    """K, given directly or as load = K / N."""
    return values["K"] if "K" in values else int(round(values["load"] * values["N"]))


def point_bytes(values: dict, model: dict) -> int:
    """Estimated peak memory of one point: its patterns and its batch of trials with their traces; a Brian2
    network also holds about 2 N K synapses (weights and indices)."""
    N, K = values["N"], pattern_count(values)
    trials = values["trials"]
    traces = 2 * 8 * TRACE_SAMPLES * trials * K
    synapses = 2 * N * K * 48 if model["backend"] == "brian2" else 0
    return pattern_bytes(K, N, trials) + traces + synapses


class Retrieval(Evaluation):
    name = "retrieval"
    fields = {**{name: Field("str" if name == "similarity" else "float", _parameter(name)) for name in PARAMETER_NAMES},
              **PROBLEM_FIELDS}
    tables = ("model",)
    metrics = METRICS
    default_metrics = DEFAULT_METRICS

    def settings(self, tables: dict, loc) -> dict:
        return _parse_model(tables["model"], loc)

    def complete(self, fixed: dict, swept: dict, loc) -> None:
        given = set(fixed) | set(swept)
        for a, b in EXCLUSIVE:
            if a in given and b in given:
                raise InputError(f"{loc.path}:{swept.get(b) or loc.line('fixed', b) or 1}: give {a!r} or {b!r}, "
                                 f"not both")
        if "N" not in given:
            raise loc.error("'N' must be fixed or swept", "fixed")
        if "K" not in given and "load" not in given:
            raise loc.error("the number of patterns must be given, as 'K' or as 'load' (K / N)", "fixed")
        for key, value in PROBLEM_DEFAULTS.items():
            if key not in given:
                fixed[key] = value

    def check(self, study: Study, loc) -> None:
        """Every combination of values before anything runs: each point's parameters (dt against the time
        constants, the number of steps), its number of patterns and its memory against this machine's."""
        from astrogate.analysis.spec import where
        from astrogate.analysis.study import point_values

        available, total = machine_memory()
        table = "axes" if study.axes else "fixed"
        checked = set()
        for index, values in point_values(study):
            at = where(study, index, values)
            key = tuple(sorted((k, v) for k, v in values.items() if k in PARAMETER_NAMES or k == "tau_ratio"))
            if key not in checked:
                checked.add(key)
                try:
                    params = point_parameters(values)
                    euler_steps(study.settings["duration"], params.dt)
                except InputError as exc:
                    raise loc.error(f"at {at}: {exc}", table) from None
            if "K" not in values:
                K = values["load"] * values["N"]
                if not K < MAX_COUNT:
                    raise loc.error(f"at {at}: load = {values['load']:g} with N = {values['N']} is K = {K:.3g} "
                                    f"patterns, more than {MAX_COUNT}", table)
                if round(K) < 1:
                    raise loc.error(f"at {at}: load = {values['load']:g} with N = {values['N']} is K = "
                                    f"{K:.3g}, which rounds to no pattern", table)
            need = point_bytes(values, study.settings)
            if need > available:
                raise loc.error(f"at {at}: a point needs about {gib(need)} of memory, more than the "
                                f"{gib(available)} available on this machine ({gib(total)} in all): choose smaller "
                                f"N, K or trials", table)

    def run(self, values: dict, settings: dict, context: dict) -> dict:
        return {"metrics": simulate_point(values, settings, context.get("build_root"))}

    def rows(self, point, record: dict, study: Study) -> list[dict]:
        metrics = record.get("metrics") or {}

        def value(metric):
            got = record.get("run_seconds") if metric == "run_seconds" else metrics.get(metric)
            return np.nan if got is None else np.float64(got)

        return [{"point": point.id, **point.values, "K": pattern_count(point.values), "status": record["status"],
                 **{m: value(m) for m in study.metrics}, "run_seconds": record.get("run_seconds"),
                 "error": record.get("error") or ""}]


RETRIEVAL = Retrieval()


def _typed(value, kind, loc, table, key):
    from astrogate.analysis.spec import typed

    try:
        return typed(value, kind)
    except InputError as exc:
        raise loc.error(f"{key}: {exc}", table, key) from None


def _parse_model(table: dict, loc) -> dict:
    from astrogate.models.brian2_equations import GATINGS
    from astrogate.models.spiking_equations import NEURON_MODELS

    model = {key: default for key, (_, default) in RUN_KEYS.items()}
    for key, value in table.items():
        if key in RUN_KEYS:
            model[key] = _typed(value, RUN_KEYS[key][0], loc, "model", key)
        elif key not in BRIAN2_KEYS:
            known = ", ".join([*RUN_KEYS, *BRIAN2_KEYS])
            raise loc.error(f"unknown key {key!r} in [model]; known: {known}", "model", key)
    if model["backend"] not in BACKENDS:
        raise loc.error(f"unknown backend {model['backend']!r}; use {' or '.join(BACKENDS)}", "model", "backend")
    from astrogate.models.abstract import DTYPES, FORMS, METHODS, SETTINGS, STOP_RULES

    for key, allowed in (("settings", SETTINGS), ("method", METHODS), ("stop", STOP_RULES), ("dtype", DTYPES),
                         ("form", FORMS)):
        if model[key] not in allowed and not (key != "settings" and model[key] == ""):
            raise loc.error(f"unknown {key} {model[key]!r}; use {', '.join(allowed)}", "model", key)
    if model["backend"] == "abstract":
        try:  # RunSettings checks the combinations (adaptive, replicator) once
            abstract_settings(model)
        except InputError as exc:
            key = "form" if model["form"] == "replicator" else "method"
            raise loc.error(f"{exc}: add settings = \"reference\"", "model", key) from None
    if not model["duration"] > 0:
        raise loc.error("duration must be a positive number of ms", "model", "duration")
    if not model["tol"] >= 0:
        raise loc.error("tol must be >= 0", "model", "tol")
    brian2_keys = [key for key in table if key in BRIAN2_KEYS]
    if model["backend"] == "brian2":
        from astrogate.network.devices import CODEGEN_TARGETS, DEVICES

        given = [key for key in ABSTRACT_ONLY_KEYS if key in table]
        if given:
            raise loc.error(f"{given[0]!r} applies to backend = \"abstract\" only (the Brian2 network runs forward "
                            f"Euler in float64)", "model", given[0])
        if model["method"] not in ("", "euler"):
            raise loc.error("the Brian2 network runs method = \"euler\"", "model", "method")
        for key, (kind, default) in BRIAN2_KEYS.items():
            model[key] = _typed(table.get(key, default), kind, loc, "model", key)
        # every name checked now, not when the first point reaches a worker
        for key, allowed in (("device", DEVICES), ("neuron", NEURON_MODELS), ("target", CODEGEN_TARGETS),
                             ("gating", GATINGS)):
            if model[key] not in allowed:
                raise loc.error(f"unknown Brian2 {key} {model[key]!r}; use {', '.join(allowed)}", "model", key)
    elif brian2_keys:
        raise loc.error(f"{brian2_keys[0]!r} applies to backend = \"brian2\" only", "model", brian2_keys[0])
    return model


# -- one point ----------------------------------------------------------------------------

def run_point(values: dict, model: dict, build_root: str | None = None) -> dict:
    """Run one point and return its record; never raises, so that one bad point cannot stop a sweep."""
    from astrogate.analysis.engine import run_task

    return run_task("retrieval", values, model, {"build_root": build_root})


def simulate_point(values: dict, model: dict, build_root: str | None = None) -> dict:
    """Generate the point's patterns and cues from its seed, retrieve them, and measure."""
    from astrogate.analysis.problems import generated_set

    N, K = values["N"], pattern_count(values)
    params = point_parameters(values)
    patterns, targets, cues = generated_set(K, N, np.random.default_rng(values["seed"]), values["correlation"],
                                            n_cues=values["trials"], flip=values["flip"], mask=values["mask"])
    if model["backend"] == "abstract":
        outcome = _retrieve_abstract(patterns, cues, params, dict(duration=model["duration"], tol=model["tol"],
                                                                  **abstract_settings(model).options()))
    else:
        run = dict(duration=model["duration"], method="euler", tol=model["tol"])
        outcome = _retrieve_brian2(patterns, cues, targets, params, run, model, build_root)
    return _metrics(outcome, targets, cues)


def abstract_settings(model: dict):
    """The abstract model's RunSettings of a spec's [model] table: its preset with the fields it changes."""
    from astrogate.models.abstract import run_settings

    return run_settings(model["settings"], **{k: model[k] for k in RUN_SETTING_KEYS if model.get(k)})


def _retrieve_abstract(patterns, cues, params, run) -> dict:
    from astrogate.models.abstract import AstroGateModel

    model = AstroGateModel(patterns, params)
    trajectory = model.run(cues, traces=False, **run)  # all trials as one batch, each leaving it when it stops
    v = model.rates(trajectory.u)
    gains = model.gains(trajectory.a)
    return dict(v=v, xi=model.xi, gains=gains, max_gain=gains.max(axis=-1), converged=trajectory.converged,
                t_converged=trajectory.t_converged, convergence_time=trajectory.convergence_time)


# one Brian2 session per worker process and device options: a session keeps its build and re-runs it
# with run_args (new patterns, cues, parameters) while the network's structure stays the same
_BRIAN2_SESSIONS: dict = {}


def brian2_session(model: dict, build_root: str | None = None):
    """This process's session for the spec's device options, in this process's own build folder."""
    from astrogate.network.recall import Brian2Session

    build_dir = Path(build_root or "build/sweep") / f"{socket.gethostname()}-{os.getpid()}"
    options = {key: model[key] for key in ("device", "target", "gating", "neuron")}
    key = (str(build_dir), *options.values())
    if key not in _BRIAN2_SESSIONS:
        _BRIAN2_SESSIONS[key] = Brian2Session(build_dir=str(build_dir), **options)
    return _BRIAN2_SESSIONS[key]


def _retrieve_brian2(patterns, cues, targets, params, run, model, build_root) -> dict:
    """The point's trials as one Brian2 network of independent copies (recall_batch), on this process's session
    (built once per network structure: a standalone build re-runs with new patterns, cues and parameters)."""
    from astrogate.analysis.recall import RecallProblem, recall_batch

    session = brian2_session(model, build_root)
    results = recall_batch([RecallProblem(patterns, cue, int(target)) for cue, target in zip(cues, targets)],
                           params, session=session, **run)

    def stacked(name):
        return np.array([r[name] for r in results], dtype=float)

    return dict(v=stacked("v"), xi=patterns, gains=stacked("g"), max_gain=stacked("max_gain"),
                converged=stacked("converged").astype(bool), t_converged=stacked("t_converged"),
                convergence_time=stacked("convergence_time"))


def _metrics(outcome: dict, targets: np.ndarray, cues: np.ndarray) -> dict:
    """Means over the point's trials of the retrieval metrics (analysis/metrics.py) and of the run's own."""
    from astrogate.analysis.metrics import trial_metrics

    per_trial = trial_metrics(outcome["v"], outcome["xi"], targets, cues, gains=outcome["gains"])
    per_trial["convergence_time"] = outcome["convergence_time"]
    t_converged = outcome["t_converged"]
    return {
        **{name: float(np.mean(per_trial[name])) for name in TRIAL_MEANS},
        "converged": float(np.mean(outcome["converged"])),
        "t_converged": float(np.nanmean(t_converged)) if np.any(np.isfinite(t_converged)) else float("nan"),
        "max_gain": float(np.mean(outcome["max_gain"])),
    }


# -- the Python API of sweeps -----------------------------------------------------------------------

def load_spec(path: str | Path) -> Study:
    """A sweep spec from a TOML file, or a shipped study by name ("study_load_taug", "study_beta_correlation")."""
    from astrogate.analysis.spec import load_study

    return load_study(path)


def run_sweep(spec: Study, out: str | Path, client, resume: bool = False, point_function=None,
              max_points: int | None = None, progress: bool = True, force: bool = False):
    """Run the unfinished points of `spec` on `client`'s cluster (None: a local one), writing each result as it
    arrives, and the dataset and table once every point has one; returns the engine's Outcome.

    point_function(values, model, build_root) -> record replaces run_point (tests wrap it). max_points stops
    after that many results of this run (the rest is cancelled), as an interruption would."""
    from astrogate.analysis.engine import execute, prepare_folder
    from astrogate.models import checks

    checks.instance(spec, Study, "spec", "a Study (load_spec)")
    out = checks.path(out, "out")
    resume, progress, force = (checks.flag(resume, "resume"), checks.flag(progress, "progress"),
                               checks.flag(force, "force"))
    if max_points is not None:
        max_points = checks.whole_number(max_points, "max_points", 1)
    if client is not None and not hasattr(client, "submit"):
        raise InputError(f"client must be a distributed.Client (make_client, or your scheduler's) or None, got "
                         f"{type(client).__name__}")
    evaluation(spec.evaluation)  # an unknown evaluation is refused before the folder is touched
    with prepare_folder(spec, out, resume, force) as folder:
        return execute(spec, folder, client, progress=progress, point_function=point_function,
                       max_points=max_points)


def load_sweep(out: str | Path):
    """The spec a sweep folder ran with, and its results so far (Dataset, table)."""
    from astrogate.analysis.engine import load_folder

    spec, dataset, table, _ = load_folder(out)
    return spec, dataset, table
