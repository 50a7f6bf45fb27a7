"""Every benchmark and ``atiende eval``: each prints the figures its issue names (BENCHMARKS.md)."""
