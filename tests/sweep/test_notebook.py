"""The planning notebook runs end to end (nbclient), so it cannot rot."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from tests.sweep.conftest import REPO

NOTEBOOK = REPO / "notebooks" / "plan_llama70b.ipynb"


def test_planning_notebook_executes_and_answers_the_question():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError with the cell and traceback on any error
    printed = "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.get("name") == "stdout"
    )
    assert "one replica meets the SLO up to" in printed
    assert "per million output tokens" in printed
    assert "report.html" in printed
    assert "answer: " in printed  # infsim plan, section 6
