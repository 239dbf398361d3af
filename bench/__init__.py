"""Benchmarks (`make bench`) and the bounded load test (`make load`): see bench/README.md."""
