"""SGLang `python -m sglang.bench_serving --output-file X.jsonl [--output-details]`
(FORMATS.md §1.2): JSONL, one object per benchmark run, appended; choose one with run_index.

Units: aggregate keys end in `_ms` (SGLang's e2e key is `*_e2e_latency_ms`); with
`--output-details` the line also carries `input_lens`, `output_lens`, `ttfts`, `itls`
(seconds) and `errors`. SGLang records no per-request start times and no per-request
latencies, so a run is never replayable and E2E/TPOT come from the stated aggregates.
The file may contain the bare `Infinity` token (`"request_rate": Infinity`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infsim.errors import shown
from infsim.validation import fields
from infsim.validation.formats import BenchFormat, pick_run, read_numbered_json_lines, register
from infsim.validation.formats.vllm import detailed_rows
from infsim.validation.measured import MeasuredRun, ms_aggregates, stated_seconds

METRICS = {"ttft": "ttft", "tpot": "tpot", "itl": "itl", "e2e": "e2e_latency"}


def _describe(entry: tuple[int, dict[str, Any]]) -> str:
    run = entry[1]
    return (
        f"request_rate {shown(run.get('request_rate'))}, max_concurrency "
        f"{shown(run.get('max_concurrency'))}, completed {shown(run.get('completed'))}"
    )


def _model(run: dict[str, Any], where: str) -> str | None:
    info = fields.mapping(run.get("server_info"), where, "server_info", optional=True)
    for key, value in (("model_id", run.get("model_id")), ("model", run.get("model")),
                       ("server_info.model_path", info.get("model_path"))):  # fmt: skip
        name = fields.text(value, where, key)
        if name:
            return name
    return None


def read_sglang(path: Path, run_index: int | None) -> MeasuredRun:
    line, run = pick_run(read_numbered_json_lines(path), run_index, path, _describe)
    where = f"{path}: line {line}"
    stats = ms_aggregates(run, METRICS, where)
    requests = detailed_rows(run, where, timed=False)
    note = (
        "per-request ttfts/itls/lengths present (--output-details)"
        if requests is not None
        else "aggregates only (run without --output-details)"
    )
    failed = None if requests is None else int(requests.failed.sum())
    return MeasuredRun(
        format="sglang",
        source=str(path),
        model=_model(run, where),
        requests=requests,
        stats=stats,
        duration_s=stated_seconds(run.get("duration"), where, "duration"),
        num_completed=fields.count(run.get("completed"), where, "completed", optional=True),
        num_failed=failed,
        notes=(note,),
        replay_blocker="SGLang bench_serving records no per-request start times",
    )


def _sniff(path: Path, head: str) -> bool:
    return (head.lstrip().startswith("{") and "_e2e_latency_ms" in head) or (
        '"dataset_name"' in head and '"backend"' in head and '"model_id"' not in head
    )


register(
    BenchFormat(
        "sglang",
        read_sglang,
        _sniff,
        "SGLang bench_serving JSONL (one run per line; --output-details)",
    )
)
