"""astrogate: the astrocyte-gated associative memory of Vivet & Arenas (2026) in NumPy and Brian2.

The shortest retrieval::

    import astrogate as ag
    problem = ag.generated_problem(K=400, N=200, correlation=0.4, flip=0.2, seed=0)
    result = ag.recall(problem)
    print(result.retrieved == problem.target, result.exact_match)

The public names, each documented in the API reference:

- `Parameters`, `SpikingParameters`: the model's parameters (times in ms, or Brian2 quantities), in astrogate's
  names or the paper's (T, tau_p, tau_x, sigma).
- `PAPER_PRESET`: the paper's protocol as recall keywords (``recall(problem, **PAPER_PRESET)``).
- `AstroGateModel`: the abstract NumPy model (right-hand side, Lyapunov function, fixed points, integrators);
  `RunSettings` and `run_settings`: how it integrates and stops; `RunInputs`: a run's initial state and current.
- `AstrocyteGatedMemory`: the network as a Brian2 object to add to your own `Network`; `NetworkSettings`: how its
  network is built (neurons, gating, method, what is recorded), checked once.
- `Brian2Session`: a device and a build that re-runs (standalone run_args) for new patterns, cues, parameters.
- `RecallProblem`, `generated_problem`, `file_problem`: patterns, a cue and its target.
- `recall`, `RecallResult`: one retrieval on the abstract model or the Brian2 network; `recall_batch`: many
  retrievals of one size on the Brian2 network as one network of independent copies; `resolve_recall` and
  `RecallRun`: one retrieval's arguments checked once, what a backend runs; `register_backend`: a backend of your own.
- `make_baseline`: the comparison models (classical, dense and modern Hopfield, the neuron-astrocyte memory,
  the gated network with rate or spiking neurons).
- `load_benchmark_config`, `run_benchmark`, `head_to_head`: the retrieval benchmark and a model-vs-baseline reading of its table.
- `Study`, `load_study`, `run_study`: a study (a grid of points, an evaluation, metrics) read from TOML and run
  point by point on Dask into one output format; `explore` for your own function of a point; `run_sweep` and
  `load_spec` for the retrieval sweeps.
- `attention`, `AttentionResult`: softmax attention of queries over keys and values, computed by astrocytes
  routing values (query mode equals softmax(Q K^T / sqrt(d)) V; retrieval mode cleans the queries first);
  `AttentionSettings`: its settings as one object, checked once.
- `InputError`: every refusal of bad input.

Names are imported on first use, so ``import astrogate`` (and ``astrogate --help``) stays fast and
Brian2 is imported only by the names that need it.
"""

import importlib as _importlib

from astrogate.errors import InputError

__version__ = "0.1.0"

# public name -> module that defines it, or "module:name" where the module's name differs (imported on first
# access, PEP 562)
_PUBLIC = {
    "Parameters": "astrogate.models.parameters",
    "SpikingParameters": "astrogate.models.spiking_equations",
    "PAPER_PRESET": "astrogate.models.presets",
    "AstroGateModel": "astrogate.models.abstract",
    "RunSettings": "astrogate.models.abstract",
    "run_settings": "astrogate.models.abstract",
    "RunInputs": "astrogate.models.abstract",
    "AstrocyteGatedMemory": "astrogate.network.memory",
    "Brian2Session": "astrogate.network.recall",
    "NetworkSettings": "astrogate.network.memory",
    "RecallProblem": "astrogate.analysis.recall",
    "generated_problem": "astrogate.analysis.recall",
    "file_problem": "astrogate.analysis.recall",
    "recall": "astrogate.analysis.recall",
    "RecallResult": "astrogate.analysis.recall",
    "recall_batch": "astrogate.analysis.recall",
    "RecallRun": "astrogate.analysis.recall",
    "resolve_recall": "astrogate.analysis.recall",
    "register_backend": "astrogate.analysis.recall",
    "make_baseline": "astrogate.analysis.bench_models:make_benchmark_model",
    "load_benchmark_config": "astrogate.analysis.benchmark",
    "run_benchmark": "astrogate.analysis.benchmark",
    "head_to_head": "astrogate.analysis.benchmark",
    "explore": "astrogate.analysis.explore",
    "run_sweep": "astrogate.analysis.sweep",
    "load_spec": "astrogate.analysis.sweep",
    "Study": "astrogate.analysis.study",
    "load_study": "astrogate.analysis.spec",
    "run_study": "astrogate.analysis.engine",
    "attention": "astrogate.analysis.attention",
    "AttentionResult": "astrogate.analysis.attention",
    "AttentionSettings": "astrogate.analysis.attention",
}

__all__ = ["InputError", "__version__", *_PUBLIC]


def __getattr__(name):
    where = _PUBLIC.get(name)
    if where is None:
        raise AttributeError(f"module 'astrogate' has no attribute {name!r}")
    module, _, attribute = where.partition(":")
    value = getattr(_importlib.import_module(module), attribute or name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
