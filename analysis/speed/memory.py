"""The speed benchmark's memory model: the estimates that refuse sizes that would not fit, the synapses'
bytes and a process's peak resident memory."""

from __future__ import annotations

import resource

# bytes per synapse of a factorised gating Synapses: the weight and the int32 pre and post indices
INDEX_BYTES = 4 + 4
# rough peak bytes per N*K of one Brian2 measurement, used only to refuse sizes that would not fit. A
# standalone measurement is a Python process that builds the project and then runs the binary while it still
# holds its arrays, so its peak is the two together. Measured at N = 10^4, K = 10^3 (N K = 10^7):
# - factorised: Brian2 runtime peaked at 871 MB (88 B per N K, the interpreter's ~150 MB included); for
#   cpp_standalone the Python process at 624 MB and the binary at 462 MB (46 B per N K): at most 114 B per
#   N K together, 98 above the interpreter;
# - wired: the binary at 268 MB (27 to 30 B per N K at N K = 10^6 and 10^7 in docs/figures/speed.csv), but the
#   Python process at 994 MB, 843 MB of it held while the binary runs: Brian2 keeps the connect(i, j) arrays
#   of the two wired Synapses in its standalone array cache and as static arrays, and the memory's index
#   arrays are int64; 1111 MB together, 116 B per N K (100 above the interpreter).
# So wired gating needs a little more memory than factorised in the benchmark, not less (the binary alone
# needs less). With margins of about 10 and 20 % over the figures above the interpreter:
EST_BYTES_PER_NK = {"numpy": 24, "brian2": 110, "brian2_wired": 120}
# cuda_standalone, host: the same Python process, and a binary that creates the synapses on the host as
# cpp_standalone does (the same host arrays, copied to the GPU afterwards) and then looks for repeated (pre, post)
# pairs with a std::map holding every synapse of the Synapses just created (brian2cuda's
# templates/synapses_create_*.cu; cpp_standalone builds that map only for a multisynaptic index): a
# red-black tree node of about 48 bytes per synapse of the larger gating Synapses (N K factorised, N K / 2
# wired). So the host needs more for cuda_standalone than for cpp_standalone, not less. Not measured: no GPU.
CUDA_MAP_BYTES_PER_SYNAPSE = 48
# cuda_standalone, GPU: per synapse the weight (8 bytes, factorised only) and the int32 pre and post indices,
# 2 N K synapses factorised (32 B per N K), N K wired (8 B per N K); x 1.5 for brian2cuda's per-neuron counts
# and allocation granularity, plus 1 GiB for the CUDA context, the kernels and the device heap (128 MB).
# Checked against the GPU's own memory (nvidia-smi), not against --memory-cap-gb. Not measured: no GPU.
EST_GPU_BYTES_PER_NK = {"factorised": 48, "wired": 12}
EST_GPU_FIXED_BYTES = 2**30
# NAAM (models/baselines.py, the authors' dynamics) holds N x N synapses and processes per cue and N x N
# temporaries in a step (g, psi, dS, dP: NeuronAstrocyteMemory.bytes_per_cue), and K x N patterns and two N x K
# contraction intermediates: its peak above the interpreter measured 53 bytes per N^2 at N = 2000, K = 100
# (the earlier version it replaced: 41 to 51 at N = 1000 to 4000)
EST_NAAM_BYTES = {"per_N2": 56, "per_NK": 28}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def estimated_bytes(kind: str, N: int, K: int, gating: str = "factorised") -> float:
    """Rough peak host bytes of one measurement ("numpy", "brian2", "cuda" or "naam"), used only to refuse
    sizes that would not fit."""
    if kind == "naam":
        return EST_NAAM_BYTES["per_N2"] * N**2 + EST_NAAM_BYTES["per_NK"] * N * K
    if kind == "numpy":
        return EST_BYTES_PER_NK["numpy"] * N * K
    wired = gating == "wired"
    per_nk = EST_BYTES_PER_NK["brian2_wired" if wired else "brian2"]
    if kind == "cuda":
        per_nk += CUDA_MAP_BYTES_PER_SYNAPSE * (0.5 if wired else 1.0)
    return per_nk * N * K


def estimated_gpu_bytes(N: int, K: int, gating: str = "factorised") -> float:
    """Rough GPU bytes of a cuda_standalone measurement."""
    return EST_GPU_BYTES_PER_NK["wired" if gating == "wired" else "factorised"] * N * K + EST_GPU_FIXED_BYTES


def synaptic_bytes(N: int, K: int, weight_bytes: int = 8, gating: str = "factorised") -> int:
    """Both gating Synapses (neurons -> astrocytes, astrocytes -> neurons): weight + indices per synapse;
    wired gating: indices only, on the +1 entries (half of the N K entries of random +-1 patterns)."""
    if gating == "wired":
        return 2 * (N * K // 2) * INDEX_BYTES
    return 2 * N * K * (weight_bytes + INDEX_BYTES)
