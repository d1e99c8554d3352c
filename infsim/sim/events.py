"""simpy event helpers shared by the wiring."""

from __future__ import annotations

import simpy
from simpy.events import URGENT


def urgent_event(env: simpy.Environment, delay_s: float) -> simpy.Event:
    """A timeout scheduled URGENT: an arrival at exactly a step end is always processed
    before the step end, so the request joins the next step whatever the order in which
    the two events were created (the rule the fast-forward relies on)."""
    event = simpy.Event(env)
    event._ok = True  # as simpy.Timeout does, at another priority
    event._value = None
    env.schedule(event, URGENT, delay_s)
    return event
