"""brian2cuda preferences for cuda_standalone, on machines with or without a GPU.

Measured on this project's machines: CUDA 13's nvcc needs C++17 for nvcc and for the host
flags passed through -Xcompiler; cuRAND comes from the pip package nvidia-curand (CUDA 13 build), whose
library has no unversioned `libcurand.so` for brian2cuda's hard-coded `-lcurand`, so a link to it is made
in the build directory. Without a GPU, brian2cuda's detection (nvidia-smi, deviceQuery) is turned off and
the compute capability is given explicitly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from astrogate.errors import InputError

# H100 and H200, the GPUs this project is measured on; used where no GPU can be asked
DEFAULT_COMPUTE_CAPABILITY = 9.0
# host flags: portable (no -march=native), C++17 for CUDA 13
HOST_COMPILE_ARGS = ["-w", "-O3", "-std=c++17"]
NVCC_COMPILE_ARGS = ["-w", "-std=c++17"]


@dataclass(frozen=True)
class CudaSetup:
    cuda_path: str
    runtime_version: float
    compute_capability: float
    gpu_present: bool
    curand_include: str
    curand_lib: str


def find_cuda_path() -> str:
    """CUDA_PATH or CUDA_HOME if set, else the folder above the nvcc on PATH (following wrappers)."""
    candidates = [os.environ.get("CUDA_PATH"), os.environ.get("CUDA_HOME"), "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(str(Path(os.path.realpath(nvcc)).parent.parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "bin" / "nvcc").exists():
            return candidate
    raise InputError("cuda_standalone needs the CUDA toolkit: no nvcc found (set CUDA_PATH or put nvcc on PATH)")


def cuda_runtime_version(cuda_path: str) -> float:
    out = subprocess.run([str(Path(cuda_path) / "bin" / "nvcc"), "--version"], capture_output=True, text=True).stdout
    match = re.search(r"release (\d+)\.(\d+)", out)
    if not match:
        raise InputError(f"cannot read the CUDA version from {cuda_path}/bin/nvcc --version")
    return float(f"{match.group(1)}.{match.group(2)}")


def find_curand() -> tuple[str, str]:
    """(include dir, library file) of the nvidia-curand pip package."""
    try:
        import nvidia
    except ImportError:
        raise InputError("cuRAND is missing: install the cuda extra (pip install -e '.[cuda]')") from None
    for root in map(Path, nvidia.__path__):
        for sub in ("cu13", "curand"):
            include, lib = root / sub / "include", root / sub / "lib"
            libs = sorted(lib.glob("libcurand.so*")) if lib.is_dir() else []
            if (include / "curand.h").exists() and libs:
                return str(include), str(libs[0])
    raise InputError("cuRAND headers or library not found in the nvidia-curand package")


def query_gpu(field: str) -> str | None:
    """The first GPU's value of an nvidia-smi --query-gpu field (for example compute_cap, memory.total), or
    None where there is no GPU (no nvidia-smi, or it fails)."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return None
    return lines[0].strip()


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def detect_compute_capability() -> float | None:
    """The first GPU's compute capability from nvidia-smi, or None where there is no GPU."""
    return _number(query_gpu("compute_cap"))


def detect_gpu_memory_bytes() -> float | None:
    """The first GPU's memory (nvidia-smi's memory.total, MiB), in bytes, or None where there is no GPU."""
    mib = _number(query_gpu("memory.total"))
    return mib * 2**20 if mib is not None else None


def configure_cuda(build_dir: str | Path, compute_capability: float | None = None) -> CudaSetup:
    """Set the brian2cuda and C++ preferences for a cuda_standalone build in build_dir.
    Call before set_device("cuda_standalone"): importing brian2cuda here registers that device."""
    from brian2 import prefs

    try:
        import brian2cuda  # noqa: F401  (registers the cuda_standalone device and its preferences)
    except ImportError:
        raise InputError("cuda_standalone needs brian2cuda: install the cuda extra (pip install -e '.[cuda]')") from None
    cuda_path = find_cuda_path()
    version = cuda_runtime_version(cuda_path)
    include, curand_lib = find_curand()
    detected = detect_compute_capability()
    capability = float(compute_capability or detected or DEFAULT_COMPUTE_CAPABILITY)

    link_dir = Path(build_dir).resolve() / "curand_link"
    link_dir.mkdir(parents=True, exist_ok=True)
    link = link_dir / "libcurand.so"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(curand_lib)

    backend = prefs.devices.cuda_standalone.cuda_backend
    backend.detect_gpus = False
    backend.gpu_id = 0
    backend.compute_capability = capability
    backend.detect_cuda = False
    backend.cuda_path = cuda_path
    backend.cuda_runtime_version = version
    backend.extra_compile_args_nvcc = list(NVCC_COMPILE_ARGS)
    prefs.codegen.cpp.extra_compile_args_gcc = list(HOST_COMPILE_ARGS)
    prefs.codegen.cpp.include_dirs = [include]
    prefs.codegen.cpp.library_dirs = [str(link_dir)]
    prefs.codegen.cpp.runtime_library_dirs = [str(Path(curand_lib).parent)]
    return CudaSetup(cuda_path, version, capability, detected is not None, include, curand_lib)
