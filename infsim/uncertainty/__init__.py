"""Prediction intervals and the cliff indicator (issue 18; docs/uncertainty.md).

Pure parts: `intervals.py` (replicates → prediction intervals, nested like the summary),
`sensitivity.py` (elasticities, cliff), `blocks.py` (moving-block bootstrap of a trace),
`sources.py` (the sources of variation, σ per op class from a calibration's held-out
error), `model_error.py` (the model's own error and the host's drift, σ fitted to
validation residuals: `model_error.json`). Wiring: `replicate.py` (one replication, run
by a sweep executor) and `predict.py` (tasks → summary.json's `intervals` and `sensitivity`).
"""
