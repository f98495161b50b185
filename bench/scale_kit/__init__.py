"""The parts of ``bench/scale.py`` (the event log at scale): a design's tree and its server processes,
the load of chats with their owner and cross followers, and what a run measured. A package, not
modules of ``bench/``, so ``bench.run_all`` does not take them for benchmarks of their own."""
