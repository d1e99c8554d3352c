"""Speculative decoding through the whole simulation, with a constant step time (0.5 s).

The proposer is `ngram` (no GPU time), so every step costs exactly the constant and the
timings can be derived by hand. Acceptance 1 or 0 makes them deterministic; random
acceptance is checked for determinism, the fast-forward switch and the theory oracle.
"""

from __future__ import annotations

import numpy as np
import pytest

from infsim import api
from infsim.core.batch import Batch
from infsim.speculative.acceptance import accepted_distribution, constant_rate_mean
from infsim.workload.trace import Trace


def trace(arrivals: list[float], prompts: list[int], outputs: list[int]) -> Trace:
    return Trace.from_columns(
        {
            "request_id": list(range(len(arrivals))),
            "arrival_s": arrivals,
            "num_prompt_tokens": prompts,
            "num_output_tokens": outputs,
        }
    )


def spec(rate: float, k: int = 3, **more) -> dict:
    return {"method": "ngram", "num_speculative_tokens": k,
            "acceptance": {"kind": "constant", "rate": rate}, **more}  # fmt: skip


def run(make_scenario, tr: Trace, *, fast_forward: bool = True, seed: int = 0, **engine):
    scenario = make_scenario(fast_forward=fast_forward, **engine)
    resolved, _ = api.prepare(scenario.model_copy(update={"seed": seed}), ".")
    return api.run_resolved(resolved, tr)


def cols(result: api.RunResult, *names: str) -> list[tuple]:
    table = result.requests.select(list(names)).to_pylist()
    return [tuple(r[c] for c in names) for r in table]


def test_all_accepted_exact_times(constant_step, make_scenario) -> None:
    # k = 3, α = 1. A: prompt 8, 10 output tokens, arrives at 0.
    # step [0.0, 0.5]: prefill, token 1 (TTFT 0.5)
    # steps ending 1.0, 1.5, 2.0: verify 4 tokens each, emit 4, 4, 1 (output ends at 10)
    # → finish 2.0 = ceil((10 − 1) / 4) = 3 decode steps after the prefill;
    #   TPOT (2.0 − 0.5) / 9; 3 ITL samples of 0.5 (one per streamed chunk).
    constant_step(0.5)
    res = run(make_scenario, trace([0.0], [8], [10]), speculative=spec(1.0))
    assert cols(res, "first_token_s", "finish_s") == [(0.5, 2.0)]
    assert cols(res, "tpot_s")[0][0] == pytest.approx(1.5 / 9)
    itl = res.summary["latency_s"]["itl"]
    assert itl["mean"] == 0.5
    tl = res.timeline
    assert tl.column("num_batched_tokens").to_pylist() == [8, 4, 4, 4]
    assert tl.column("num_draft_tokens").to_pylist() == [0, 3, 3, 3]
    assert tl.column("num_accepted_tokens").to_pylist() == [0, 3, 3, 3]
    s = res.summary["speculative"]
    assert (s["num_verifies"], s["mean_accepted_tokens_per_verify"]) == (3, 4.0)
    assert s["acceptance_rate_per_position"] == [1.0, 1.0, 1.0]
    assert s["draft_time_share"] == 0.0  # ngram: the proposer takes no GPU time


def test_all_rejected_equals_no_speculation_but_verifies_k_plus_1(
    constant_step, make_scenario
) -> None:
    # α = 0: every step emits the target's token only, so the timings equal a run without
    # speculation (constant step time), while each decode step carries 1 + k tokens.
    constant_step(0.5)
    tr = trace([0.0, 0.2, 1.1], [6, 10, 3], [5, 3, 4])
    # ngram speculation turns vLLM's async scheduling off: compare with the same cadence.
    base = run(make_scenario, tr, max_num_batched_tokens=16, async_scheduling=False)
    spec0 = run(make_scenario, tr, max_num_batched_tokens=16, speculative=spec(0.0, k=2))
    assert spec0.resolved.scenario.engine.async_scheduling is False
    names = ("request_id", "first_scheduled_s", "first_token_s", "finish_s", "tpot_s")
    assert cols(spec0, *names) == cols(base, *names)
    s = spec0.summary["speculative"]
    assert s["mean_accepted_tokens_per_verify"] == 1.0
    assert s["num_draft_tokens"] == 2 * s["num_verifies"]
    assert total_tokens(spec0) == total_tokens(base) + s["num_draft_tokens"]


def total_tokens(result: api.RunResult) -> int:
    # A fast-forwarded row holds num_steps identical steps of num_batched_tokens each.
    tl = result.timeline.to_pydict()
    return sum(n * k for n, k in zip(tl["num_batched_tokens"], tl["num_steps"], strict=True))


