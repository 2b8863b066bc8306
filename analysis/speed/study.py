"""The speed benchmarks read from the study schema: `astrogate sweep SPEC` runs them with their own loops (each
measurement in a fresh process), not as Dask points: a timing must have the machine to itself.

The speed benchmark (runs/configs/speed_quick.toml; also `astrogate bench speed --config SPEC`, run.py)::

    [study]   evaluation = "speed"
    [model]   preset = "quick", "full" or "targets" (the standalone variants built at each size and the
              retrieval rows' sizes of that preset); simulators = [...]; retrieval_sizes = ["N:K", ...]
    [fixed]   repeats, numpy_work, standalone_work, cuda_work, batch, memory_cap_gb, naam_time_cap_s
    [[zip]]   name = "size", N = {values = [...]}, K = {values = [...]}: the sizes measured

The batch speed benchmark (runs/configs/speed_batch.toml, batch.py: B memories in one network against B separate
runs and NumPy)::

    [study]   evaluation = "speed_batch"
    [fixed]   batches = [1, 10, ...], repeats, devices = "cpp_standalone", "runtime" or "both"
    [[zip]]   name = "size", N = {values = [...]}, K = {values = [...]}: the sizes measured
"""

from __future__ import annotations

from dataclasses import replace

from astrogate.analysis.study import Evaluation, Field, Study, choice, positive, whole
from astrogate.errors import InputError

PRESETS = ("quick", "full", "targets")
NUMBERS = ("numpy_work", "standalone_work", "cuda_work", "memory_cap_gb", "naam_time_cap_s")


class Speed(Evaluation):
    name = "speed"
    fields = {"N": Field("int", whole("N", 2)), "K": Field("int", whole("K", 2)),
              "repeats": Field("int", whole("repeats"), fixed_only=True),
              "batch": Field("int", whole("batch"), fixed_only=True),
              **{name: Field("float", positive(name), fixed_only=True) for name in NUMBERS}}
    tables = ("model",)
    outputs = ("speed.csv", "speed_retrieval.csv", "speed.json", "speed.png")
    on_cluster = False

    def settings(self, tables: dict, loc) -> dict:
        from astrogate.analysis.speed.config import SIMULATORS, parse_sizes

        table = tables["model"]
        for key in table:
            if key not in ("preset", "simulators", "retrieval_sizes"):
                raise loc.error(f"unknown key {key!r} in [model]; use preset, simulators, retrieval_sizes", "model", key)
        preset = table.get("preset", "full")
        if preset not in PRESETS:
            raise loc.error(f"unknown preset {preset!r}; use {', '.join(PRESETS)}", "model", "preset")
        settings = {"preset": preset}
        simulators = table.get("simulators")
        if simulators is not None:
            if not isinstance(simulators, list) or not simulators or any(s not in SIMULATORS for s in simulators):
                raise loc.error(f"simulators must be a list of {', '.join(SIMULATORS)}", "model", "simulators")
            settings["simulators"] = list(dict.fromkeys(simulators))
        sizes = table.get("retrieval_sizes")
        if sizes is not None:
            if not isinstance(sizes, list) or not all(isinstance(s, str) for s in sizes):
                raise loc.error('retrieval_sizes must be a list of "N:K" strings', "model", "retrieval_sizes")
            try:
                settings["retrieval_sizes"] = [list(size) for size in parse_sizes(",".join(sizes))]
            except InputError as exc:
                raise loc.error(str(exc).replace("--sizes", "retrieval_sizes"), "model", "retrieval_sizes") from None
        return settings

    def complete(self, fixed: dict, swept: dict, loc) -> None:
        sizes_together(fixed, swept, loc)

    def execute(self, study: Study, runner) -> None:
        """The speed benchmark's own loop into the run's folder (its lock held by the engine)."""
        from astrogate.analysis.speed.run import run_speed_benchmark

        run_speed_benchmark(speed_config(study), runner.out, runner.log)


SPEED = Speed()


def sizes_together(fixed: dict, swept: dict, loc) -> None:
    if ("N" in fixed) != ("K" in fixed) or ("N" in swept) != ("K" in swept):
        raise loc.error("the sizes are N and K together: a [[zip]] named size of N and K, or both fixed", "fixed")


