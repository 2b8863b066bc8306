"""The speed benchmark: every simulator of the model against the two-mat-vec limit.

One step of the model is, at its core, two products of the K x N pattern matrix with a vector
(overlaps m = xi v / N, then the gated input xi^T h). The limit is those two products alone, timed with
NumPy/BLAS on float64 arrays of the same size (and with CuPy or PyTorch on a GPU, where one is present).
Each simulator is timed per step on the same sizes and reported as a ratio to that limit.

Every measurement runs in a fresh process, so that its peak resident memory (ru_maxrss) is its own;
a standalone binary's peak is read from /usr/bin/time. Times are medians of repeats after a warm-up.

The modules, one concern each (imports go down this list only):
- retrieval: the retrieval rows (time per retrieved cue against modern Hopfield; imports no other module here);
- config: the clock, the simulators, the standalone variants, SpeedConfig and its presets, option parsing;
- memory: the memory estimates that refuse sizes, the synapses' bytes, a process's peak;
- numpy_timers: the NumPy measurements (the CPU limit, the abstract model, GEMM peak, NAAM);
- brian2_builds: the Brian2 measurements (runtime, cpp_standalone and cuda_standalone projects);
- gpu: the GPU probes, the GPU limit and the machine description;
- table: speed.csv's columns and rows, reading it back, the fitted exponents;
- targets: the speed targets (SPEED_TARGETS) judged from a run's rows;
- plots: speed.png;
- report: the text report and --replot;
- run: the benchmark's loop (each measurement in a fresh process) and its outputs.
Everything below is importable from this package as before it was split.
"""

from astrogate.analysis.speed.retrieval import QUICK_RETRIEVAL_SIZES, RETRIEVAL_SIZES
from astrogate.analysis.speed.config import (BASE_VARIANTS, BETA_CAP, CPP, CUDA, DT_MS, LAYOUT, SIMULATORS,
                                             STEPS_PER_SECOND, TARGET_SIZE, TRIAL_MS, SpeedConfig, StandaloneVariant,
                                             cuda_variant, full_config, parse_simulators, parse_sizes, quick_config,
                                             targets_config)
from astrogate.analysis.speed.memory import (CUDA_MAP_BYTES_PER_SYNAPSE, EST_BYTES_PER_NK, EST_GPU_BYTES_PER_NK,
                                             EST_GPU_FIXED_BYTES, EST_NAAM_BYTES, INDEX_BYTES, estimated_bytes,
                                             estimated_gpu_bytes, peak_rss_mb, synaptic_bytes)
from astrogate.analysis.speed.numpy_timers import (NAAM_REFERENCE_STEP, benchmark_parameters, benchmark_patterns,
                                                   euler_step_seconds, gemm_peak, median_seconds, naam_calls,
                                                   naam_step_estimate, time_batched, time_matvec_limit, time_naam,
                                                   time_numpy_reference)
from astrogate.analysis.speed.brian2_builds import (CUDA_RUN_FILE, build_standalone_project, cuda_instrumentation,
                                                    cuda_summary, long_run_steps, read_cuda_run_file,
                                                    standalone_steps, time_brian2)
from astrogate.analysis.speed.gpu import (DEFAULT_GPU_MEMORY_BYTES, GPU_LIMIT_BATCH, gpu_memory_bytes, gpu_present,
                                          machine_info, time_gpu_limit)
from astrogate.analysis.speed.table import (CSV_COLUMNS, INT_COLUMNS, TEXT_COLUMNS, _row, fit_exponents,
                                            fit_naam_exponents, measured, read_csv)
from astrogate.analysis.speed.targets import SPEED_TARGETS, TARGET_BOUNDS, targets, targets_report
from astrogate.analysis.speed.plots import plot_speed
from astrogate.analysis.speed.report import replot, report
from astrogate.analysis.speed.run import MEASUREMENTS, measure, run_speed_benchmark, standalone_row_values
from astrogate.errors import InputError
