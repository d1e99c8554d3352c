"""The fleet layer's pure policies and scenario sections (no simpy here).

    spec.py        pools, autoscaling, failures: the scenario sections
    pools.py       each pool resolved as a one-pool scenario (GPU, TP, KV, price)
    autoscaler.py  HPA formula, stabilization, panic, activator: desired replicas
    cold_start.py  provisioning + weight load + engine start + graph capture
    failures.py    random failures (MTBF), spot preemptions, requeue/fail policy
    report.py      the summary's `fleet`, `failures` and cost-per-pool sections

The wiring (replica lifecycle, gateway queue, control loop) is `infsim/sim/fleet.py`.
"""
