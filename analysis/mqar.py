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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from astrogate.analysis.attention import QUERY_DURATION, attention, linear_attention, softmax_attention
from astrogate.analysis.metrics import wilson_interval
from astrogate.analysis.problems import generated_set
from astrogate.errors import InputError
from astrogate.models.abstract import TRACE_SAMPLES
from astrogate.models.baselines import ModernHopfield
from astrogate.models.checks import require_memory, seed as check_seed, whole_number

METHODS = ("softmax", "linear", "gated-query", "gated-retrieval", "modern-hopfield", "nearest-key")


@dataclass(frozen=True)
class MqarConfig:
    loads: tuple = (8, 16, 32, 64, 128, 256)  # key-value pairs per sequence
    interference: tuple = ((0.0, 0.1), (0.0, 0.3), (0.5, 0.1), (0.5, 0.3))  # (key correlation, query noise)
    d: int = 64  # key and query width
    D: int = 64  # value width
    sequences: int = 8  # per (load, interference) cell
    queries: int = 16  # per sequence (at most the load)
    seed: int = 0
    hopfield_beta: float = 1.0  # logits beta k.q; at 1/sqrt(d) the iteration falls to the keys' mean
    retrieval_duration: float = 400.0  # ms, cap of the gated retrieval run (it settles in ~350 ms)
    retrieval_tol: float = 1e-6  # 1/ms
    methods: tuple = METHODS

    def __post_init__(self):
        def whole(name, value, low):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise InputError(f"MQAR {name} must be a whole number >= {low}, got {value!r}")

        if len(self.loads) == 0:
            raise InputError("MQAR loads: give at least one number of pairs")
        for load in self.loads:
            whole("load", load, 1)
        for name in ("d", "D"):
            whole(name, getattr(self, name), 2)
        for name in ("sequences", "queries"):
            whole(name, getattr(self, name), 1)
        if len(self.interference) == 0:
            raise InputError("MQAR interference: give at least one (correlation, noise) level")
        for level in self.interference:
            if len(level) != 2 or not (0 <= level[0] <= 1 and 0 <= level[1] <= 1):
                raise InputError(f"MQAR interference levels are (correlation, noise) pairs in [0, 1], got {level!r}")
        unknown = set(self.methods) - set(METHODS)
        if unknown or not self.methods:
            raise InputError(f"unknown MQAR method(s) {', '.join(sorted(unknown)) or '(none given)'}: "
                             f"use {', '.join(METHODS)}")
        if not self.hopfield_beta > 0:
            raise InputError(f"MQAR hopfield_beta must be positive, got {self.hopfield_beta!r}")
        for name in ("d", "D", "sequences", "queries"):
            whole_number(getattr(self, name), f"MQAR {name}")
        for load in self.loads:
            whole_number(load, "MQAR load")
        check_seed(self.seed, "MQAR seed")
        # a sequence at a time: its keys, values and queries, and the gated network's B x load logits and traces
        largest = max(self.loads)
        require_memory(8 * 8 * largest * (self.d + self.D + self.queries * TRACE_SAMPLES),
                       f"an MQAR sequence of {largest} pairs (d = {self.d}, D = {self.D}, {self.queries} queries)")

    def to_dict(self) -> dict:
        return asdict(self)


QUICK = MqarConfig(loads=(4, 16), interference=((0.0, 0.1), (0.5, 0.3)), d=16, D=16, sequences=2, queries=4)


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


def mechanism_outputs(method: str, seq: Sequence, config: MqarConfig) -> tuple[np.ndarray, dict]:
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
        result = attention(Q, K, V, mode="retrieval", duration=config.retrieval_duration, tol=config.retrieval_tol,
                           record_every=config.retrieval_duration)
        return result.outputs, {"converged": bool(np.all(result.converged))}
    if method == "modern-hopfield":
        beta = config.hopfield_beta
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


def run_mqar(config: MqarConfig = MqarConfig(), show_progress: bool = False) -> dict:
    """Every method on the same sequences; returns {"rows": [...], "summary": {...}}.
    BLAS runs on one thread meanwhile: the matrices are small (T x n x d), and several threads per product
    only contend (measured 20x slower per Euler step on 2 loaded cores at n = 256)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _run_mqar(config, show_progress)


def _run_mqar(config: MqarConfig, show_progress: bool) -> dict:
    rows = []
    seconds = {method: 0.0 for method in config.methods}
    max_query_distance = 0.0
    not_converged = {method: 0 for method in config.methods}
    start_all = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    for correlation, noise in config.interference:
        for load in config.loads:
            sequences = [make_sequence(load, config.d, config.D, config.queries, correlation, noise, rng)
                         for _ in range(config.sequences)]
            for method in config.methods:
                correct, exact = [], []
                start = time.perf_counter()
                for seq in sequences:
                    outputs, notes = mechanism_outputs(method, seq, config)
                    c, e = score(outputs, seq)
                    correct.append(c)
                    exact.append(e)
                    max_query_distance = max(max_query_distance, notes.get("distance_to_softmax", 0.0))
                    not_converged[method] += int(not notes.get("converged", True))
                elapsed = time.perf_counter() - start
                seconds[method] += elapsed
                correct, exact = np.concatenate(correct), np.concatenate(exact)
                trials = correct.size
                acc_lo, acc_hi = wilson_interval(int(correct.sum()), trials)
                ex_lo, ex_hi = wilson_interval(int(exact.sum()), trials)
                rows.append(dict(correlation=correlation, noise=noise, load=load, method=method, trials=trials,
                                 accuracy=float(correct.mean()), accuracy_lo=acc_lo, accuracy_hi=acc_hi,
                                 exact=float(exact.mean()), exact_lo=ex_lo, exact_hi=ex_hi, seconds=elapsed))
                if show_progress:
                    print(f"  c={correlation} noise={noise} n={load} {method}: accuracy {correct.mean():.3f}, "
                          f"exact {exact.mean():.3f} ({elapsed:.2f} s)", flush=True)
    summary = {
        "config": config.to_dict(),
        "runtime_seconds": time.perf_counter() - start_all,
        "seconds_per_method": seconds,
        "gated_query_max_distance_to_softmax": max_query_distance,
        "sequences_not_converged": not_converged,
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
                   f"NumPy {np.__version__}",
    }
    return {"rows": rows, "summary": summary}


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


def write_mqar(result: dict, out: str | Path) -> list[Path]:
    """results.csv, summary.json, table.md and mqar_accuracy_vs_load.png in `out`."""
    from astrogate.analysis.io import write_csv, write_json

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {str(out)!r}: {exc.strerror}") from None
    rows = result["rows"]
    csv_path = write_csv(rows, out / "results.csv")
    json_path = write_json(out / "summary.json", result["summary"])
    return [csv_path, json_path, *write_table_and_figure(rows, out)]


def write_table_and_figure(rows: list[dict], out: Path) -> list[Path]:
    from astrogate.analysis.io import save_figure
    from astrogate.files import write_text

    table_path = write_text(out / "table.md", markdown_table(rows) + "\n", "Markdown table")
    fig_path = save_figure(plot_mqar(rows), out / FIGURE, dpi=120)
    return [table_path, fig_path]


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a results.csv written by write_mqar."""
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


def config_with(config: MqarConfig, **changes) -> MqarConfig:
    """A copy with the given fields changed (None: unchanged)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
