"""summary.json's `speculative` section, computed after the run from the speculators'
counters, the proposer time the cost model priced and the timeline.

    method, num_speculative_tokens, acceptance      the scenario's settings
    mean_accepted_tokens_per_verify                 (accepted drafts + verifies) / verifies:
                                                    tokens one request gets from one verify
                                                    step, the target's own token included
    expected_accepted_tokens_per_verify             1 + Σ marginals (acceptance.py): theory
    draft_acceptance_rate                           accepted drafts / drafts (vLLM's rate)
    acceptance_rate_per_position                    accepted / drafted at position i
    fraction_steps_disabled                         steps without drafts (batch above
                                                    disable_by_batch_size) / all steps
    draft_time_share                                proposer time / busy engine time
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from infsim import arrays
from infsim.speculative.acceptance import expected_accepted_tokens
from infsim.speculative.spec import SpeculativeSpec
from infsim.speculative.speculator import SpecDecodingStats, Speculator


@dataclass(frozen=True)
class SpeculativeRun:
    """What a run's speculation did, over all replicas."""

    stats: SpecDecodingStats
    draft_time_s: float
    marginals: np.ndarray


def collect(speculators: list[Speculator], draft_time_s: float) -> SpeculativeRun:
    k = speculators[0].k
    total = SpecDecodingStats(k)
    for s in speculators:
        total.add(s.stats)
    return SpeculativeRun(total, draft_time_s, speculators[0].marginals)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def speculative_summary(
    spec: SpeculativeSpec, run: SpeculativeRun, timeline: pa.Table
) -> dict[str, Any]:
    s = run.stats
    start = arrays.to_numpy(timeline.column("start_s"))
    end = arrays.to_numpy(timeline.column("end_s"))
    busy_s = float(np.sum(end - start))
    drafted = s.drafts_per_position
    accepted = s.accepted_per_position
    return {
        "method": spec.method,
        "num_speculative_tokens": spec.num_speculative_tokens,
        "acceptance": spec.acceptance.model_dump(mode="json"),
        "disable_by_batch_size": spec.disable_by_batch_size,
        "mean_accepted_tokens_per_verify": _ratio(
            s.num_accepted_tokens + s.num_verifies, s.num_verifies
        ),
        "expected_accepted_tokens_per_verify": expected_accepted_tokens(run.marginals),
        "draft_acceptance_rate": _ratio(s.num_accepted_tokens, s.num_draft_tokens),
        "acceptance_rate_per_position": [
            _ratio(float(a), float(d)) for a, d in zip(accepted, drafted, strict=True)
        ],
        "num_verifies": s.num_verifies,
        "num_draft_tokens": s.num_draft_tokens,
        "num_accepted_tokens": s.num_accepted_tokens,
        "num_steps_speculating": s.num_steps_speculating,
        "num_steps_disabled": s.num_steps_disabled,
        "fraction_steps_disabled": _ratio(
            s.num_steps_disabled, s.num_steps_speculating + s.num_steps_disabled
        ),
        "draft_time_s": run.draft_time_s,
        "draft_time_share": _ratio(run.draft_time_s, busy_s),
    }
