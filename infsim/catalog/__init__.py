"""Catalogs of models and hardware, shipped as data files with their sources.

- `model.py`: `load_model(name_or_path)` -> `ModelSpec` (built-ins in `models/*.yaml`, or
  any HF config.json); parameter counts, weight bytes and KV bytes per token.
- `hardware.py`: `load_gpu(name)` -> `GPUSpec` (built-ins in `hardware/*.yaml`): memory,
  bandwidth, dense peak FLOP/s per precision, links, TDP and indicative prices.
- `precision.py`: the precision vocabulary (`bf16`, `fp8`, `awq`, ...) and bytes per element.
"""

from infsim.catalog.hardware import GPUSpec, LinkSpec, PriceSpec, gpu_names, load_gpu
from infsim.catalog.model import ModelSpec, load_model, model_names
from infsim.catalog.precision import bytes_per_element, canonical

__all__ = [
    "GPUSpec",
    "LinkSpec",
    "ModelSpec",
    "PriceSpec",
    "bytes_per_element",
    "canonical",
    "gpu_names",
    "load_gpu",
    "load_model",
    "model_names",
]
