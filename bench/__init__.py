"""Benchmark suite: `make bench` (python -m bench)."""