def _batch_sizes(values) -> tuple:
    from astrogate.models.checks import whole_number

    batches = tuple(whole_number(B, "batches", 1) for B in values)
    if len(set(batches)) != len(batches):
        raise InputError(f"batches: the list repeats a size ({list(batches)})")
    return batches


DEVICES = ("cpp_standalone", "runtime", "both")


class BatchSpeed(Evaluation):
    """The batch speed benchmark (batch.py): at each size N x K and each batch size B, trials per second of one
    cpp_standalone network of B memories against B separate run_args runs and the NumPy model (devices
    "cpp_standalone"), of Brian2's runtime device (devices "runtime"), or both; its own loop, each measurement in a
    fresh process, into batch_speed.csv and batch_speed.json."""

    name = "speed_batch"
    fields = {"N": Field("int", whole("N", 2)), "K": Field("int", whole("K", 2)),
              "batches": Field("ints", _batch_sizes, fixed_only=True),
              "repeats": Field("int", whole("repeats"), fixed_only=True),
              "devices": Field("str", choice("devices", DEVICES), fixed_only=True)}
    outputs = ("batch_speed.csv", "batch_speed.json", "builds")
    on_cluster = False
    DEFAULTS = {"batches": (1, 10, 50, 500), "repeats": 2, "devices": "cpp_standalone"}

    def complete(self, fixed: dict, swept: dict, loc) -> None:
        sizes_together(fixed, swept, loc)
        if "N" not in fixed and "N" not in swept:
            fixed.update(N=20, K=100)
        super().complete(fixed, swept, loc)

    def execute(self, study: Study, runner) -> None:
        from astrogate.analysis.speed.batch import run
        from astrogate.analysis.study import point_values

        sizes = [(values["N"], values["K"]) for _, values in point_values(study)]
        devices = study.fixed["devices"]
        run(runner.out, sizes, list(study.fixed["batches"]), study.fixed["repeats"],
            runtime=devices in ("runtime", "both"), standalone=devices in ("cpp_standalone", "both"))


SPEED_BATCH = BatchSpeed()


def speed_study(preset: str = "full", sizes=None, **changes) -> Study:
    """A speed study of a preset ("quick", "full", "targets") with the given sizes [(N, K), ...] and changes:
    simulators, retrieval_sizes, build_root (settings) or repeats, batch, the work and caps (fields)."""
    from astrogate.analysis.study import Axis

    given = {k: v for k, v in changes.items() if v is not None}
    settings = {"preset": preset, **{k: v for k, v in given.items() if k in ("simulators", "retrieval_sizes",
                                                                             "build_root")}}
    fixed = {k: v for k, v in given.items() if k not in settings}
    axes = (Axis("size", {"N": tuple(n for n, _ in sizes), "K": tuple(k for _, k in sizes)}),) if sizes else ()
    return Study(name="speed", evaluation="speed", settings=settings, fixed=fixed, axes=axes)


def speed_config(study: Study):
    """The SpeedConfig of a speed study: its preset, with the sizes, simulators and numbers the study gives."""
    from astrogate.analysis import speed  # the presets looked up on the package (tests replace them there)
    from astrogate.analysis.study import point_values

    preset = study.settings.get("preset", "full")
    config = {"quick": speed.quick_config, "full": speed.full_config, "targets": speed.targets_config}[preset]()
    changes = {k: v for k, v in study.fixed.items() if k in ("repeats", "batch", *NUMBERS)}
    sizes = [(values["N"], values["K"]) for _, values in point_values(study) if "N" in values]
    if sizes:
        changes["sizes"] = sizes
    if "simulators" in study.settings:
        changes["simulators"] = tuple(study.settings["simulators"])
    if "retrieval_sizes" in study.settings:
        changes["retrieval_sizes"] = tuple(tuple(s) for s in study.settings["retrieval_sizes"])
    if study.settings.get("build_root"):
        changes["build_root"] = study.settings["build_root"]
    return replace(config, **changes)
