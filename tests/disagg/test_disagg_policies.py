"""Pure disaggregation policies: link, transfer time, conditional decision, placement;
and the two schedulers' block accounting without simpy."""

from __future__ import annotations

from infsim.catalog.hardware import load_gpu
from infsim.core.request import RequestState, Status
from infsim.disagg.policies import least_loaded, prefill_locally, transfer_link, transfer_time_s
from infsim.disagg.schedulers import DecodeScheduler, PrefillScheduler
from infsim.disagg.spec import ConditionalSpec, DisaggregationSpec, LinkParamsSpec
from infsim.kvcache.counter import BlockCounter
from infsim.parallel.network import Link
from infsim.scheduling.continuous import SchedulerConfig


def test_transfer_time_is_latency_plus_bytes_over_bandwidth() -> None:
    link = Link("x", 0.25, 1e9)
    assert transfer_time_s(2e9, link) == 2.25
    # Two streams: each transfer gets half the bandwidth.
    assert transfer_time_s(2e9, link, num_streams=2) == 4.25


def test_layer_pipelined_exposes_only_what_did_not_overlap() -> None:
    link = Link("x", 0.25, 1e9)
    # Full transfer 2 s, prefill 1.5 s: 0.5 s could not overlap.
    assert transfer_time_s(2e9, link, num_layers=32, layer_pipelined=True, prefill_span_s=1.5) == (
        0.25 + 0.5
    )
    # A long prefill hides all but the last layer's share (2 s / 32).
    exposed = transfer_time_s(2e9, link, num_layers=32, layer_pipelined=True, prefill_span_s=10)
    assert exposed == 0.25 + 2.0 / 32


def test_catalog_links_aggregate_over_tp_pairs() -> None:
    h100 = load_gpu("h100-sxm")
    ib = h100.inter_node_link
    link = transfer_link(DisaggregationSpec(), h100, prefill_tp=4, decode_tp=2)
    assert link.bandwidth_bytes_per_s == 2 * ib.bandwidth_bytes_per_s
    assert link.latency_s == ib.latency_s
    nv = transfer_link(DisaggregationSpec(link="intra_node"), h100, 1, 1)
    assert nv.bandwidth_bytes_per_s == h100.intra_node_link.bandwidth_bytes_per_s
    explicit = DisaggregationSpec(link=LinkParamsSpec(bandwidth_bytes_per_s=5.0, latency_s=1.0))
    assert transfer_link(explicit, h100, 1, 1) == Link("explicit", 1.0, 5.0)


def test_conditional_decision() -> None:
    assert not prefill_locally(100, 0, None)
    by_length = ConditionalSpec(max_local_prefill_tokens=64)
    assert prefill_locally(64, 0, by_length)
    assert not prefill_locally(65, 0, by_length)
    assert prefill_locally(1000, 940, by_length)  # only 60 uncached tokens
    by_hit = ConditionalSpec(local_if_cached_fraction=0.5)
    assert prefill_locally(1000, 500, by_hit)
    assert not prefill_locally(1000, 499, by_hit)


def test_least_loaded_breaks_ties_by_index() -> None:
    assert least_loaded([0.5, 0.2, 0.2]) == 1
    assert least_loaded([0.0]) == 0


def _req(index: int, prompt: int, output: int) -> RequestState:
    return RequestState(
        index=index,
        request_id=index,
        arrival_s=0.0,
        num_prompt_tokens=prompt,
        num_output_tokens=output,
    )


CONFIG = SchedulerConfig(max_num_seqs=8, max_num_batched_tokens=256)


def test_prefill_keeps_blocks_until_released() -> None:
    kv = BlockCounter(20, 16)
    sched = PrefillScheduler(CONFIG, kv)
    req = _req(0, 100, 1)
    sched.add(req)
    batch = sched.schedule(0.0)
    outcome = sched.on_batch_done(batch, 0.0, 0.5)
    assert outcome.finished == [req]
    assert req.status == Status.FINISHED
    assert req.first_token_s == 0.5
    assert not sched.running
    assert sched.num_held == 1
    assert kv.num_free_blocks == 20 - 7  # still held: ceil(100 / 16)
    sched.release(req)
    assert kv.num_free_blocks == 20
    assert sched.num_held == 0


def test_prefill_sleeps_while_held_blocks_block_the_queue() -> None:
    kv = BlockCounter(8, 16)
    sched = PrefillScheduler(CONFIG, kv)
    first, second = _req(0, 100, 1), _req(1, 100, 1)
    sched.add(first)
    sched.on_batch_done(sched.schedule(0.0), 0.0, 0.5)
    sched.add(second)
    assert not sched.has_work()  # 1 free block, 7 needed: nothing could be scheduled
    sched.release(first)
    assert sched.has_work()


def test_decode_reserves_then_admits_received_request() -> None:
    kv = BlockCounter(10, 16)
    sched = DecodeScheduler(CONFIG, kv)
    reserved: list[tuple[int, float]] = []
    sched.on_reserved = lambda r, now: reserved.append((r.index, now))
    a, b = _req(0, 100, 3), _req(1, 100, 3)
    sched.offer(a, 1.0)  # idle: reserved at once, prompt + 1 slot = 7 blocks
    sched.offer(b, 1.0)  # 3 free blocks: waits
    assert reserved == [(0, 1.0)]
    assert kv.num_free_blocks == 3
    assert list(sched.remote) == [b]
    assert not sched.has_work()
    # The KV arrived: computed = prompt, one token out; it decodes from there.
    a.num_computed_tokens, a.num_output_done, a.last_emit_s = 100, 1, 2.0
    sched.on_received(a)
    batch = sched.schedule(2.0)
    assert batch.requests == [a]
    assert batch.num_new_tokens == [1]
    sched.on_batch_done(batch, 2.0, 2.5)
    assert kv.num_free_blocks == 3  # the first decode step needed no new block
    outcome = sched.on_batch_done(sched.schedule(2.5), 2.5, 3.0)
    assert outcome.finished == [a]
    assert reserved == [(0, 1.0), (1, 3.0)]  # a's blocks freed at 3.0: b reserved
    assert kv.num_free_blocks == 10 - 7
    assert not sched.remote