class RecordingCost:
    """Constant step time; remembers every batch it priced (a cost double)."""

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.batches: list[tuple[list[int], int, int, int]] = []

    def step_time_s(self, batch: Batch) -> float:
        self.batches.append(
            (list(batch.num_new_tokens), batch.num_spec_tokens, batch.num_sampled, batch.draft_k)
        )
        return self.step_s

    def decode_run_times_s(self, num_seqs: int, sum_context_tokens: int, k: int) -> list[float]:
        return [self.step_s] * k

    def op_times_s(self, batch: Batch) -> dict[str, float]:
        return {"overhead": self.step_s}


def test_cost_model_is_charged_k_plus_1_query_tokens_per_decoding_request(
    monkeypatch, make_scenario
) -> None:
    # Two requests decoding together, k = 2, α = 0.5: every decode step prices 1 + 2 query
    # tokens per decoding request, 2 draft rows per request in the LM head.
    cost = RecordingCost(0.5)
    monkeypatch.setattr("infsim.sim.engine.build_cost_model", lambda _rs: cost)
    run(make_scenario, trace([0.0, 0.0], [5, 7], [6, 6]), speculative=spec(0.5, k=2))
    prefill, *decodes = cost.batches
    assert prefill == ([5, 7], 0, 2, 2)
    assert decodes
    for news, num_spec, num_sampled, draft_k in decodes:
        assert news == [3] * len(news)
        assert (num_spec, num_sampled, draft_k) == (2 * len(news), len(news), 2)


@pytest.mark.parametrize("fast_forward", [True, False])
def test_same_seed_same_results_other_seed_other_acceptance(
    constant_step, make_scenario, fast_forward: bool
) -> None:
    constant_step(0.5)
    tr = trace([0.0, 0.3, 0.6, 2.0], [9, 4, 12, 6], [30, 12, 25, 18])
    a = run(make_scenario, tr, fast_forward=fast_forward, speculative=spec(0.6))
    b = run(make_scenario, tr, fast_forward=fast_forward, speculative=spec(0.6))
    c = run(make_scenario, tr, fast_forward=fast_forward, seed=1, speculative=spec(0.6))
    assert a.requests.equals(b.requests)
    assert a.timeline.equals(b.timeline)
    assert a.summary["speculative"] == b.summary["speculative"]
    accepted = a.timeline.column("num_accepted_tokens").to_pylist()
    assert accepted != c.timeline.column("num_accepted_tokens").to_pylist()


def test_fast_forward_on_and_off_identical_with_switch_off(constant_step, make_scenario) -> None:
    # disable_by_batch_size 2: with 3+ requests running no drafts, and the decode steps in
    # between are fast-forwarded; with ≤ 2 running each step drafts and goes one by one.
    constant_step(0.5)
    tr = trace([0.0, 0.0, 0.0, 0.0, 7.3, 9.1], [9, 4, 12, 6, 5, 30], [40, 12, 25, 18, 30, 9])
    engine = {"speculative": spec(0.7, disable_by_batch_size=2)}
    fast = run(make_scenario, tr, fast_forward=True, **engine)
    slow = run(make_scenario, tr, fast_forward=False, **engine)
    assert fast.requests.equals(slow.requests)
    assert fast.summary["speculative"] == slow.summary["speculative"]
    assert fast.summary["latency_s"] == slow.summary["latency_s"]
    assert max(fast.timeline.column("num_steps").to_pylist()) > 1  # a run was fast-forwarded
    s = fast.summary["speculative"]
    assert 0 < s["fraction_steps_disabled"] < 1
    assert s["num_steps_disabled"] + s["num_steps_speculating"] == sum(
        slow.timeline.column("num_steps").to_pylist()
    )


def test_simulated_mean_accepted_tokens_matches_theory(constant_step, make_scenario) -> None:
    # 40 long requests at α = 0.7, k = 3: ~6,300 verifies; the mean accepted tokens per
    # verify is within 3σ of (1 − α⁴) / (1 − α) = 2.533. (Pooled over 40 seeds, the
    # first-position rate of this workload is 0.6983 at 63k verifies, −0.96σ from 0.7.)
    constant_step(0.01)
    n = 40
    tr = trace([0.1 * i for i in range(n)], [32] * n, [800] * n)
    res = run(make_scenario, tr, speculative=spec(0.7))
    s = res.summary["speculative"]
    theory = constant_rate_mean(0.7, 3)
    marginals = 0.7 ** np.arange(1, 4)
    law, values = accepted_distribution(marginals), np.arange(1, 5)
    var = float(np.sum(law * values**2) - np.sum(law * values) ** 2)
    sigma = np.sqrt(var / s["num_verifies"])
    assert s["expected_accepted_tokens_per_verify"] == pytest.approx(theory)
    assert abs(s["mean_accepted_tokens_per_verify"] - theory) <= 3 * sigma
    assert cols(res, "status") == [("finished",)] * n
