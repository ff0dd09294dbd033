"""Benchmarks of jobq (not timed tests): ``make bench`` prints a table and writes bench/RESULTS.md."""
