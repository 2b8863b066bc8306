"""Do the fast settings retrieve what the reference retrieves? Paired, trial by trial.

Every cell's patterns and cues are made once; the gated model retrieves them with the reference settings
(forward Euler at the Brian2 clock, float64, stopped at the fixed point) and with the settings under test.
Three sets of cells:
- "quick": the cells of the quick retrieval benchmark (runs/configs/bench_quick.toml, the same patterns and
  cues as `astrogate bench retrieval --quick`), for each of its gated models and each of their tuning
  candidates;
- "hidden": cells the benchmark never draws (their own seed stream), correlated patterns at K/N = 2 and 10,
  48 cues each, N = 64 and 100, flips and masks, the default gated model and fast astrocytes with sharp
  allocation (beta = 80 N, tau_g = 2 ms);
- "similarities": as "hidden" at N = 64, for F linear and power 3 (the full benchmark's other gated models).
Targets (the fast settings count as safe when both hold): in every cell the exact-match counts differ by at most one trial in 48, and over all
cells the fast settings lose at most 0.5 % of the trials the reference retrieves exactly.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from astrogate.analysis.benchmark import cell_rng, cell_size, load_benchmark_config, make_problem, models_of, resolve_options
from astrogate.analysis.study import Axis, Evaluation, Field, Study, choice, valid_rows
from astrogate.errors import InputError
from astrogate.models.abstract import REFERENCE_SETTINGS, RunSettings
from astrogate.models.baselines import make_model

HIDDEN_SEED = 20_2026  # a seed stream of its own: none of these cells is a benchmark cell
HIDDEN_N = (64, 100)
HIDDEN_CORRELATIONS = (0.2, 0.4, 0.6)
HIDDEN_LOADS = (2.0, 10.0)
HIDDEN_CORRUPTIONS = ("flip:0.2", "mask:0.3")
HIDDEN_CUES = 48
# the gated models of the hidden cells: the defaults, and the quick benchmark's other extreme (fast astrocytes,
# sharp allocation)
HIDDEN_VARIANTS = (("gated-default", {"similarity": "quadratic"}),
                   ("gated beta=80N tau_g=2", {"similarity": "quadratic", "beta_times_N": 80.0, "tau_g": 2.0}))
# the targets: per cell at most this share of the trials apart, over all cells at most this share of the
# reference's exact retrievals lost
MAX_CELL_DIFFERENCE = 1 / 48
MAX_LOST_SHARE = 0.005


def gated_variants(config: Study) -> list[tuple[str, dict]]:
    """(name, options) of every gated model of a benchmark study, one per tuning candidate."""
    variants = []
    for m in models_of(config):
        if m.kind != "gated":
            continue
        keys = sorted(m.tune)
        for values in itertools.product(*(m.tune[k] for k in keys)):
            choice = dict(zip(keys, values))
            label = m.name + "".join(f" {k}={v:g}" for k, v in choice.items())
            variants.append((label, {**m.options, **choice}))
    return variants


def quick_problems(config: str | Path = "quick"):
    """(cell label, patterns, targets, cues) of every cell of the quick benchmark, as it draws them."""
    from astrogate.analysis.study import enumerate_points

    config = load_benchmark_config(config)
    for point in enumerate_points(config):
        values = point.values
        pattern_set, load, corruption = values["pattern_set"], values["load"], values["corruption"]
        N, K = cell_size(values)
        for instance in range(values["instances"]):
            rng = cell_rng(values["seed"], "cells", pattern_set, load, corruption, instance)
            patterns, targets, cues = make_problem(pattern_set, K, N, values["cues"], corruption, rng)
            yield f"{pattern_set} {corruption} K/N={load:g} #{instance}", patterns, targets, cues


def hidden_problems(seed: int = HIDDEN_SEED):
    """Correlated patterns at K/N = 2 and 10, several N, correlations and corruptions, 48 cues a cell."""
    for N, c, load, corruption in itertools.product(HIDDEN_N, HIDDEN_CORRELATIONS, HIDDEN_LOADS, HIDDEN_CORRUPTIONS):
        K = int(round(load * N))
        rng = cell_rng(seed, "hidden", N, c, load, corruption)
        patterns, targets, cues = make_problem(f"corr:{c}", K, N, HIDDEN_CUES, corruption, rng)
        yield f"corr:{c} {corruption} N={N} K/N={load:g}", patterns, targets, cues


# the other similarity functions of the full benchmark (gated-linear, gated-power3) at its tuning extremes
SIMILARITY_VARIANTS = tuple((f"{F} beta={beta:g}N tau_g={tau_g:g}",
                             {"similarity": F, "beta_times_N": beta, "tau_g": tau_g})
                            for F in ("linear", "power:3") for beta in (5.0, 80.0) for tau_g in (2.0, 20.0))


def similarity_problems(seed: int = HIDDEN_SEED):
    """Correlated patterns (c = 0.4, 0.6) at K/N = 2 and 10, N = 64, 20 % flips, 48 cues a cell."""
    for c, load in itertools.product((0.4, 0.6), HIDDEN_LOADS):
        N = 64
        rng = cell_rng(seed, "similarities", N, c, load)
        patterns, targets, cues = make_problem(f"corr:{c}", int(round(load * N)), N, HIDDEN_CUES, "flip:0.2", rng)
        yield f"corr:{c} flip:0.2 N={N} K/N={load:g}", patterns, targets, cues


CELL_SETS = ("quick", "hidden", "similarities")


def exact(states, patterns, targets) -> np.ndarray:
    return np.all(states == patterns[targets], axis=1)


def compare(problems, variants, fast: RunSettings, reference: RunSettings = REFERENCE_SETTINGS,
            reference_cache: dict | None = None) -> list[dict]:
    """One row per (cell, gated variant): trials, exact matches of both, lost and gained trials, seconds.
    reference_cache: a dict that keeps the reference's outcomes between calls (they do not depend on `fast`)."""
    cache = {} if reference_cache is None else reference_cache
    rows = []
    for label, patterns, targets, cues in problems:
        N = patterns.shape[1]
        for name, options in variants:
            options = resolve_options(options, N)
            model = make_model("gated", patterns, **options)
            if (label, name) not in cache:
                cache[label, name] = _outcome(model, reference, patterns, targets, cues)
            ref, ref_seconds, ref_steps = cache[label, name]
            fast_exact, fast_seconds, fast_steps = _outcome(model, fast, patterns, targets, cues)
            rows.append({"cell": label, "model": name, "trials": len(targets),
                         "reference_exact": int(ref.sum()), "fast_exact": int(fast_exact.sum()),
                         "lost": int(np.sum(ref & ~fast_exact)), "gained": int(np.sum(~ref & fast_exact)),
                         "reference_seconds": ref_seconds, "fast_seconds": fast_seconds,
                         "reference_steps": ref_steps, "fast_steps": fast_steps})
    return rows


