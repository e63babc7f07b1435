"""Benchmarks that print figures (not run by CI): `python -m benchmarks.pipeline_bench`."""
