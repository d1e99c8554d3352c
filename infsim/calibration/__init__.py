"""Calibration: measured per-operation costs (tables), their importers, the collection
harness, and the calibrated cost model that reads them."""
