"""Benchmarks: each ``python -m bench.<name>`` prints a table and appends JSON lines to
``bench/results.jsonl``. Not run by CI."""
