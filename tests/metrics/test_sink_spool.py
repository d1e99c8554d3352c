"""A run streamed to a spool directory writes the same tables and files as one held in
memory, holds no table chunks while it runs, and the CLI leaves no spool behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from infsim import api
from infsim.cli import main
from infsim.metrics import recorder
from infsim.metrics.sink import TableSink
from infsim.scenario.load import load_scenario

REPO = Path(__file__).resolve().parents[2]


def _run(name: str, overrides: list[str], spool: Path | None):
    spec = load_scenario(REPO / "scenarios" / name, overrides)
    resolved, trace = api.prepare(spec, REPO / "scenarios")
    return api.run_resolved(resolved, trace, spool_dir=spool)


def _summary(result) -> dict:
    summary = dict(result.summary)
    summary["simulation"] = {k: v for k, v in summary["simulation"].items() if k != "wall_s"}
    return summary


@pytest.mark.parametrize(
    ("name", "overrides"),
    [("quickstart.yaml", ["workload.synthetic.num_requests=2000"]),
     ("disaggregated-1p1d.yaml", []),
     ("spot-failures.yaml", [])],
)  # fmt: skip
def test_streamed_run_equals_the_in_memory_run(
    tmp_path: Path, monkeypatch, name: str, overrides: list[str]
) -> None:
    monkeypatch.setattr(recorder, "REQUESTS_PER_CHUNK", 100)
    monkeypatch.setattr(recorder, "ROWS_PER_BATCH", 251)
    held = _run(name, overrides, None)
    spool = tmp_path / "spool"
    spool.mkdir()
    streamed = _run(name, overrides, spool)
    assert streamed.request_table._chunks == []
    assert streamed.step_table._chunks == []
    assert pq.ParquetFile(spool / "requests.parquet").num_row_groups > 1  # written as it ran
    assert streamed.requests.equals(held.requests)
    assert streamed.timeline.equals(held.timeline)
    assert _summary(streamed) == _summary(held)
    held.write(tmp_path / "held")
    streamed.write(tmp_path / "streamed")
    for table in ("requests.parquet", "timeline.parquet"):
        assert (tmp_path / "held" / table).read_bytes() == (
            tmp_path / "streamed" / table
        ).read_bytes()


def test_an_empty_sink_still_writes_its_schema(tmp_path: Path) -> None:
    from infsim.metrics.recorder import TIMELINE_SCHEMA

    sink = TableSink(TIMELINE_SCHEMA, tmp_path / "t.parquet")
    sink.write_to(tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.num_rows == 0
    assert table.schema.names == TIMELINE_SCHEMA.names
    with pytest.raises(RuntimeError):
        sink.append(TIMELINE_SCHEMA.empty_table())


def _siblings(out: Path) -> list[str]:
    return sorted(n for n in os.listdir(out.parent) if n.startswith(f".{out.name}."))


def test_the_cli_leaves_no_spool_behind(tmp_path: Path) -> None:
    out = tmp_path / "run"
    scenario = REPO / "scenarios" / "quickstart.yaml"
    args = ["run", str(scenario), "-o", str(out), "--quiet", "--no-report",
            "--set", "workload.synthetic.num_requests=300"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert pq.read_table(out / "requests.parquet").num_rows == 300
    assert _siblings(out) == []


def test_disk_full_while_streaming_is_one_error_and_changes_nothing(
    tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "run"
    scenario = REPO / "scenarios" / "quickstart.yaml"
    args = ["run", str(scenario), "-o", str(out), "--quiet", "--no-report",
            "--set", "workload.synthetic.num_requests=300"]  # fmt: skip
    assert CliRunner().invoke(main, args).exit_code == 0
    before = (out / "summary.json").read_bytes()
    real = TableSink.append

    def full(sink, chunk):
        if sink.spool_path is not None and chunk.num_rows:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(sink.spool_path))
        real(sink, chunk)

    monkeypatch.setattr(TableSink, "append", full)
    result = CliRunner().invoke(main, [*args[:-1], "workload.synthetic.num_requests=400"])
    assert result.exit_code == 2, result.output
    assert "no space left on the device" in result.output
    assert "still holds the earlier run" in result.output
    assert "Traceback" not in result.output
    assert (out / "summary.json").read_bytes() == before
    assert _siblings(out) == []


def test_run_files_keep_dictionaries_for_all_but_float_columns(tmp_path: Path) -> None:
    """Float columns (times, latencies, usage) are written without a dictionary, every
    other column (ids, counts, statuses) with one (`sink.parquet_writer`)."""
    _run("quickstart.yaml", ["workload.synthetic.num_requests=300"], None).write(tmp_path)
    for name in ("requests.parquet", "timeline.parquet"):
        meta = pq.ParquetFile(tmp_path / name).metadata
        schema = meta.schema.to_arrow_schema()
        for i in range(meta.num_columns):
            column = meta.row_group(0).column(i)
            dictionary = any("DICTIONARY" in e for e in column.encodings)
            floating = str(schema.field(column.path_in_schema).type) in ("double", "float")
            assert dictionary != floating, (name, column.path_in_schema, column.encodings)
