"""The types every layer shares: a request's state and one engine step's batch and outcome.

They sit below the scheduler, the KV cache, the routers and the cost models (as vLLM keeps
`vllm/v1/request.py` at the top of its tree), so none of those imports another to name a
request or a batch. `core` imports nothing else from infsim.
"""
