"""Speculative decoding (engine.speculative): draft k tokens, verify them in one step.

    spec.py        the scenario section (method, k, acceptance, disable_by_batch_size)
    acceptance.py  pure acceptance models (constant, geometric decay, empirical table)
    speculator.py  the per-replica policy the scheduler is given: k per step, draws
    memory.py      the proposer's weights and KV in the block pool
    report.py      summary.json's `speculative` section

The scheduling rules live in scheduling/continuous.py, the proposer's cost in
cost/draft.py; docs/speculative.md has the semantics and the evidence.
"""
