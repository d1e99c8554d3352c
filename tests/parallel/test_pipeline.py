"""Pipeline parallelism: the stage clock (pure) and vLLM's layer split."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from infsim.parallel.pipeline import StageClock, stage_layer_counts


def test_layer_split_as_vllm() -> None:
    assert stage_layer_counts(80, 2) == [40, 40]
    # Remainder to the stages before the last (vLLM get_pp_indices).
    assert stage_layer_counts(10, 4) == [2, 3, 3, 2]
    assert stage_layer_counts(7, 3) == [2, 3, 2]


def test_lone_batch_latency_is_stages_plus_sends() -> None:
    clock = StageClock(3)
    assert clock.submit(1.0, [0.5, 0.5, 0.5], [0.25, 0.25]) == 1.0 + 3 * 0.5 + 2 * 0.25


def test_back_to_back_batches_one_per_stage_time() -> None:
    # pp = 4, τ = 0.5, no transfers, all handed over at 0: batch j ends at (4 + j)·τ.
    clock = StageClock(4)
    ends = [clock.submit(0.0, [0.5] * 4, [0.0] * 3) for _ in range(6)]
    assert ends == [2.0, 2.5, 3.0, 3.5, 4.0, 4.5]


def test_slowest_stage_bounds_throughput() -> None:
    clock = StageClock(2)
    ends = [clock.submit(0.0, [0.25, 1.0], [0.0]) for _ in range(4)]
    assert ends == [1.25, 2.25, 3.25, 4.25]


@given(
    st.integers(1, 6),
    st.lists(st.floats(0.0, 2.0), min_size=1, max_size=8),
    st.floats(0.0, 1.0),
)
def test_batches_leave_in_order_and_never_faster_than_alone(pp, starts, tau) -> None:
    clock = StageClock(pp)
    ends = []
    for start in sorted(starts):
        end = clock.submit(start, [tau] * pp, [0.1] * (pp - 1))
        assert end >= start + pp * tau + 0.1 * (pp - 1) - 1e-12
        ends.append(end)
    assert ends == sorted(ends)
