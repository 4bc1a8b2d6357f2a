"""Benchmark suites: run each as `python -m feeders.benchmarks.bench_<suite>`."""
