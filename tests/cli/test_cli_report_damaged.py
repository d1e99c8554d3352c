"""`infsim report` on an incomplete or damaged run directory: one paragraph, exit 2, never
an internal error or stale results (issue 15, item 3; docs/outputs.md).

The report command lives in infsim/sweep/report_html.py: `write_report` dispatches on
`is_run_dir` and sends a run to `infsim.report.html_run.write_run_report`, which reads it
with `infsim.report.read.read_run` (verifying it first).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from infsim.cli import main
from infsim.report.write import MARKER

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"


def _truncate(out: Path) -> None:
    data = (out / "requests.parquet").read_bytes()
    (out / "requests.parquet").write_bytes(data[:1000])


DAMAGES = {
    "truncated requests.parquet": (_truncate, "truncated or replaced"),
    "no completion marker": (lambda out: (out / MARKER).unlink(), f"{MARKER} is missing"),
    "summary.json missing": (lambda out: (out / "summary.json").unlink(),
                             "summary.json is missing"),
}  # fmt: skip


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_report_refuses_a_damaged_run(tmp_path: Path, damage: str) -> None:
    out = tmp_path / "run"
    args = ["run", str(QUICKSTART), "-o", str(out), "--quiet", "--no-report",
            "--set", "workload.synthetic.num_requests=30"]  # fmt: skip
    assert CliRunner().invoke(main, args).exit_code == 0
    harm, message = DAMAGES[damage]
    harm(out)
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 2, result.output
    assert f"{out}: not a complete infsim run" in result.output
    assert message in result.output
    assert not (out / "report.html").exists()
