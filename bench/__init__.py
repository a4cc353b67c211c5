"""Benchmarks and attack harnesses (run from the repository root: ``python -m bench.<name>``)."""
