"""`python -m infsim.calibration.harness` → `collect.main`."""

import sys

from infsim.calibration.harness.collect import main

sys.exit(main())
