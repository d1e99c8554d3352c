"""Parallelism inside one replica: interconnect collectives (α–β), GPU placement over
nodes, pipeline-parallel timing and the memory fit check. Pure code, no simpy."""
