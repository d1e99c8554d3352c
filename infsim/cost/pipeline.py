"""Stage times of one batch under pipeline parallelism.

Each stage is priced by the replica's own cost model built for that stage's layers (and
the TP link its GPUs use): stage s takes its decoder layers' ops; the per-step CPU
overhead (scheduling, input preparation) is paid before stage 0 and the LM head + sampler
on the last stage, which holds them. Between stages the hidden states of the batch's
tokens, T·hidden·2 bytes, are sent point to point over the link that boundary crosses.
"""

from __future__ import annotations

from infsim.core.batch import Batch
from infsim.cost.base import CostModel
from infsim.cost.roofline import ACTIVATION_BYTES
from infsim.parallel.network import Link, p2p_s

HEAD_OPS = frozenset({"lm_head", "lm_head_sampler"})
OVERHEAD_OP = "overhead"


class PipelineCost:
    """`stage_times_s` and `send_times_s` of a batch; pure, like the cost models."""

    def __init__(self, stage_models: list[CostModel], send_links: list[Link], hidden_size: int):
        if len(send_links) != len(stage_models) - 1:
            raise ValueError("one send link per stage boundary")
        self.stage_models = stage_models
        self.send_links = send_links
        self.hidden_size = hidden_size

    @property
    def num_stages(self) -> int:
        return len(self.stage_models)

    def stage_times_s(self, batch: Batch) -> list[float]:
        last = len(self.stage_models) - 1
        times = []
        for s, model in enumerate(self.stage_models):
            if hasattr(model, "tally_overhead"):  # coverage counts what the stage pays
                model.tally_overhead, model.tally_head = s == 0, s == last
            ops = model.op_times_s(batch)
            body = sum(v for k, v in ops.items() if k not in HEAD_OPS and k != OVERHEAD_OP)
            if s == 0:
                body += ops.get(OVERHEAD_OP, 0.0)
            if s == last:
                body += sum(v for k, v in ops.items() if k in HEAD_OPS)
            times.append(body)
        return times

    def send_times_s(self, batch: Batch) -> list[float]:
        nbytes = batch.num_batched_tokens * self.hidden_size * ACTIVATION_BYTES
        return [p2p_s(nbytes, link) for link in self.send_links]
