"""bitgraph benchmark suite: datasets, library adapters, the recall-QPS protocol, tables, plots.

Entry points:
    python -m bench.run_suite --dataset glove-50-angular --plot      # the suite (see README.md)
    python -m bench.plot bench/results/glove-50-angular.json         # re-plot a results file
    pytest bench/micro --benchmark-only                              # kernel micro-benchmarks

Importable core: ``from bench.run_suite import run_suite``.
"""
