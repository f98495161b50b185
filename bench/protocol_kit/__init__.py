"""The parts of ``bench/protocols.py`` (the transport comparison): a byte-counting proxy, one
driver per transport shaped like its real client, and the lines-of-code count per path. A package,
not modules of ``bench/``, so ``bench.run_all`` does not take them for benchmarks of their own."""
