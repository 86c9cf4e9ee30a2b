"""Benchmarks: `make bench` runs them all and prints one table (see README, Performance)."""
