"""The speed benchmark's configuration: the clock, the simulators, the standalone variants, the presets and
the parsing of --sizes and --simulators."""

from __future__ import annotations

from dataclasses import dataclass, field

from astrogate.analysis.speed.retrieval import QUICK_RETRIEVAL_SIZES, RETRIEVAL_SIZES
from astrogate.errors import InputError
from astrogate.models.checks import MAX_COUNT, comma_list, positive_number, whole_number

DT_MS = 0.1  # the model's Brian2 clock (docs/model.md): one simulated second is 10^4 steps
STEPS_PER_SECOND = int(round(1000.0 / DT_MS))
# the memory's default order of the overlap synapses (by neuron: no chain of additions into one m_mu;
# docs/speed_notes.md); the benchmark also times the old order, by pattern, at the target size
LAYOUT = "by_neuron"
TRIAL_MS = 500.0  # a retrieval trial, as `astrogate recall` runs it by default
# beta = 20 N, capped where the Brian2 network's shifted softmax would overflow (N = 10^5 at dt = 0.1 ms);
# the cost of a step does not depend on beta
BETA_CAP = 1e5

# "retrieval": time per retrieved cue against modern Hopfield (analysis/speed/retrieval.py, its own sizes)
SIMULATORS = ("numpy", "batched", "runtime", "cpp", "cuda", "gpu_limit", "naam", "retrieval")
CPP, CUDA = "cpp_standalone", "cuda_standalone"
# the size at which the speed targets are stated
TARGET_SIZE = (10**4, 10**3)


@dataclass(frozen=True)
class StandaloneVariant:
    """One standalone build of the benchmark's network, on cpp_standalone or cuda_standalone."""
    device: str = CPP
    threads: int = 1  # OpenMP threads, cpp_standalone only (1: built without OpenMP, Brian2's default)
    weight_dtype: str = "float64"  # storage of the factorised gating weights
    layout: str = LAYOUT  # order of the overlap synapses
    gating: str = "factorised"  # or "wired": +-1 patterns as the wiring, no weights

    def __post_init__(self):
        if self.device not in (CPP, CUDA):
            raise InputError(f"a standalone variant is on {CPP} or {CUDA}, not {self.device!r}")
        if self.device == CUDA and self.threads != 1:
            raise InputError("threads (OpenMP) apply to cpp_standalone only")

    @property
    def simulator(self) -> str:
        return "cpp" if self.device == CPP else "cuda"

    @property
    def name(self) -> str:
        base = CUDA if self.device == CUDA else f"{CPP}_{self.threads}thread{'s' if self.threads > 1 else ''}"
        return (base + ("_float32" if self.weight_dtype == "float32" else "")
                + ("" if self.layout == LAYOUT else f"_{self.layout}")
                + ("_wired" if self.gating == "wired" else ""))


def cuda_variant(**fields_) -> StandaloneVariant:
    return StandaloneVariant(device=CUDA, **fields_)


# the variant each device runs at every size (1 thread, float64, by neuron, factorised)
BASE_VARIANTS = {"cpp": StandaloneVariant(), "cuda": cuda_variant()}


