"""Calibration harness: measure a model's own operations on a torch device.

`collect(model, device, plan=..., dtype=..., tp=...)` returns calibration rows and their
metadata; `main(argv)` is the command line (`python -m infsim.calibration.harness`).
Torch is an optional extra (`pip install 'infsim[calibrate]'`) imported only when
measuring; the shape grid (`plan.py`) needs no torch.
"""

from infsim.calibration.harness.collect import collect, main
from infsim.calibration.harness.plan import Case, Plan, cases

__all__ = ["Case", "Plan", "cases", "collect", "main"]
