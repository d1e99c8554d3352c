"""Scheduling policies (vLLM's `--scheduling-policy`): FCFS and priority, each a waiting
queue (vLLM V1 `request_queue.py` shape) plus its preemption choice.

A policy is one class registered in `waiting_queues` under its YAML name: add / prepend /
peek / pop / len / iteration over the waiting requests, and `victim(running)`, the running
request vLLM preempts when another cannot get KV blocks. `prepend` is where preempted
requests go: the front of an FCFS queue (they resume first); a priority queue orders them
by (priority, arrival) like everybody else. Adding a policy is one class here (or in a
module that imports this registry) and a test; the scenario schema's
`engine.scheduling_policy` choices come from the registry.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator

from infsim.core.request import RequestState
from infsim.registry import Registry

waiting_queues: Registry[type] = Registry("scheduling_policy")


@waiting_queues.register("fcfs")
class FCFSQueue:
    """First come, first served; deque so both ends are O(1)."""

    def __init__(self) -> None:
        self._q: deque[RequestState] = deque()

    def add(self, req: RequestState) -> None:
        self._q.append(req)

    def prepend(self, req: RequestState) -> None:
        self._q.appendleft(req)

    def peek(self) -> RequestState:
        return self._q[0]

    def pop(self) -> RequestState:
        return self._q.popleft()

    def __len__(self) -> int:
        return len(self._q)

    def __iter__(self) -> Iterator[RequestState]:
        return iter(self._q)

    @staticmethod
    def victim(running: list[RequestState]) -> RequestState:
        """The last admitted running request (vLLM V1 FCFS)."""
        return running[-1]


@waiting_queues.register("priority")
class PriorityQueue:
    """Lowest `priority` value first, ties by arrival time then trace order (vLLM)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, float, int, RequestState]] = []

    def add(self, req: RequestState) -> None:
        heapq.heappush(self._heap, (req.priority, req.arrival_s, req.index, req))

    prepend = add

    def peek(self) -> RequestState:
        return self._heap[0][3]

    def pop(self) -> RequestState:
        return heapq.heappop(self._heap)[3]

    def __len__(self) -> int:
        return len(self._heap)

    def __iter__(self) -> Iterator[RequestState]:
        return (entry[3] for entry in sorted(self._heap))

    @staticmethod
    def victim(running: list[RequestState]) -> RequestState:
        """The lowest-priority running request (largest value), latest arrival on ties."""
        return max(running, key=lambda r: (r.priority, r.arrival_s, r.index))