@dataclass
class SpeedConfig:
    sizes: list[tuple[int, int]]  # (N, K)
    simulators: tuple[str, ...] = SIMULATORS
    repeats: int = 5
    numpy_work: float = 5e8  # steps x N K of one timed NumPy sample (at least 3 steps, at most 50)
    runtime_steps: tuple[int, int] = (5, 25)  # two durations, differenced (the longer one is grown to ~1 s)
    standalone_work: float = 1e9  # steps x N K of one cpp_standalone run (~a few seconds here)
    # steps x N K of one cuda_standalone run: a GPU step is ~100x shorter; at least 1000 steps, so that the
    # loop (timed between two cudaDeviceSynchronize) outweighs launching and synchronising
    cuda_work: float = 1e10
    batch: int = 128
    memory_cap_gb: float = 8.0
    # a NAAM size whose measurement (warm-up and repeats) is estimated to take longer is reported, not run
    naam_time_cap_s: float = 300.0
    # standalone variants beyond each device's base one (BASE_VARIANTS), as StandaloneVariant -> the sizes
    # they run at; each runs where its device's simulator ("cpp", "cuda") is selected
    variant_sizes: dict = field(default_factory=dict)
    build_root: str | None = None
    retrieval_sizes: tuple = RETRIEVAL_SIZES  # (N, K) of the retrieval rows

    def __post_init__(self):
        # the caps turn measurements off: NaN would compare False and silently turn the cap off instead
        for name in ("memory_cap_gb", "naam_time_cap_s", "numpy_work", "standalone_work", "cuda_work"):
            positive_number(getattr(self, name), name)
        for name in ("repeats", "batch"):
            whole_number(getattr(self, name), name, minimum=1)
        if not self.sizes or not self.simulators:
            raise InputError("a speed benchmark needs at least one size and one simulator")
        self.sizes = list(dict.fromkeys(tuple(size) for size in self.sizes))

    @property
    def memory_cap_bytes(self) -> float:
        return self.memory_cap_gb * 2**30

    def variants(self, simulator: str, size: tuple[int, int]) -> list[StandaloneVariant]:
        """The builds of one device ("cpp" or "cuda") at one size: its base variant, then the others."""
        return [BASE_VARIANTS[simulator]] + [v for v, sizes in self.variant_sizes.items()
                                             if v.simulator == simulator and tuple(size) in map(tuple, sizes)]


def full_config() -> SpeedConfig:
    sizes = [(N, K) for N in (10**3, 10**4, 10**5) for K in (10**2, 10**3, 10**4)]
    target = [TARGET_SIZE]
    at_target = [StandaloneVariant(layout="by_pattern"), StandaloneVariant(weight_dtype="float32"),
                 StandaloneVariant(threads=2, weight_dtype="float32")]
    everywhere = [StandaloneVariant(threads=2), StandaloneVariant(gating="wired"),
                  StandaloneVariant(threads=2, gating="wired"), cuda_variant(gating="wired")]
    return SpeedConfig(sizes=sizes, variant_sizes={**{v: target for v in at_target},
                                                   **{v: sizes for v in everywhere}})


def targets_config() -> SpeedConfig:
    """Issue 8's target size alone, with every row its targets are computed from (targets()): the CPU and
    GPU limits, the batched model, cpp_standalone on 1 and 2 threads with factorised and wired gating, and
    cuda_standalone with both gatings; 3 repeats. For a machine lent for minutes (a GPU one)."""
    target = [TARGET_SIZE]
    variants = [StandaloneVariant(threads=2), StandaloneVariant(gating="wired"),
                StandaloneVariant(threads=2, gating="wired"), cuda_variant(gating="wired")]
    return SpeedConfig(sizes=target, simulators=("numpy", "batched", "cpp", "cuda", "gpu_limit"), repeats=3,
                       variant_sizes={v: target for v in variants})


def quick_config() -> SpeedConfig:
    sizes = [(N, K) for N in (1000, 3000) for K in (100, 300)]
    return SpeedConfig(sizes=sizes, repeats=3, numpy_work=1e8, standalone_work=2e8, cuda_work=2e9, batch=32,
                       retrieval_sizes=QUICK_RETRIEVAL_SIZES)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'1000:100,3000:300' -> [(1000, 100), (3000, 300)] (N:K pairs), each size once (in the order given)."""
    sizes = []
    for item in comma_list(text, "--sizes"):
        try:
            N, K = (int(x) for x in item.split(":"))
        except ValueError:
            raise InputError(f"--sizes: {item!r} is not N:K (for example 1000:100)") from None
        if not (2 <= N <= MAX_COUNT and 2 <= K <= MAX_COUNT):
            raise InputError(f"--sizes: N and K must be whole numbers from 2 to {MAX_COUNT}, got {item!r}")
        sizes.append((N, K))
    return list(dict.fromkeys(sizes))


def parse_simulators(text: str) -> tuple[str, ...]:
    names = tuple(comma_list(text, "--simulators"))
    unknown = sorted(set(names) - set(SIMULATORS))
    if unknown or not names:
        raise InputError(f"--simulators: unknown {', '.join(unknown) or '(none given)'}; use {', '.join(SIMULATORS)}")
    return names
