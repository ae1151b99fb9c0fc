"""Benchmarks (not tests): each compares nnts_ray with a baseline measured in the same run and
reports ratios. Results are recorded in BENCHMARKS.md with the command and the machine."""
