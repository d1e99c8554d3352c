"""Fixtures for workload tests: the shared real-data folder (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """/work/shared/data next to the repository; tests using it skip in a bare clone."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real traces not available ({SHARED_DATA.resolve()} is absent)")
    return SHARED_DATA.resolve()
