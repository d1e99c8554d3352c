"""Hardware catalog: one accelerator (or host CPU) per `hardware/*.yaml`.

Files use human units that say so in the key (`mem_bandwidth_gb_per_s: 3350`,
`peak_tflops: {bfloat16: 989}`, `latency_us: 10`, `memory_mib: 81559`); the loader turns
them into SI floats (`*_bytes`, `*_per_s`, `*_s`). Numbers come from infsim FORMATS.md §5
(mostly ai-dynamo/aiconfigurator system files); each file's `source:` says which row.

Conventions:

- Memory is the capacity the runtime reports (nvidia-smi `memory.total` in MiB, rocm-smi
  VRAM bytes), not the marketing figure: an "80 GB" H100 shows 81559 MiB = 85.5e9 bytes.
  KV-cache sizing starts from this, minus the engine's `gpu_memory_utilization` share.
- Peak FLOP/s are dense (no 2:4 sparsity), per canonical compute precision.
- Link bandwidth is per GPU per direction (NVIDIA quotes NVLink bidirectional: 900 GB/s
  total on H100 is 450 GB/s each way).
- Prices are indicative per GPU-hour, volatile, with their own source and date; scenarios
  override them.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infsim.catalog import precision as prec
from infsim.catalog._fields import Fields, read_mapping
from infsim.errors import InputError, did_you_mean

HARDWARE_DIR = Path(__file__).parent / "hardware"

_COMPUTE_FALLBACK: dict[str, tuple[str, ...]] = {
    "fp4": ("fp4", "fp8", "bfloat16", "float16", "float32"),
    "fp8": ("fp8", "bfloat16", "float16", "float32"),
    "int8": ("int8", "bfloat16", "float16", "float32"),
    "int4": ("bfloat16", "float16", "float32"),
    "bfloat16": ("bfloat16", "float16", "float32"),
    "float16": ("float16", "bfloat16", "float32"),
    "float32": ("float32",),
}
"""Rates tried, in order, for a compute precision (see `GPUSpec.flops_per_s`)."""


@dataclass(frozen=True)
class LinkSpec:
    """One interconnect as seen by a single GPU; `kind: none` means there is no such link."""

    kind: str
    bandwidth_bytes_per_s: float
    """Per GPU, per direction."""
    latency_s: float
    """Small-message latency (indicative; collectives are calibrated separately)."""


@dataclass(frozen=True)
class PriceSpec:
    """Indicative USD per GPU-hour; `None` where the source gives no such offer."""

    on_demand_usd_per_hour: float
    spot_usd_per_hour: float | None
    reserved_usd_per_hour: float | None
    source: str
    as_of: str


@dataclass(frozen=True)
class GPUSpec:
    """One accelerator's roofline numbers, links, power and price.

    `peak_flops_per_s` maps canonical precisions to dense peaks; it is read-only and left
    out of the hash so that a `GPUSpec` can key caches.
    """

    name: str
    vendor: str
    memory_bytes: int
    mem_bandwidth_bytes_per_s: float
    peak_flops_per_s: Mapping[str, float] = field(hash=False)
    intra_node_link: LinkSpec
    inter_node_link: LinkSpec
    gpus_per_node: int
    tdp_w: float | None
    price: PriceSpec
    source: str
    as_of: str

    def flops_per_s(self, precision: str) -> float:
        """Dense peak FLOP/s for matmuls computed at `precision`.

        Without native support the next wider listed rate applies: fp4 -> fp8 -> bf16
        (e.g. fp8 on A100 runs at the bf16 rate, fp4 on H100 at the fp8 rate). Weight-only
        formats compute in 16 bit: int4/awq/gptq always use the bf16/fp16 rate, and int8
        does too unless the file lists an int8 rate. `auto` must be resolved first.
        """
        wanted = prec.canonical(precision)
        if wanted == prec.AUTO:
            raise InputError("precision 'auto' must be resolved against the model's dtype first")
        for candidate in _COMPUTE_FALLBACK[wanted]:
            if candidate in self.peak_flops_per_s:
                return self.peak_flops_per_s[candidate]
        raise InputError(
            f"{self.name}: no peak FLOP/s for {wanted!r} or a wider precision; listed: "
            f"{', '.join(self.peak_flops_per_s)} (add peak_tflops.{wanted} to its hardware file)"
        )


def _normalize(name: str) -> str:
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    for vendor_prefix in ("nvidia-", "amd-"):
        key = key.removeprefix(vendor_prefix)
    return key


_KEYS = frozenset(
    {
        "name",
        "vendor",
        "aliases",
        "source",
        "as_of",
        "notes",
        "memory_mib",
        "memory_bytes",
        "memory_marketed",
        "mem_bandwidth_gb_per_s",
        "peak_tflops",
        "intra_node_link",
        "inter_node_link",
        "gpus_per_node",
        "tdp_w",
        "price",
        "measured",
    }
)


def _link(fields: Fields) -> LinkSpec:
    fields.reject_unknown({"kind", "bandwidth_gb_per_s", "latency_us", "notes"})
    kind = fields.get_str("kind")
    bandwidth = fields.get_float("bandwidth_gb_per_s") * 1e9
    if bandwidth <= 0 and kind != "none":
        raise InputError(f"{fields.where('bandwidth_gb_per_s')}: must be > 0 unless kind is none")
    return LinkSpec(kind, bandwidth, fields.get_float("latency_us") * 1e-6)


def _price(fields: Fields) -> PriceSpec:
    fields.reject_unknown(
        {
            "on_demand_usd_per_hour",
            "spot_usd_per_hour",
            "reserved_usd_per_hour",
            "source",
            "as_of",
            "notes",
        }
    )
    return PriceSpec(
        on_demand_usd_per_hour=fields.get_float("on_demand_usd_per_hour"),
        spot_usd_per_hour=fields.opt_float("spot_usd_per_hour", None),
        reserved_usd_per_hour=fields.opt_float("reserved_usd_per_hour", None),
        source=fields.get_str("source"),
        as_of=fields.get_str("as_of"),
    )


def _peak_flops(fields: Fields) -> Mapping[str, float]:
    peaks: dict[str, float] = {}
    for key in fields.data:
        precision = prec.canonical(str(key))
        if precision == prec.AUTO or precision in prec.WEIGHT_ONLY:
            raise InputError(f"{fields.where(str(key))}: not a compute precision")
        peaks[precision] = fields.get_float(str(key)) * 1e12
    if not peaks:
        raise InputError(f"{fields.where('')}: at least one precision is required")
    return types.MappingProxyType(peaks)


def _memory_bytes(fields: Fields) -> int:
    if fields.has("memory_mib") == fields.has("memory_bytes"):
        raise InputError(f"{fields.where('memory_mib')}: give exactly one of memory_mib/_bytes")
    if fields.has("memory_mib"):
        return fields.get_int("memory_mib", minimum=1) * 2**20
    return fields.get_int("memory_bytes", minimum=1)


def _parse_gpu(path: Path) -> tuple[GPUSpec, list[str]]:
    fields = Fields(read_mapping(path), file=path)
    fields.reject_unknown(_KEYS)
    spec = GPUSpec(
        name=fields.get_str("name"),
        vendor=fields.get_str("vendor"),
        memory_bytes=_memory_bytes(fields),
        mem_bandwidth_bytes_per_s=fields.get_float("mem_bandwidth_gb_per_s") * 1e9,
        peak_flops_per_s=_peak_flops(fields.sub("peak_tflops")),
        intra_node_link=_link(fields.sub("intra_node_link")),
        inter_node_link=_link(fields.sub("inter_node_link")),
        gpus_per_node=fields.get_int("gpus_per_node", minimum=1),
        tdp_w=fields.opt_float("tdp_w", None),
        price=_price(fields.sub("price")),
        source=fields.get_str("source"),
        as_of=fields.get_str("as_of"),
    )
    return spec, fields.str_list("aliases")


@functools.lru_cache(maxsize=1)
def _builtin() -> tuple[dict[str, GPUSpec], dict[str, str]]:
    """(name -> spec, normalised lookup key -> name), read once per process."""
    specs: dict[str, GPUSpec] = {}
    index: dict[str, str] = {}
    for path in sorted(HARDWARE_DIR.glob("*.yaml")):
        spec, aliases = _parse_gpu(path)
        specs[spec.name] = spec
        for key in [spec.name, *aliases]:
            other = index.setdefault(_normalize(key), spec.name)
            if other != spec.name:
                raise InputError(f"{path}: lookup name {key!r} is already used by {other!r}")
    return specs, index


def gpu_names() -> list[str]:
    """Names of the built-in devices (GPUs and `cpu-host`), sorted."""
    return sorted(_builtin()[0])


def load_gpu(name: str) -> GPUSpec:
    """A built-in device by name or alias (case-insensitive; `_`, space and `-` alike;
    a leading `NVIDIA `/`AMD ` is dropped, so nvidia-smi names work)."""
    specs, index = _builtin()
    key = _normalize(str(name))
    if key not in index:
        raise InputError(
            f"unknown GPU {str(name)!r}{did_you_mean(key, list(index))}; "
            f"known: {', '.join(gpu_names())}"
        )
    return specs[index[key]]
