"""The calibration table format: one Parquet file of measurements + one metadata file.

A calibration lives in a directory `calibration/<name>/`:

    ops.parquet   one row per measurement, long format (schema `OPS_SCHEMA` below)
    meta.yaml     device, engine and version, provenance (`CalibrationMeta`)

Every row is one operation on ONE device (per TP rank), with its shape and its measured
time in **seconds** (`time_s`, the median of repeats where the source gives several).
Columns that do not apply to an op are null. The op vocabulary and the shape columns
each op requires (op, meaning, required shape columns):

    gemm                     [m×k]·[k×n]                     m, n, k
    attention_prefill        one layer; batch_size sequences  batch_size, query_len, kv_len,
                             of query_len new tokens over     num_heads, num_kv_heads,
                             kv_len − query_len cached ones   head_dim
    attention_decode         one layer; batch_size sequences  batch_size, kv_len, num_heads,
                             with kv_len tokens each          num_kv_heads, head_dim
    attention_mixed          one layer; a prefill chunk of    query_len, kv_len, batch_size,
                             query_len over kv_len, plus      decode_kv_len
                             batch_size decodes at
                             decode_kv_len
    all_reduce, all_gather,  one collective                   message_bytes, num_devices
    reduce_scatter,
    all_to_all, send_recv
    moe                      one MoE layer                    num_tokens, hidden_size,
                                                              inter_size, num_experts, topk
    norm, elementwise,       per-token ops of one layer       num_tokens
    rotary, activation,
    embedding
    lm_head, sampler         per-sequence ops                 batch_size
    step                     a whole engine step              num_tokens, batch_size
    step_overhead            per-step engine overhead beyond  batch_size
                             the ops (scheduler, Python,
                             launches), fitted from live runs
    frontend                 per-request latency outside the  num_tokens (prompt)
                             engine steps (HTTP, tokenising,
                             IPC, streaming), fitted from
                             live TTFT residuals

`dtype` is the compute precision (canonical names of `infsim.catalog.precision`), `kv_dtype`
the KV-cache precision for attention; `tp` the tensor-parallel degree the row was measured
under (shapes are already per rank); `variant` the kernel/backend or source op name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infsim.errors import InputError
from infsim.textio import load_yaml, read_text

if TYPE_CHECKING:
    import pandas as pd

SHAPE_COLUMNS = (
    "m", "n", "k",
    "batch_size", "query_len", "kv_len", "decode_kv_len",
    "num_heads", "num_kv_heads", "head_dim",
    "num_tokens", "hidden_size", "inter_size", "num_experts", "topk",
    "message_bytes", "num_devices", "tp",
)  # fmt: skip

OPS_SCHEMA = pa.schema(
    [("op", pa.string()), ("dtype", pa.string()), ("kv_dtype", pa.string())]
    + [(c, pa.int64()) for c in SHAPE_COLUMNS]
    + [("variant", pa.string()), ("time_s", pa.float64())]
)

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send_recv")
ATTENTION_SHAPE = ("num_heads", "num_kv_heads", "head_dim")
PER_TOKEN = ("norm", "elementwise", "rotary", "activation", "embedding")

REQUIRED: dict[str, tuple[str, ...]] = {
    "gemm": ("m", "n", "k"),
    "attention_prefill": ("batch_size", "query_len", "kv_len", *ATTENTION_SHAPE),
    "attention_decode": ("batch_size", "kv_len", *ATTENTION_SHAPE),
    "attention_mixed": ("query_len", "kv_len", "batch_size", "decode_kv_len"),
    "moe": ("num_tokens", "hidden_size", "inter_size", "num_experts", "topk"),
    "lm_head": ("batch_size",),
    "sampler": ("batch_size",),
    "step": ("num_tokens", "batch_size"),
    "step_overhead": ("batch_size",),
    "frontend": ("num_tokens",),
    **dict.fromkeys(COLLECTIVES, ("message_bytes", "num_devices")),
    **dict.fromkeys(PER_TOKEN, ("num_tokens",)),
}
"""Op name → shape columns that must be non-null (and positive) in its rows."""


class Provenance(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    path: str = Field(description="Source file, as given to the importer.")
    rows: int = Field(ge=0, description="Rows imported from it.")
    sha256: str = Field("", description="Content hash of the source file.")
    op: str | None = Field(
        None,
        description="The op whose rows a refit (`infsim calibrate overhead|frontend`) "
        "fitted from this file; a later refit of that op replaces these entries.",
    )


class StepOverheadMeta(BaseModel):
    """The host step overhead that goes with a table's kernels when no `step_overhead` rows
    were measured: recorded at import from the engine release's default
    (`infsim.scenario.host_overhead`), or edited by hand for one's own host."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    fixed_s: float = Field(ge=0, le=10.0, allow_inf_nan=False, description="Per step (s).")
    per_seq_s: float = Field(ge=0, le=1.0, allow_inf_nan=False,
                             description="Per scheduled sequence per step (s).")  # fmt: skip
    per_worker_s: float = Field(
        0.0, ge=0, le=1.0, allow_inf_nan=False, description="Per extra worker, per step (s)."
    )
    source: str = Field(description="Where the numbers come from.")


