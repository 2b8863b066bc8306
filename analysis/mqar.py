"""Multi-query associative recall (MQAR; Arora et al. 2023, "Zoology: measuring and improving recall in
efficient language models", arXiv 2312.04927) for attention mechanisms without training.

A sequence holds n key-value token pairs with random embeddings: keys +-1 of width d (the parent model of
models/patterns.random_patterns: each bit copies a shared parent bit with probability `correlation`, so keys
interfere), values +-1 of width D, independent. Then T of its keys come back as queries, each with a fraction
`noise` of its bits flipped; the answer to a query is the value paired with its key. Each mechanism maps the
queries, keys and values of the sequence to outputs y (T x D), and an output is decoded to the sequence's value
with the largest dot product:

- accuracy: the decoded value is the right one;
- exact recall: sign(y) equals the right value in every entry (the output *is* the value, not a blend).

Every mechanism sees the same sequences and queries. Rates carry Wilson 95 % intervals.

Mechanisms:

- softmax: softmax(Q K^T / sqrt(d)) V, one shot.
- linear: (Q K^T / d) V, no softmax.
- gated-query: astrogate.attention, query mode with its defaults (equal to softmax attention; the largest
  difference is reported).
- gated-retrieval: astrogate.attention, retrieval mode (the model's parameters, docs/model.md: F quadratic, beta = 20 d): the
  key neurons clean the query by the gated dynamics, then the gains route the values.
- modern-hopfield: Ramsauer et al. (2020) update x <- K^T softmax(beta K x) iterated to convergence on the
  keys (models.baselines.ModernHopfield, beta = 1 by default: at beta = 1/sqrt(d) the iteration falls to the
  mean of the keys, measured accuracy 0 at 16 pairs), then softmax(beta K sign(x))^T V.
- nearest-key: the value of the key with the largest dot product with the query (an oracle, not a network:
  for independent bit flips this is the best decision possible).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from astrogate.analysis.attention import QUERY_DURATION, attention, linear_attention, softmax_attention
from astrogate.analysis.metrics import wilson_interval
from astrogate.analysis.problems import generated_set
from astrogate.analysis.study import Evaluation, Field, Study, fraction, positive, seed, valid_rows, whole
from astrogate.errors import InputError
from astrogate.machine import require_memory
from astrogate.models.abstract import TRACE_SAMPLES
from astrogate.models.baselines import ModernHopfield

# the attention mechanisms compared (the TOML key `methods`, the column `method`); not integration methods
MECHANISMS = ("softmax", "linear", "gated-query", "gated-retrieval", "modern-hopfield", "nearest-key")
COLUMNS = ("trials", "accuracy", "accuracy_lo", "accuracy_hi", "exact", "exact_lo", "exact_hi", "seconds")


class Mqar(Evaluation):
    """A point is one cell (key correlation, query noise, pairs per sequence): every method on the same
    sequences. The sequences of all cells are drawn from one generator seeded by `seed`, in the grid's order
    (the cells of the settings' "cells"), so a point draws the cells before its own first."""

    name = "mqar"
    fields = {"correlation": Field("float", fraction("MQAR correlation")), "noise": Field("float", fraction("MQAR noise")),
              "load": Field("int", whole("MQAR load")),
              "d": Field("int", whole("MQAR d", 2), fixed_only=True), "D": Field("int", whole("MQAR D", 2), fixed_only=True),
              "sequences": Field("int", whole("MQAR sequences"), fixed_only=True),
              "queries": Field("int", whole("MQAR queries"), fixed_only=True),
              "seed": Field("int", seed("MQAR seed"), fixed_only=True),
              # logits beta k.q; at 1/sqrt(d) the iteration falls to the keys' mean
              "hopfield_beta": Field("float", positive("MQAR hopfield_beta"), fixed_only=True),
              # ms, cap of the gated retrieval run (it settles in ~350 ms), and its tolerance in 1/ms
              "retrieval_duration": Field("float", positive("MQAR retrieval_duration"), fixed_only=True),
              "retrieval_tol": Field("float", positive("MQAR retrieval_tol", zero=True), fixed_only=True)}
    tables = ("model",)
    metrics = COLUMNS
    default_metrics = COLUMNS
    dims = ("method",)
    text_columns = ("method",)
    outputs = ("summary.json", "table.md", "mqar_accuracy_vs_load.png")
    DEFAULTS = {"d": 64, "D": 64, "sequences": 8, "queries": 16, "seed": 0, "hopfield_beta": 1.0,
                "retrieval_duration": 400.0, "retrieval_tol": 1e-6}

    def settings(self, tables: dict, loc) -> dict:
        table = tables["model"]
        for key in table:
            if key != "methods":
                raise loc.error(f"unknown key {key!r} in [model]; MQAR takes methods = [...]", "model", key)
        methods = table.get("methods", list(MECHANISMS))
        if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
            raise loc.error("methods must be a non-empty list of names", "model", "methods")
        unknown = [m for m in methods if m not in MECHANISMS]
        if unknown:
            raise loc.error(f"unknown MQAR method(s) {', '.join(unknown)}: use {', '.join(MECHANISMS)}", "model", "methods")
        return {"methods": list(dict.fromkeys(methods))}

    def complete(self, fixed: dict, swept: dict, loc) -> None:
        for key in ("correlation", "noise", "load"):
            if key not in fixed and key not in swept:
                raise loc.error(f"{key!r} must be fixed or swept (MQAR cells are correlation, noise and load)", "fixed")
        for key, value in self.DEFAULTS.items():
            fixed.setdefault(key, value)

    def prepare(self, study: Study) -> Study:
        """The cells in the order they draw their sequences (the grid's order)."""
        from astrogate.analysis.study import point_values

        cells = [[v["correlation"], v["noise"], v["load"]] for _, v in point_values(study)]
        return replace(study, settings={**study.settings, "cells": cells})

    def check(self, study: Study, loc) -> None:
        """A sequence at a time: its keys, values and queries, and the gated network's B x load logits and traces."""
        f = study.fixed
        largest = max(cell[2] for cell in study.settings["cells"])
        try:
            require_memory(8 * 8 * largest * (f["d"] + f["D"] + f["queries"] * TRACE_SAMPLES),
                           f"an MQAR sequence of {largest} pairs (d = {f['d']}, D = {f['D']}, {f['queries']} queries)")
        except InputError as exc:
            raise loc.error(str(exc), "axes") from None

    def run(self, values: dict, settings: dict, context: dict) -> dict:
        """BLAS runs on one thread meanwhile: the matrices are small (T x n x d), and several threads per product
        only contend (measured 20x slower per Euler step on 2 loaded cores at n = 256)."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return run_cell(values, settings)

    def valid(self, record: dict) -> bool:
        notes = record.get("notes")
        return valid_rows(record.get("rows"), self.text_columns) and isinstance(notes, dict)

    def rows(self, point, record: dict, study: Study) -> list[dict]:
        if record["status"] == "ok":
            return record["rows"]
        return [{"correlation": point.values["correlation"], "noise": point.values["noise"], "load": point.values["load"],
                 "method": method, "status": record["status"], "error": record.get("error") or ""}
                for method in study.settings["methods"]]

    def finish(self, study: Study, finished, stage) -> list[str]:
        from astrogate.analysis.io import write_json

        records = [r for r in finished.records.values() if r["status"] == "ok"]
        seconds = {method: 0.0 for method in study.settings["methods"]}
        not_converged = dict.fromkeys(study.settings["methods"], 0)
        for record in records:
            for row in record["rows"]:
                seconds[row["method"]] += row["seconds"]
            for method, count in record["notes"]["not_converged"].items():
                not_converged[method] += count
        cells = study.settings["cells"]
        summary = {
            "config": {"loads": list(dict.fromkeys(c[2] for c in cells)),
                       "interference": list(dict.fromkeys((c[0], c[1]) for c in cells)),
                       **{k: study.fixed[k] for k in self.DEFAULTS}, "methods": study.settings["methods"]},
            "runtime_seconds": finished.runtime_seconds,
            "seconds_per_method": seconds,
            "gated_query_max_distance_to_softmax": max([r["notes"]["max_query_distance"] for r in records] or [0.0]),
            "sequences_not_converged": not_converged,
            "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
                       f"NumPy {np.__version__}",
        }
        write_json(stage / "summary.json", summary)
        if "status" in finished.table:  # a failed cell's rows say so: the table and figure show the others
            finished = replace(finished, table=finished.table[finished.table["status"].isna()].drop(columns=["status", "error"]))
        write_table_and_figure(finished.table.to_dict("records"), stage)
        return list(self.outputs)


MQAR = Mqar()


def mqar_study(quick: bool = False, loads=None, **fixed) -> Study:
    """The shipped MQAR study (runs/configs/mqar.toml, or mqar_quick.toml) with loads (pairs per sequence) and
    fixed fields (sequences, queries, d, D, seed) changed where given (None: unchanged)."""
    from astrogate.analysis.spec import shipped_study

    return shipped_study("mqar_quick" if quick else "mqar", fixed, {"load": loads})


@dataclass
class Sequence:
    keys: np.ndarray  # n x d
    values: np.ndarray  # n x D
    queries: np.ndarray  # T x d
    targets: np.ndarray  # (T,) index of the pair each query asks for


def make_sequence(n: int, d: int, D: int, T: int, correlation: float, noise: float,
                  rng: np.random.Generator) -> Sequence:
    """n pairs, and T (at most n) distinct keys asked for, as queries with a fraction `noise` of bits flipped."""
    targets = rng.choice(n, size=min(T, n), replace=False)
    keys, targets, queries = generated_set(n, d, rng, correlation, flip=noise, targets=targets)
    values = rng.choice([-1.0, 1.0], size=(n, D))
    return Sequence(keys, values, queries, targets)


def mechanism_outputs(method: str, seq: Sequence, values: dict) -> tuple[np.ndarray, dict]:
    """(outputs T x D, notes) of one mechanism on one sequence."""
    Q, K, V = seq.queries, seq.keys, seq.values
    if method == "softmax":
        return softmax_attention(Q, K, V)[1], {}
    if method == "linear":
        return linear_attention(Q, K, V), {}
    if method == "gated-query":
        result = attention(Q, K, V, record_every=QUERY_DURATION)
        return result.outputs, {"distance_to_softmax": result.output_distance,
                                "converged": bool(np.all(result.converged))}
    if method == "gated-retrieval":
        result = attention(Q, K, V, mode="retrieval", duration=values["retrieval_duration"],
                           tol=values["retrieval_tol"], record_every=values["retrieval_duration"])
        return result.outputs, {"converged": bool(np.all(result.converged))}
    if method == "modern-hopfield":
        beta = values["hopfield_beta"]
        cleaned = ModernHopfield(K, beta=beta, iterate=True).retrieve(Q)
        return softmax_attention(cleaned.states, K, V, scale=beta)[1], {"converged": bool(np.all(cleaned.converged))}
    if method == "nearest-key":
        return V[np.argmax(Q @ K.T, axis=1)], {}
    raise InputError(f"unknown MQAR method {method!r}")


def score(outputs: np.ndarray, seq: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """(correct, exact) per query: decoded to the nearest value of the sequence; sign(y) equal to the value.
    Not metrics.trial_metrics: that scores +-1 states, and decoding the sign of a blend (linear attention's, say)
    would throw away what the dot product with the values still sees."""
    decoded = np.argmax(outputs @ seq.values.T, axis=1)
    correct = decoded == seq.targets
    exact = np.all(np.sign(outputs) == seq.values[seq.targets], axis=1)
    return correct, exact


def run_cell(values: dict, settings: dict) -> dict:
    """Every method of settings["methods"] on the sequences of one cell: {"rows": one per method, "notes"}."""
    rng = np.random.default_rng(values["seed"])
    position = settings["cells"].index([values["correlation"], values["noise"], values["load"]])
    for correlation, noise, load in settings["cells"][: position + 1]:  # the draws of the cells before, then ours
        sequences = [make_sequence(load, values["d"], values["D"], values["queries"], correlation, noise, rng)
                     for _ in range(values["sequences"])]
    rows, max_query_distance, not_converged = [], 0.0, {}
    for method in settings["methods"]:
        correct, exact = [], []
        not_converged[method] = 0
        start = time.perf_counter()
        for seq in sequences:
            outputs, notes = mechanism_outputs(method, seq, values)
            c, e = score(outputs, seq)
            correct.append(c)
            exact.append(e)
            max_query_distance = max(max_query_distance, notes.get("distance_to_softmax", 0.0))
            not_converged[method] += int(not notes.get("converged", True))
        elapsed = time.perf_counter() - start
        correct, exact = np.concatenate(correct), np.concatenate(exact)
        trials = correct.size
        acc_lo, acc_hi = wilson_interval(int(correct.sum()), trials)
        ex_lo, ex_hi = wilson_interval(int(exact.sum()), trials)
        rows.append(dict(correlation=correlation, noise=noise, load=load, method=method, trials=trials,
                         accuracy=float(correct.mean()), accuracy_lo=acc_lo, accuracy_hi=acc_hi,
                         exact=float(exact.mean()), exact_lo=ex_lo, exact_hi=ex_hi, seconds=elapsed))
    return {"rows": rows, "notes": {"max_query_distance": max_query_distance, "not_converged": not_converged}}


def plot_mqar(rows: list[dict]):
    """Accuracy (top) and exact recall (bottom) against load, one column per interference level, one line per
    method with its Wilson 95 % interval as error bars. Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = list(dict.fromkeys((r["correlation"], r["noise"]) for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(2, len(levels), squeeze=False, sharex=True, sharey=True,
                             figsize=(2.8 * len(levels) + 1.8, 5.2))
    cmap = plt.get_cmap("tab10")
    for c, (correlation, noise) in enumerate(levels):
        for r, (metric, label) in enumerate((("accuracy", "accuracy"), ("exact", "exact recall"))):
            ax = axes[r, c]
            for k, method in enumerate(methods):
                cell = sorted((row for row in rows if row["method"] == method and row["correlation"] == correlation
                               and row["noise"] == noise), key=lambda row: row["load"])
                x = np.array([row["load"] for row in cell])
                y = np.array([row[metric] for row in cell])
                err = np.array([[row[metric] - row[f"{metric}_lo"] for row in cell],
                                [row[f"{metric}_hi"] - row[metric] for row in cell]])
                gated = method.startswith("gated")
                # softmax is drawn wide and pale: gated-query lies on it
                style = dict(lw=4.0, alpha=0.45) if method == "softmax" else dict(lw=2.0 if gated else 1.2)
                ax.errorbar(x, y, yerr=err, label=method, color=cmap(k % 10),
                            ls="-" if gated or method == "softmax" else ("--" if method != "nearest-key" else ":"),
                            marker="o" if gated else "s", ms=3, capsize=2, **style)
            ax.set_xscale("log", base=2)
            ax.set_xticks(x, [str(int(v)) for v in x])
            ax.minorticks_off()
            ax.set_ylim(-0.03, 1.03)
            if r == 0:
                ax.set_title(f"key correlation {correlation:g}, query noise {noise:g}", fontsize=8)
            else:
                ax.set_xlabel("pairs per sequence (load)", fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
            ax.tick_params(labelsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=7, frameon=False)
    fig.suptitle("Multi-query associative recall (no training): accuracy and exact recall vs load", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / fig.get_figwidth(), 0.95))
    return fig


def markdown_table(rows: list[dict]) -> str:
    """Accuracy and exact recall per cell, methods as columns ('acc / exact', 95 % intervals in the CSV)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    head = "| key corr. | query noise | pairs | " + " | ".join(methods) + " |"
    lines = [head, "|" + "---|" * (3 + len(methods))]
    cells = list(dict.fromkeys((r["correlation"], r["noise"], r["load"]) for r in rows))
    for correlation, noise, load in cells:
        by_method = {r["method"]: r for r in rows
                     if (r["correlation"], r["noise"], r["load"]) == (correlation, noise, load)}
        values = [f"{by_method[m]['accuracy']:.2f} / {by_method[m]['exact']:.2f}" for m in methods]
        lines.append(f"| {correlation:g} | {noise:g} | {load} | " + " | ".join(values) + " |")
    return "\n".join(lines)


FIGURE = "mqar_accuracy_vs_load.png"


def write_table_and_figure(rows: list[dict], out: Path) -> list[Path]:
    from astrogate.analysis.io import save_figure
    from astrogate.files import write_text

    table_path = write_text(out / "table.md", markdown_table(rows) + "\n", "Markdown table")
    fig_path = save_figure(plot_mqar(rows), out / FIGURE, dpi=120)
    return [table_path, fig_path]


def read_rows(path: str | Path) -> list[dict]:
    """The rows of an MQAR study's results.csv."""
    import csv

    import io

    from astrogate.files import read_text

    path = Path(path)
    text = read_text(path, "MQAR results file")
    try:
        with io.StringIO(text, newline="") as fh:
            rows = [{key: value if key == "method" else float(value) for key, value in row.items()}
                    for row in csv.DictReader(fh)]
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{str(path)!r} is not an MQAR results.csv ({exc})") from None
    if not rows or "accuracy" not in rows[0]:
        raise InputError(f"{str(path)!r} is not an MQAR results.csv (no rows with an accuracy column)")
    return rows


def replot(out: str | Path) -> list[Path]:
    """Table and figure again from out/results.csv, without running anything."""
    out = Path(out)
    return write_table_and_figure(read_rows(out / "results.csv"), out)
