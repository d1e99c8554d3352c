"""Routers: pure policies over a read-only cluster view (`base.py`), registered by name in
`routers`. Importing the package registers every built-in router, so the registry (and the
scenario schema's `router.kind` choices built from it) is complete."""

from infsim.routing import load_aware, policies  # noqa: F401  (register the routers)
from infsim.routing.base import routers

__all__ = ["routers"]
