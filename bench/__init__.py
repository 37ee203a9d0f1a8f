"""Benchmarks for Sieve: `python -m bench --help`."""
