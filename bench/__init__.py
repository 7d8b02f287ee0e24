"""Benchmarks: scripts that measure and save figures under results/ (run with python -m bench.X)."""
