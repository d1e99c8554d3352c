"""A rich progress bar for sweeps: points done / total, failures, elapsed and ETA (stderr)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

from infsim.sweep.runner import Progress


class BarProgress(Progress):
    def __init__(self, label: str = "points") -> None:
        self.label = label
        self._bar: RichProgress | None = None
        self._failed = 0

    def start(self, total: int, cached: int) -> None:
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed[/red]"),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
            auto_refresh=False,  # no refresh thread: the process pool forks after start()
        )
        self._bar.start()
        self._task = self._bar.add_task(
            f"{self.label} ({cached} cached)", total=total, completed=cached, failed=0
        )
        self._bar.refresh()

    def advance(self, row: dict[str, Any]) -> None:
        self._failed += row["status"] != "ok"
        if self._bar is not None:
            self._bar.update(self._task, advance=1, failed=self._failed)
            self._bar.refresh()

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
