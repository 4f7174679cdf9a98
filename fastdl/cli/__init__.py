"""fastdl's command line and what only it runs: ``main`` (the ``fastdl`` command), the training demos,
the book's chapter 4 experiments, the benchmarks (``bench``, ``bench_mixed``) and ``show_config``."""
