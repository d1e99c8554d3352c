"""The run's raised young-generation threshold (`engine.fewer_collections`): raised inside,
never lowered, and restored after, also when the run fails."""

from __future__ import annotations

import gc

import pytest

from infsim.sim import engine


@pytest.fixture
def default_threshold():
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_raised_inside_and_restored(default_threshold) -> None:
    with engine.fewer_collections():
        assert gc.get_threshold() == (engine.YOUNG_COLLECTION_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_when_the_run_fails(default_threshold) -> None:
    with pytest.raises(RuntimeError), engine.fewer_collections():
        raise RuntimeError("a failing run")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_threshold_is_kept(default_threshold) -> None:
    gc.set_threshold(50_000, 5, 5)
    with engine.fewer_collections():
        assert gc.get_threshold() == (50_000, 5, 5)
    assert gc.get_threshold() == (50_000, 5, 5)
