"""Benchmark suites: run each as `python -m benchmarks.<suite>` from the repo root."""
