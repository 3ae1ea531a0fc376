"""Benchmarks of the Autorater Registry (run as ``python -m bench.<name>``; see RESULTS.md)."""
