"""Benchmarks: `python bench/run.py [--quick]` (see docs/benchmarks.md)."""
