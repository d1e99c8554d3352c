"""Any headed CSV as a trace through a column mapping (format csv)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from infsim.cli import main
from infsim.errors import InputError
from infsim.scenario.load import validate_scenario
from infsim.workload.loaders import load_trace

MAPPING = {"arrival_s": "ts_ms", "num_prompt_tokens": "in", "num_output_tokens": "out"}


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "log.csv"
    path.write_text("user,ts_ms,in,out\na,1000,100,5\nb,1250,200,6\na,3000,300,7\n")
    return path


def test_columns_and_time_unit_map_any_csv(csv: Path) -> None:
    trace = load_trace(csv, "csv", columns=MAPPING, time_unit="ms")
    assert trace.arrival_s.tolist() == [0.0, 0.25, 2.0]
    assert trace.num_prompt_tokens.tolist() == [100, 200, 300]
    assert trace.num_output_tokens.tolist() == [5, 6, 7]
    with_sessions = load_trace(csv, columns={**MAPPING, "session_id": "user"}, time_unit="ms")
    assert with_sessions.session_ids() == [0, 1, 0]  # auto + a mapping = csv


def test_mapping_errors_name_what_to_give(csv: Path) -> None:
    with pytest.raises(InputError, match="needs a column mapping for arrival_s"):
        load_trace(csv, "csv")
    with pytest.raises(InputError, match=r"missing column.*'ts'"):
        load_trace(csv, "csv", columns={**MAPPING, "arrival_s": "ts"})
    with pytest.raises(InputError, match="a column mapping is for format csv"):
        load_trace(csv, "azure", columns=MAPPING)


def test_scenario_trace_columns(csv: Path) -> None:
    def raw(trace: dict) -> dict:
        return {"model": "llama-3.1-8b", "hardware": {"gpu": "h100-sxm"},
                "workload": {"trace": {"path": str(csv), **trace}}}  # fmt: skip

    scenario = validate_scenario(raw({"columns": MAPPING, "time_unit": "ms"}), "s.yaml")
    assert scenario.workload.trace.columns == MAPPING
    for bad, message in (
        ({"format": "csv"}, "format csv needs columns"),
        ({"format": "azure", "columns": MAPPING}, "columns is for format csv"),
        ({"time_unit": "ms"}, "time_unit is for format csv"),
        ({"columns": {"arrival": "ts_ms"}}, "arrival"),
    ):
        with pytest.raises(InputError, match=message):
            validate_scenario(raw(bad), "s.yaml")


def test_trace_cli_columns(csv: Path) -> None:
    args = ["trace", "info", str(csv), "--json", "--time-unit", "ms",
            "--columns", "arrival_s=ts_ms,num_prompt_tokens=in,num_output_tokens=out"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["num_requests"] == 3
    bad = CliRunner().invoke(main, ["trace", "info", str(csv), "--columns", "arrival=ts_ms"])
    assert bad.exit_code == 2
    assert "NAME=COLUMN" in bad.output