class CalibrationMeta(BaseModel):
    """meta.yaml: what was measured, where, by whom, and how it got here."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(description="Calibration name, e.g. h100-vllm-0.19.")
    device: str = Field(description="Hardware catalog name of the device measured.")
    engine: str = Field(description="Serving engine or framework (vllm, sglang, trtllm, torch).")
    engine_version: str = Field("", description="Engine version.")
    source: str = Field(description="Who measured it and where it was published.")
    profiler: str = Field(description="Measurement method (CUDA events, nsys, torch profiler…).")
    collected: str = Field("", description="Date of the measurements (or of the source).")
    licence: str = Field("", description="Licence of the source data.")
    importer: str = Field(description="infsim command that produced this table.")
    provenance: tuple[Provenance, ...] = Field((), description="Source files.")
    notes: tuple[str, ...] = Field((), description="Anything a user should know.")
    step_overhead: StepOverheadMeta | None = Field(
        None, description="Default host step overhead for this engine release (s)."
    )


def to_table(frame: pd.DataFrame, source: str) -> pa.Table:
    """Normalise an importer's frame to `OPS_SCHEMA` and validate it (InputError)."""
    import pandas as pd  # calibration tables only (~0.2 s to import)

    missing = [c for c in ("op", "time_s") if c not in frame.columns]
    if missing:
        raise InputError(f"{source}: calibration rows lack column(s) {', '.join(missing)}")
    frame = frame.reindex(columns=OPS_SCHEMA.names)
    for name in SHAPE_COLUMNS:
        frame[name] = pd.array(pd.to_numeric(frame[name], errors="raise").round(), dtype="Int64")
    table = pa.Table.from_pandas(frame, schema=OPS_SCHEMA, preserve_index=False)
    validate(table, source)
    return table


RESIDUAL_OPS = ("step_overhead",)


def validate(table: pa.Table, source: str) -> None:
    """Every row has a known op, its required shape columns, and a positive finite time
    (any finite time for the residual ops)."""
    if table.num_rows == 0:
        raise InputError(f"{source}: no calibration rows (empty table)")
    frame = table.to_pandas()
    unknown = sorted(set(frame["op"].dropna()) - set(REQUIRED))
    if unknown or frame["op"].isna().any():
        raise InputError(
            f"{source}: unknown op(s) {unknown or ['<null>']}; allowed: {', '.join(REQUIRED)}"
        )
    times = frame["time_s"].to_numpy(dtype=float, na_value=np.nan)
    # Fitted step-overhead rows are residuals (a step minus its kernels): any finite value.
    residual = frame["op"].isin(RESIDUAL_OPS).to_numpy()
    bad = np.flatnonzero(~np.isfinite(times) | ((times <= 0) & ~residual))
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{source}: row {i}: time_s must be a positive number of seconds, got "
            f"{frame['time_s'].iloc[i]!r} ({bad.size} such rows)"
        )
    for op, rows in frame.groupby("op"):
        for col in REQUIRED[op]:
            values = rows[col]
            if values.isna().any() or (values <= 0).any():
                i = int(rows.index[(values.isna() | (values <= 0)).to_numpy()][0])
                raise InputError(
                    f"{source}: row {i}: op {op!r} needs a positive {col!r}, got {values.loc[i]!r}"
                )


def write(directory: Path, table: pa.Table, meta: CalibrationMeta) -> None:
    """Write ops.parquet and meta.yaml (deterministic bytes: no wall-clock metadata)."""
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(None), directory / "ops.parquet",
                   compression="zstd")  # fmt: skip
    text = yaml.safe_dump(meta.model_dump(mode="json", exclude_none=True), sort_keys=False,
                          allow_unicode=True)  # fmt: skip
    (directory / "meta.yaml").write_text(text)


def _first_error(err: ValidationError) -> str:
    """The field path, message and (shortened) input of each pydantic error, one line."""
    parts = []
    for item in err.errors()[:5]:
        where = ".".join(map(str, item["loc"])) or "(top level)"
        given = repr(item.get("input"))
        given = given if len(given) <= 80 else given[:79] + "…"
        parts.append(f"{where}: {item['msg']} (got {given})")
    more = f"; and {err.error_count() - 5} more" if err.error_count() > 5 else ""
    return "; ".join(parts) + more


def read(directory: Path) -> tuple[pa.Table, CalibrationMeta]:
    """Load and validate a calibration directory."""
    meta_path, ops_path = directory / "meta.yaml", directory / "ops.parquet"
    for path in (meta_path, ops_path):
        if not path.is_file():
            raise InputError(f"{directory}: not a calibration directory ({path.name} missing)")
    raw: Any = load_yaml(read_text(meta_path, "calibration metadata"), str(meta_path))
    try:
        meta = CalibrationMeta.model_validate(raw)
    except ValidationError as err:
        raise InputError(
            f"{meta_path}: invalid calibration metadata: {_first_error(err)}"
        ) from None
    try:
        table = pq.read_table(ops_path)
        table.validate(full=True)  # damaged pages (e.g. text that is not UTF-8) fail here
        names = table.schema.names
    except (pa.ArrowException, OSError, ValueError) as err:
        text = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise InputError(f"{ops_path}: not a readable Parquet file: {text}") from None
    if table.schema.remove_metadata() != OPS_SCHEMA:
        raise InputError(
            f"{ops_path}: columns {names} do not match the calibration schema {OPS_SCHEMA.names}"
        )
    validate(table, str(ops_path))
    return table, meta
