"""Sweeps and searches over scenarios, resumable and parallel.

    axes (spec.py) → points (points.py: validate, skip, key) → executor (executors.py)
      → worker (worker.py: one run → one row) → store (store.py: one Parquet file per point)
      → results (results.py) / report (report_html.py)

Searches reuse the same pipeline: `capacity.py` (bisection on workload.rate_scale) and
`optimize.py` (Optuna TPE), with the pure policies in `search.py`. `library.py` wraps it
all for notebooks; `cli.py` for the command line.
"""
