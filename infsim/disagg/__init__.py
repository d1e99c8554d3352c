"""Prefill/decode disaggregation (xPyD): spec, pure policies, the prefill/decode
schedulers and the summary section. The simpy wiring is `infsim.sim.disagg`."""
