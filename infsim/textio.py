"""Reading user files without surprises: text, YAML and JSON, every failure an `InputError`.

Every reader of a user file (scenario, sweep axes, trace, benchmark, calibration metadata)
goes through these, so that a file that is not UTF-8, not found, a directory, nested a
thousand levels deep, holding an integer of 5,000 digits or megabytes on one line ends in
the one-paragraph `InputError` naming the file — never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from infsim.errors import InputError

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists accepted in a YAML or JSON document; a scenario is
at most ~8 deep. Deeper documents are refused before they reach the parser's recursion."""


def read_text(path: Path, what: str = "file") -> str:
    """The file as UTF-8 text (a leading BOM is dropped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a {what}") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read the {what}: {err.strerror or err}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(
            f"{path}: line {line}: the {what} is not UTF-8 text (byte 0x{data[err.start]:02x} "
            f"at offset {err.start}); save it as UTF-8"
        ) from None


def check_depth(text: str, where: str) -> None:
    """Refuse documents nested deeper than MAX_DEPTH (bracket nesting, flow style) before
    parsing: the YAML and JSON parsers recurse per level."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # too few brackets to nest that deep (the common case: no scan)
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
    if deepest > MAX_DEPTH:
        raise InputError(
            f"{where}: nested {deepest} levels deep; at most {MAX_DEPTH} levels are accepted"
        )


_LIBYAML = getattr(yaml, "CSafeLoader", None)


def safe_load(text: str) -> Any:
    """`yaml.safe_load`, parsed by libyaml when PyYAML was built with it (the same
    constructors, so the same objects, ~4× faster: the built-in catalog is 25 files read by
    every run). A document libyaml refuses is parsed again by PyYAML's own parser, so what
    is accepted, and every error message, is PyYAML's either way."""
    if _LIBYAML is not None:
        try:
            return yaml.load(text, Loader=_LIBYAML)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def load_yaml(text: str, where: str) -> Any:
    """`yaml.safe_load` of `text`, every parser failure an `InputError` naming `where`."""
    check_depth(text, where)
    try:
        return safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise InputError(f"{where}: invalid YAML{at}: {problem}") from None
    except RecursionError:
        raise InputError(f"{where}: nested too deeply to read") from None
    except ValueError as err:  # e.g. an integer beyond Python's digit limit
        raise InputError(f"{where}: unreadable value: {_short(str(err))}") from None


def load_json(text: str, where: str) -> Any:
    """`json.loads` of `text` (Python's parser: accepts the bare `Infinity` some tools
    write), every failure an `InputError` naming `where` and the line."""
    check_depth(text, where)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{where}: line {err.lineno}: not valid JSON ({err.msg})") from None
    except RecursionError:
        raise InputError(f"{where}: nested too deeply to read") from None
    except ValueError as err:
        raise InputError(f"{where}: unreadable value: {_short(str(err))}") from None


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
