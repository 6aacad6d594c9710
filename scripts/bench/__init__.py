"""The parts of the benchmark harness ``scripts/bench.py``, which keeps only the arguments and the order of
the phases. Imports run one way and never back to bench.py: procs <- parties, client <- phases;
figures, client, parties <- report; procs <- doc. ``bodies`` holds the request bodies; ``upstream`` and
``relay`` run as processes of their own."""
