"""The speed benchmark's machine: the GPU probes, the GPU mat-vec limit and the machine description that
speed.json records."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from astrogate.analysis.speed.numpy_timers import benchmark_patterns, median_seconds

DEFAULT_GPU_MEMORY_BYTES = 80e9  # an H100's, where nvidia-smi does not say
GPU_LIMIT_BATCH = 20  # pairs of products queued between two synchronisations


def time_gpu_limit(N: int, K: int, repeats: int) -> dict:
    """The two products on the GPU (CuPy, else PyTorch), float64, as the cuda_standalone loop runs its
    kernels: GPU_LIMIT_BATCH pairs queued back to back, then one synchronisation; time per pair."""
    try:
        import cupy as cp

        library = "CuPy"
        xi = cp.asarray(benchmark_patterns(K, N))
        v, h = cp.ones(N), cp.ones(K)
        synchronize = cp.cuda.Device().synchronize
    except ImportError:
        try:
            import torch
        except ImportError:
            return {"status": "not measured: neither CuPy nor PyTorch can be imported here"}
        library = "PyTorch"
        xi = torch.as_tensor(benchmark_patterns(K, N), device="cuda")
        v = torch.ones(N, dtype=torch.float64, device="cuda")
        h = torch.ones(K, dtype=torch.float64, device="cuda")
        synchronize = torch.cuda.synchronize

    def pairs():
        for _ in range(GPU_LIMIT_BATCH):
            xi @ v
            xi.T @ h
        synchronize()

    return {"seconds_per_step": median_seconds(pairs, repeats, warmup=3) / GPU_LIMIT_BATCH, "library": library}


def gpu_present() -> float | None:
    from astrogate.network.cuda import detect_compute_capability

    return detect_compute_capability()


def gpu_memory_bytes() -> float | None:
    from astrogate.network.cuda import detect_gpu_memory_bytes

    return detect_gpu_memory_bytes()


def machine_info() -> dict:
    info = {"machine": platform.machine(), "processor": _cpu_name(), "cores": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(), "numpy": np.__version__}
    try:
        import brian2

        info["brian2"] = brian2.__version__
    except ImportError:
        pass
    capability = gpu_present()
    info["gpu"] = f"compute capability {capability}" if capability else "none"
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
