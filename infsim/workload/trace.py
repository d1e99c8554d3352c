"""The canonical request table every workload source is turned into.

A `Trace` is an immutable Arrow table, one row per request, with `TRACE_SCHEMA`:

    request_id         int64   unique
    arrival_s          float64 seconds from trace start; first >= 0; non-decreasing
    num_prompt_tokens  int64   >= 1
    num_output_tokens  int64   >= 1
    prefix_hash_ids    list<int64>, nullable: ids of consecutive hash_block_size_tokens-token
                       blocks of prompt (+ optionally output); equal leading ids = shared
                       prefix (Mooncake `hash_ids`); null = no prefix identity
    session_id         int64, nullable
    priority           int64   lower = more urgent (vLLM); default 0

plus trace-level metadata `hash_block_size_tokens` (None when no row has hash ids),
`source` (where it came from) and `notes` (what a loader changed, e.g. dropped rows).
Transforms return new traces; nothing mutates a trace after construction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from infsim import arrays
from infsim.errors import InputError
from infsim.workload.columns import TRACE_SCHEMA, RowLocator, build_table
from infsim.workload.output import write_atomically

__all__ = ["TRACE_SCHEMA", "RowLocator", "Trace"]

META_BLOCK_SIZE = b"infsim.hash_block_size_tokens"
META_SOURCE = b"infsim.source"
META_NOTES = b"infsim.notes"


@dataclass(frozen=True)
class Trace:
    """An immutable, validated request table (see the module docstring for invariants).

    Build one with `Trace.from_columns` (validates) rather than the constructor, which
    trusts that `table` already satisfies the invariants.
    """

    table: pa.Table
    hash_block_size_tokens: int | None = None
    source: str = "<memory>"
    notes: tuple[str, ...] = ()

    @classmethod
    def from_columns(
        cls,
        columns: Mapping[str, Any],
        *,
        hash_block_size_tokens: int | None = None,
        source: str = "<memory>",
        rows: RowLocator | None = None,
        notes: tuple[str, ...] = (),
    ) -> Trace:
        """Validate canonical columns (name → array-like) and build a trace.

        Raises `InputError` naming `source`, the row (through `rows`) and the column.
        """
        table = build_table(
            columns,
            hash_block_size_tokens=hash_block_size_tokens,
            source=source,
            rows=rows or RowLocator(),
        )
        return cls(table, hash_block_size_tokens, source, tuple(notes))

    # -- column access -------------------------------------------------------------------

    @property
    def num_requests(self) -> int:
        return self.table.num_rows

    def _numpy(self, name: str) -> np.ndarray:
        return arrays.to_numpy(self.table.column(name))

    @property
    def request_id(self) -> np.ndarray:
        return self._numpy("request_id")

    @property
    def arrival_s(self) -> np.ndarray:
        return self._numpy("arrival_s")

    @property
    def num_prompt_tokens(self) -> np.ndarray:
        return self._numpy("num_prompt_tokens")

    @property
    def num_output_tokens(self) -> np.ndarray:
        return self._numpy("num_output_tokens")

    @property
    def priority(self) -> np.ndarray:
        return self._numpy("priority")

    def prefix_hash_ids_list(self) -> list[list[int] | None]:
        return self.table.column("prefix_hash_ids").to_pylist()

    def session_ids(self) -> list[int | None]:
        return self.table.column("session_id").to_pylist()

    @property
    def duration_s(self) -> float:
        """Time from trace start (t = 0) to the last arrival; 0 for an empty trace."""
        return float(self.arrival_s[-1]) if self.num_requests else 0.0

    # -- transforms ----------------------------------------------------------------------

    def _with_table(self, table: pa.Table) -> Trace:
        return replace(self, table=table)

    def slice(
        self,
        start_s: float | None = None,
        end_s: float | None = None,
        max_requests: int | None = None,
    ) -> Trace:
        """Requests arriving in [start_s, end_s), at most the first `max_requests`.

        Arrivals are re-based to `start_s` (a request at start_s + 3 arrives at 3), so the
        first kept arrival sits at its offset from start_s. request_id is kept.
        """
        arrival_s = self.arrival_s
        lo = 0 if start_s is None else int(np.searchsorted(arrival_s, start_s, "left"))
        hi = len(arrival_s) if end_s is None else int(np.searchsorted(arrival_s, end_s, "left"))
        if max_requests is not None:
            if max_requests < 0:
                raise InputError(f"max_requests is {max_requests}; must be >= 0")
            hi = min(hi, lo + max_requests)
        table = self.table.slice(lo, max(hi - lo, 0))
        if start_s:
            shifted = arrival_s[lo : max(hi, lo)] - float(start_s)  # as Arrow's subtract
            table = table.set_column(1, TRACE_SCHEMA.field("arrival_s"), arrays.array(shifted))
        return self._with_table(table)

    def scale_time(self, factor: float) -> Trace:
        """Multiply every arrival time (hence every inter-arrival gap) by `factor` > 0."""
        if not (factor > 0 and np.isfinite(factor)):
            raise InputError(f"time scale factor is {factor}; must be a finite number > 0")
        scaled = arrays.array(self.arrival_s * float(factor))  # as Arrow's multiply
        return self._with_table(self.table.set_column(1, TRACE_SCHEMA.field("arrival_s"), scaled))

    def scale_rate(self, factor: float) -> Trace:
        """Multiply the arrival rate by `factor` > 0 (= `scale_time(1 / factor)`)."""
        if not (factor > 0 and np.isfinite(factor)):
            raise InputError(f"rate scale factor is {factor}; must be a finite number > 0")
        return self.scale_time(1.0 / factor)

    # -- output --------------------------------------------------------------------------

    def _schema_metadata(self) -> dict[bytes, bytes]:
        return {
            META_BLOCK_SIZE: json.dumps(self.hash_block_size_tokens).encode(),
            META_SOURCE: self.source.encode(),
            META_NOTES: json.dumps(list(self.notes)).encode(),
        }

    def to_parquet(self, path: str | Path) -> None:
        """Write the canonical Parquet file (metadata in the Arrow schema; deterministic).

        Written to a temporary sibling and renamed: a failure (disk full, no such
        directory) is an `InputError` naming `path` and leaves no partial file."""
        table = self.table.replace_schema_metadata(self._schema_metadata())
        write_atomically(path, lambda tmp: pq.write_table(table, str(tmp), compression="zstd"))

    def to_csv(self, path: str | Path) -> None:
        """Write the canonical columns as CSV; hash ids space-separated, null = empty field.

        Trace metadata is lost in CSV; give `hash_block_size_tokens` again when loading.
        """
        hash_ids = [
            None if ids is None else " ".join(map(str, ids)) for ids in self.prefix_hash_ids_list()
        ]
        index = TRACE_SCHEMA.get_field_index("prefix_hash_ids")
        table = self.table.set_column(index, "prefix_hash_ids", arrays.strings(hash_ids))
        write_atomically(path, lambda tmp: pacsv.write_csv(table, str(tmp)))

    def summary(self) -> dict[str, Any]:
        """Headline statistics (plain Python values, JSON-serialisable)."""
        from infsim.workload.stats import trace_summary

        return trace_summary(self)
