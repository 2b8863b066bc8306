"""Fixed points, comparisons, retrieval metrics, benchmarks, sweeps and figures."""
