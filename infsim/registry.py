"""One registry per plug-in family, keyed by the name used in YAML (`kind:`).

    routers = Registry[type[Router]]("router")

    @routers.register("round_robin")
    class RoundRobin: ...

    @routers.register("prefix_aware", params=PrefixAwareParams)   # its options, with defaults
    class PrefixAware: ...

Registering a name twice raises; looking up an unknown name raises an `InputError`
that lists the known names. A plug-in's `params` model (pydantic, defaults included) is the
one place its options are declared: the scenario schema validates a section's options
against it and fills the defaults from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from infsim.errors import InputError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → plug-in mapping for one family (routers, schedulers, cost models, ...)."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._items: dict[str, T] = {}
        self._params: dict[str, Any] = {}

    def register(self, name: str, params: Any = None) -> Callable[[T], T]:
        def decorate(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.family} {name!r} is registered twice")
            self._items[name] = item
            if params is not None:
                self._params[name] = params
            return item

        return decorate

    def params(self, name: str) -> Any:
        """The options model `name` was registered with, or None (no options)."""
        self.get(name)
        return self._params.get(name)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = sorted(self._items)
            raise InputError(
                f"unknown {self.family} {name!r}{did_you_mean(name, known)}; "
                f"known: {', '.join(known)}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)