def _outcome(model, settings: RunSettings, patterns, targets, cues):
    """(exact match per trial, seconds, mean steps) of the gated model with these run settings."""
    model.settings = settings
    start = time.perf_counter()
    result = model.retrieve(cues)
    return exact(result.states, patterns, targets), time.perf_counter() - start, float(np.mean(result.steps))


def verdict(rows: list[dict]) -> dict:
    """The two targets of the module docstring over a set of rows."""
    worst = max(abs(r["fast_exact"] - r["reference_exact"]) / r["trials"] for r in rows)
    retrieved = sum(r["reference_exact"] for r in rows)
    lost = sum(r["lost"] for r in rows)
    return {"rows": len(rows), "trials": sum(r["trials"] for r in rows), "worst_cell_difference": worst,
            "cells_apart": sum(r["fast_exact"] != r["reference_exact"] for r in rows),
            "reference_exact": retrieved, "lost": lost, "gained": sum(r["gained"] for r in rows),
            "lost_share": lost / retrieved if retrieved else 0.0,
            "reference_seconds": sum(r["reference_seconds"] for r in rows),
            "fast_seconds": sum(r["fast_seconds"] for r in rows),
            "met": bool(worst <= MAX_CELL_DIFFERENCE + 1e-12 and (lost / max(retrieved, 1)) <= MAX_LOST_SHARE)}


def cell_sets() -> dict:
    """name -> (a function giving its problems, the gated variants it checks)."""
    return {"quick": (quick_problems, lambda: gated_variants(load_benchmark_config("quick"))),
            "hidden": (hidden_problems, lambda: HIDDEN_VARIANTS),
            "similarities": (similarity_problems, lambda: SIMILARITY_VARIANTS)}


COLUMNS = ("trials", "reference_exact", "fast_exact", "lost", "gained", "reference_seconds", "fast_seconds",
           "reference_steps", "fast_steps")


