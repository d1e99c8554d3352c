"""Model catalog: built-in models (`models/*.yaml`) and user HF `config.json` files.

A built-in file holds HF config keys (the same keys `hf_config.py` reads from a
config.json) plus catalog metadata:

    name: Llama-3.1-8B                       # display name, unique
    hf_id: meta-llama/Llama-3.1-8B           # also accepted as a lookup name
    aliases: [llama3.1-8b, ...]              # more lookup names
    source: "<where the numbers come from>"
    as_of: "2026-11-23"                      # when the source was read
    model_type: llama
    num_hidden_layers: 32
    ...

Lookup is case-insensitive and treats `_`, spaces and `-` alike. Anything that is not a
catalog name is tried as a path (relative to `base_dir`): a config.json, or a directory
holding one (the layout `vllm serve <dir>` takes).
"""

from __future__ import annotations

import functools
from pathlib import Path

from infsim.catalog._fields import Fields, read_mapping
from infsim.catalog.hf_config import KNOWN_KEYS, spec_from_hf_config
from infsim.catalog.model_spec import ModelSpec
from infsim.errors import InputError, did_you_mean

__all__ = ["MODELS_DIR", "ModelSpec", "load_model", "model_names"]

MODELS_DIR = Path(__file__).parent / "models"
_META_KEYS = frozenset({"name", "hf_id", "aliases", "source", "as_of", "notes"})


def _normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


@functools.lru_cache(maxsize=1)
def _builtin() -> tuple[dict[str, ModelSpec], dict[str, str]]:
    """(name -> spec, normalised lookup key -> name), read once per process."""
    specs: dict[str, ModelSpec] = {}
    index: dict[str, str] = {}
    for path in sorted(MODELS_DIR.glob("*.yaml")):
        fields = Fields(read_mapping(path), file=path)
        fields.reject_unknown(_META_KEYS | KNOWN_KEYS)
        spec = spec_from_hf_config(
            fields,
            name=fields.get_str("name"),
            source=fields.get_str("source"),
            as_of=fields.get_str("as_of"),
        )
        specs[spec.name] = spec
        for key in [spec.name, fields.opt_str("hf_id", spec.name), *fields.str_list("aliases")]:
            other = index.setdefault(_normalize(key), spec.name)
            if other != spec.name:
                raise InputError(f"{path}: lookup name {key!r} is already used by {other!r}")
    return specs, index


def model_names() -> list[str]:
    """Names of the built-in models, sorted."""
    return sorted(_builtin()[0])


def load_model(name_or_path: str, *, base_dir: Path | None = None) -> ModelSpec:
    """A built-in model by name/HF id/alias, or a model from an HF config.json path.

    Raises `InputError` for an unknown name (with a did-you-mean and the list of names)
    and for a config.json that lacks a key or has an invalid one (naming file and key).
    """
    specs, index = _builtin()
    key = _normalize(str(name_or_path))
    if key in index:
        return specs[index[key]]
    path = Path(name_or_path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        stat = path.stat()
        return _load_config_file(path.resolve(), stat.st_mtime_ns)
    raise InputError(
        f"unknown model {str(name_or_path)!r}{did_you_mean(key, list(index))}: not a built-in "
        f"name and no config.json at {path}; built-in models: {', '.join(model_names())}"
    )


@functools.lru_cache(maxsize=64)
def _load_config_file(path: Path, mtime_ns: int) -> ModelSpec:
    """Parse one config.json; `mtime_ns` keys the cache so an edited file is re-read."""
    del mtime_ns
    name = path.parent.name if path.name == "config.json" else path.stem
    return spec_from_hf_config(Fields(read_mapping(path), file=path), name=name, source=str(path))
