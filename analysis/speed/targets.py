"""Issue 8's four speed targets, computed from the rows of a run, and their lines of the report."""

from __future__ import annotations

from astrogate.analysis.speed.config import TARGET_SIZE

# the speed targets at TARGET_SIZE: simulators against the two-mat-vec limit
SPEED_TARGETS = {
    "cpp_ratio_to_limit": "cpp_standalone within 2x of the two-mat-vec limit (CPU)",
    "batched_fraction_of_gemm_peak": "batched abstract model at least half the machine's GEMM throughput",
    "cuda_speedup_over_cpp": "cuda_standalone at least 20x faster per step than cpp_standalone (1 or 2 threads)",
    "cuda_ratio_to_gpu_limit": "cuda_standalone within 3x of the GPU mat-vec limit",
}
TARGET_BOUNDS = {"cpp_ratio_to_limit": ("<=", 2.0), "batched_fraction_of_gemm_peak": (">=", 0.5),
                 "cuda_speedup_over_cpp": (">=", 20.0), "cuda_ratio_to_gpu_limit": ("<=", 3.0)}


def _number(value) -> float | None:
    return None if value in ("", None) else float(value)


def targets(rows, size: tuple[int, int] = TARGET_SIZE) -> dict:
    """Issue 8's four targets at `size`, computed from the rows of one run: per target its value, whether
    it is met, which rows it compares, or why it was not measured. cpp_standalone: the fastest row with 1 or
    2 threads, any variant; cuda_standalone: the fastest row, any variant, against the fastest cpp row and
    against gpu_matvec_limit of the same size."""
    N, K = size
    at = [r for r in rows if int(r["N"]) == N and int(r["K"]) == K]
    where = f"N = {N}, K = {K}"

    def fastest(prefix, max_threads=None):
        """(fastest measured row or None, why not) among the rows whose simulator starts with prefix."""
        candidates = [r for r in at if r["simulator"].startswith(prefix)
                      and (max_threads is None or _number(r.get("threads")) is None
                           or _number(r["threads"]) <= max_threads)]
        done = [r for r in candidates if _number(r["seconds_per_step"]) is not None]
        if done:
            return min(done, key=lambda r: _number(r["seconds_per_step"])), None
        if candidates:
            return None, candidates[0]["status"] or "not measured"
        return None, f"not measured: no {prefix} row at {where} in this run"

    def entry(key, value, compared, why_not=None):
        op, bound = TARGET_BOUNDS[key]
        if value is None:
            return {"target": SPEED_TARGETS[key], "value": None, "met": None, "status": why_not, "rows": compared}
        met = value <= bound if op == "<=" else value >= bound
        return {"target": SPEED_TARGETS[key], "value": value, "met": bool(met), "status": "measured", "rows": compared}

    def time_ratio(key, row, reference, why_not, speedup=False):
        """entry() of row's time per step over the reference row's (speedup: the reference's over row's), both
        rows listed; or of why_not where either row is missing."""
        if not (row and reference):
            return entry(key, None, [], why_not)
        mine, theirs = _number(row["seconds_per_step"]), _number(reference["seconds_per_step"])
        return entry(key, theirs / mine if speedup else mine / theirs, [row["simulator"], reference["simulator"]])

    out = {"N": N, "K": K}
    cpp, cpp_why = fastest("cpp_standalone", max_threads=2)
    cpu_limit, cpu_why = fastest("matvec_limit")
    out["cpp_ratio_to_limit"] = time_ratio("cpp_ratio_to_limit", cpp, cpu_limit, cpp_why or cpu_why)
    batched = [r for r in at if r["simulator"].startswith("numpy_batched")]
    fraction = [r for r in batched if _number(r.get("fraction_of_gemm_peak")) is not None]
    if fraction:
        out["batched_fraction_of_gemm_peak"] = entry("batched_fraction_of_gemm_peak",
                                                     _number(fraction[0]["fraction_of_gemm_peak"]),
                                                     [fraction[0]["simulator"]])
    else:
        out["batched_fraction_of_gemm_peak"] = entry(
            "batched_fraction_of_gemm_peak", None, [],
            batched[0]["status"] if batched else f"not measured: no numpy_batched row at {where} in this run")
    cuda, cuda_why = fastest("cuda_standalone")
    gpu_limit, gpu_why = fastest("gpu_matvec_limit")
    out["cuda_speedup_over_cpp"] = time_ratio("cuda_speedup_over_cpp", cuda, cpp, cuda_why or cpp_why, speedup=True)
    out["cuda_ratio_to_gpu_limit"] = time_ratio("cuda_ratio_to_gpu_limit", cuda, gpu_limit, cuda_why or gpu_why)
    return out


def targets_report(block: dict) -> list[str]:
    """The targets block as lines of text."""
    lines = [f"targets at N = {block['N']}, K = {block['K']}:"]
    for key, text in SPEED_TARGETS.items():
        t = block.get(key)
        if t is None:
            continue
        if t["value"] is None:
            lines.append(f"  {text}: {t['status']}")
        else:
            value = f"{t['value']:.3g}" + ("x" if key != "batched_fraction_of_gemm_peak" else "")
            lines.append(f"  {text}: {value} ({' vs '.join(t['rows'])}): {'met' if t['met'] else 'NOT met'}")
    return lines
