"""Typed reads from a parsed YAML/JSON mapping; every error names the file and the key."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from infsim.errors import InputError, did_you_mean
from infsim.textio import safe_load


def read_mapping(path: Path) -> dict[str, Any]:
    """Parse a `.json` or YAML file whose top level must be a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror})") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


class Fields:
    """Reads keys of one mapping with type checks; `prefix` is the dotted path so far."""

    def __init__(self, data: Mapping[str, Any], *, file: Path | str, prefix: str = "") -> None:
        self.data = data
        self.file = file
        self.prefix = prefix

    def where(self, key: str) -> str:
        return f"{self.file}: {self.prefix}{key}"

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def _value(self, key: str) -> Any:
        if not self.has(key):
            raise InputError(f"{self.where(key)}: missing required key")
        return self.data[key]

    def get_int(self, key: str, *, minimum: int = 0) -> int:
        value = self._value(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InputError(f"{self.where(key)}: must be an integer >= {minimum}, got {value!r}")
        return value

    def opt_int(self, key: str, default: int, *, minimum: int = 0) -> int:
        return self.get_int(key, minimum=minimum) if self.has(key) else default

    def get_float(self, key: str, *, minimum: float = 0.0) -> float:
        value = self._value(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise InputError(f"{self.where(key)}: must be a number >= {minimum}, got {value!r}")
        return float(value)

    def opt_float(self, key: str, default: float | None) -> float | None:
        return self.get_float(key) if self.has(key) else default

    def get_str(self, key: str) -> str:
        value = self._value(key)
        if isinstance(value, bool) or not isinstance(value, str | int | float | dt.date):
            raise InputError(f"{self.where(key)}: must be a string, got {value!r}")
        return str(value)

    def opt_str(self, key: str, default: str) -> str:
        return self.get_str(key) if self.has(key) else default

    def opt_bool(self, key: str, default: bool) -> bool:
        if not self.has(key):
            return default
        value = self.data[key]
        if not isinstance(value, bool):
            raise InputError(f"{self.where(key)}: must be true or false, got {value!r}")
        return value

    def str_list(self, key: str) -> list[str]:
        value = self.data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{self.where(key)}: must be a list of strings, got {value!r}")
        return value

    def sub(self, key: str) -> Fields:
        value = self._value(key)
        if not isinstance(value, Mapping):
            raise InputError(f"{self.where(key)}: must be a mapping, got {value!r}")
        return Fields(value, file=self.file, prefix=f"{self.prefix}{key}.")

    def reject_unknown(self, allowed: set[str] | frozenset[str]) -> None:
        """Catalog files are strict: a misspelt key is an error, not a silent default."""
        for key in self.data:
            if key not in allowed:
                hint = did_you_mean(str(key), sorted(allowed))
                raise InputError(
                    f"{self.where(str(key))}: unknown key{hint}; "
                    f"allowed: {', '.join(sorted(allowed))}"
                )
