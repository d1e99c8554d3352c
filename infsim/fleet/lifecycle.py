"""Replica lifecycle states (shared by the wiring and the reports).

    PROVISIONING → LOADING → STARTING → SERVING → DRAINING → RELEASED
    (any live state) ─── failure / end of a spot notice ───► FAILED

LIVE states count toward a pool's current replicas; BILLED ones cost money.
"""

from __future__ import annotations

import enum


class State(enum.IntEnum):
    PROVISIONING = 0
    LOADING = 1
    STARTING = 2
    SERVING = 3
    DRAINING = 4
    RELEASED = 5
    FAILED = 6


LIVE = (State.PROVISIONING, State.LOADING, State.STARTING, State.SERVING)
BILLED = (*LIVE, State.DRAINING)
STATE_NAMES = [s.name.lower() for s in State]
