"""Helpers of the benchmark harness ``scripts/bench.py``: request bodies and the fake upstream."""
