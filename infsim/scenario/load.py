"""Scenario YAML → validated `Scenario`, with `--set dotted.path=value` overrides.

Every problem becomes one `InputError` paragraph naming the file and the dotted field
path: unknown fields get a did-you-mean and the allowed names, wrong types and values say
what was given and what is allowed. YAML is read with `yaml.safe_load` only.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from infsim.errors import InputError, did_you_mean, shown
from infsim.limits import LIMITS
from infsim.scenario.schema import Scenario
from infsim.textio import load_yaml, read_text


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    data = load_yaml(read_text(path, "scenario file"), str(path))
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: a scenario must be a YAML mapping of sections (model, workload, "
            f"hardware, ...), got {type(data).__name__}"
        )
    return data


def load_scenario(path: Path | str, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    path = Path(path)
    raw = read_yaml_mapping(path)
    for item in overrides:
        apply_override(raw, item)
    scenario = validate_scenario(raw, str(path))
    scenario._source_path = path.resolve()
    return scenario


def validate_scenario(raw: dict[str, Any], source: str) -> Scenario:
    try:
        return Scenario.model_validate(raw)
    except ValidationError as err:
        raise InputError(format_validation_error(err, source)) from None


# -- overrides ----------------------------------------------------------------------------
def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply `a.b.c=value` (value parsed as YAML) to the raw scenario mapping."""
    if "=" not in item:
        raise InputError(f"--set {item!r}: expected dotted.path=value, e.g. engine.max_num_seqs=64")
    path, _, text = item.partition("=")
    keys = path.strip().split(".")
    _check_path(keys, item)
    try:
        value = load_yaml(text, f"--set {path}") if text.strip() else None
    except InputError:
        value = text  # not YAML: the text itself (validation judges it)
    node = raw
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def _check_path(keys: list[str], item: str) -> None:
    model: type[BaseModel] | None = Scenario
    for depth, key in enumerate(keys):
        if model is None:  # below a union or a plain value: let validation judge it
            return
        fields = model.model_fields
        options = getattr(model, "option_names", list)()  # a plug-in's own options
        if key in options:
            return
        if key not in fields:
            where = ".".join(keys[:depth]) or "the scenario"
            names = sorted([*fields, *options])
            raise InputError(
                f"--set {item}: {where} has no field {key!r}{did_you_mean(key, names)}; "
                f"allowed: {', '.join(names)}"
            )
        annotation = fields[key].annotation
        if depth + 1 < len(keys) and _is_sequence(annotation):
            where = ".".join(keys[: depth + 1])
            raise InputError(
                f"--set {item}: {where} is a list, and --set cannot address one item of it "
                f"({'.'.join(keys[depth + 1 :])}); give the whole list as YAML, e.g. "
                f"--set '{where}=[{{...}}, {{...}}]', or edit the scenario file"
            )
        model = _sub_model(annotation)


def _is_sequence(annotation: Any) -> bool:
    """A list or tuple annotation (optionally `| None`)."""
    if typing.get_origin(annotation) in (list, tuple):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_sequence(a) for a in typing.get_args(annotation) if a is not type(None))
    return False


def _sub_model(annotation: Any) -> type[BaseModel] | None:
    """The single model class inside an annotation (X, X | None), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(models) == 1:
            return _sub_model(models[0])
    return None


# -- error messages -----------------------------------------------------------------------
def format_validation_error(err: ValidationError, source: str) -> str:
    parts = []
    for e in err.errors():
        loc = [str(x) for x in e["loc"]]
        path = ".".join(loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            allowed = _allowed_fields(loc[:-1])
            hint = did_you_mean(loc[-1], allowed)
            parts.append(
                f"{path}: unknown field{hint}; allowed here: {', '.join(allowed) or '(none)'}"
            )
        elif e["type"] == "missing":
            parts.append(f"{path}: required field is missing")
        else:
            got = e.get("input")
            got_text = f" (got {shown(got)})" if not isinstance(got, dict | list) else ""
            parts.append(f"{path}: {e['msg']}{got_text}{_limit_hint(e)}")
    return f"{source}: invalid scenario: " + "; ".join(parts)


def _allowed_fields(loc: list[str]) -> list[str]:
    model: type[BaseModel] | None = Scenario
    for key in loc:
        if model is None or key not in model.model_fields:
            return _union_member_fields(model, key)
        model = _sub_model(model.model_fields[key].annotation)
    return sorted(model.model_fields) if model else []


def _union_member_fields(model: type[BaseModel] | None, tag: str) -> list[str]:
    """Fields of a discriminated-union member named by `tag` (pydantic puts it in loc)."""
    if model is None:
        return []
    for field in model.model_fields.values():
        for arg in typing.get_args(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                kind = arg.model_fields.get("kind")
                if kind is not None and kind.default == tag:
                    return sorted(arg.model_fields)
    return []


def _limit_hint(error: dict[str, Any]) -> str:
    """For a bound from `infsim.limits`: how to raise it."""
    if error["type"] not in ("less_than_equal", "less_than"):
        return ""
    bound = (error.get("ctx") or {}).get("le", (error.get("ctx") or {}).get("lt"))
    names = [n for n, v in LIMITS.items() if v == bound]
    if not names:
        return ""
    return f"; infsim's limit, raised with INFSIM_MAX_{names[0].upper()}=<value> if you mean it"
