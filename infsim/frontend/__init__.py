"""The serving front end (vLLM's OpenAI API server) in front of each engine: pure costs and
queueing; the simpy wiring is in `infsim/sim/replica.py`."""