class FastCheck(Evaluation):
    """A point is one problem (a cell's patterns and cues) of a cell set, every gated variant of the set
    retrieving it with the reference settings and with the settings under test ([model] settings = "fast",
    and method, stop, dtype changing single fields)."""

    name = "fast_check"
    fields = {"cell_set": Field("str", choice("cell set", CELL_SETS)), "position": Field("int")}
    tables = ("model",)
    metrics = COLUMNS
    default_metrics = COLUMNS
    dims = ("model",)
    text_columns = ("cells", "cell", "model")
    outputs = ("fast_check.json",)

    def settings(self, tables: dict, loc) -> dict:
        from astrogate.models.abstract import run_settings

        table = tables["model"]
        for key in table:
            if key not in ("settings", "method", "stop", "dtype"):
                raise loc.error(f"unknown key {key!r} in [model]; use settings, method, stop, dtype", "model", key)
            if not isinstance(table[key], str):
                raise loc.error(f"{key} must be a string, got {table[key]!r}", "model", key)
        try:
            fast = run_settings(table.get("settings", "fast"), **{k: v for k, v in table.items() if k != "settings"})
        except InputError as exc:
            raise loc.error(str(exc), "model") from None
        return {"fast": fast.options(), "reference": REFERENCE_SETTINGS.options()}

    def complete(self, fixed: dict, swept: dict, loc) -> None:
        if "position" in fixed or "position" in swept:
            raise loc.error("'position' is given by the cell sets: give cell_set only", "fixed")
        if "cell_set" not in fixed and "cell_set" not in swept:
            fixed["cell_set"] = list(CELL_SETS)

    def prepare(self, study: Study) -> Study:
        """The cell sets as one axis of problems: (cell_set, position) for every problem of each set."""
        if any(axis.name == "problem" for axis in study.axes):
            return study
        fixed = dict(study.fixed)
        chosen = fixed.pop("cell_set", None)
        sets = [chosen] if isinstance(chosen, str) else list(chosen or [])
        sets += [v for axis in study.axes for v in axis.values.get("cell_set", ())]
        pairs = [(name, i) for name in dict.fromkeys(sets) for i in range(sum(1 for _ in cell_sets()[name][0]()))]
        axis = Axis("problem", {"cell_set": tuple(p[0] for p in pairs), "position": tuple(p[1] for p in pairs)})
        return replace(study, fixed=fixed, axes=(axis,))

    def run(self, values: dict, settings: dict, context: dict) -> dict:
        from threadpoolctl import threadpool_limits

        problems, variants = cell_sets()[values["cell_set"]]
        problem = next(itertools.islice(problems(), values["position"], None))
        with threadpool_limits(1):  # one BLAS thread: small products, and threads fight over shared cores
            rows = compare([problem], variants(), RunSettings(**settings["fast"]),
                           RunSettings(**settings["reference"]))
        return {"rows": [{"cells": values["cell_set"], **row} for row in rows]}

    def valid(self, record: dict) -> bool:
        return valid_rows(record.get("rows"), self.text_columns)

    def rows(self, point, record: dict, study: Study) -> list[dict]:
        if record["status"] == "ok":
            return record["rows"]
        return [{"cells": point.values["cell_set"], "cell": f"#{point.values['position']}", "model": None,
                 "status": record["status"], "error": record.get("error") or ""}]

    def finish(self, study: Study, finished, stage) -> list[str]:
        from astrogate.analysis.io import write_json

        write_json(stage / "fast_check.json", {which: verdict(rows) for which, rows in rows_by_set(finished.table).items()})
        return ["fast_check.json"]


FAST_CHECK = FastCheck()


def rows_by_set(table) -> dict:
    """{cell set: [row dicts]} of a fast check's results table (rows of failed points left out)."""
    ok = table[table["model"].notna()] if "model" in table else table.iloc[:0]
    return {which: group.to_dict("records") for which, group in ok.groupby("cells", sort=False)}


def fast_check_study(which=CELL_SETS) -> Study:
    """The check of the cell sets named in `which` (CELL_SETS) as a study."""
    from astrogate.analysis.spec import study_from_tables

    sets = [which] if isinstance(which, str) else list(which)
    return study_from_tables({"study": {"name": "fast_check", "evaluation": "fast_check"},
                              "axes": {"cell_set": {"values": sets}}}, "fast check")


def report(result: dict) -> str:
    """The verdict of each cell set, and the cells where the two settings differ; result: {set: (rows, verdict)}."""
    lines = []
    for which, (rows, v) in result.items():
        lines.append(f"{which} cells: {v['rows']} (cell, model) pairs, {v['trials']} trials; the reference retrieves "
                     f"{v['reference_exact']} exactly, the fast settings lose {v['lost']} ({100 * v['lost_share']:.2f} %, "
                     f"target <= {100 * MAX_LOST_SHARE:g} %) and gain {v['gained']}; {v['cells_apart']} pairs apart, "
                     f"the worst by {v['worst_cell_difference']:.3f} of its trials (target <= 1/48 = "
                     f"{MAX_CELL_DIFFERENCE:.3f}); {v['reference_seconds']:.1f} s against {v['fast_seconds']:.1f} s: "
                     f"{'met' if v['met'] else 'NOT met'}")
        for r in rows:
            if r["lost"] or r["gained"]:
                lines.append(f"  {r['cell']}, {r['model']}: reference {r['reference_exact']}/{r['trials']}, "
                             f"fast {r['fast_exact']}/{r['trials']}")
    return "\n".join(lines)
