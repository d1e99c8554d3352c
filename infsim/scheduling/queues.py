"""Waiting queues (vLLM V1 `request_queue.py` shape): FCFS and priority.

Both expose add / prepend / peek / pop / len / iteration. `prepend` is where preempted
requests go: the front of an FCFS queue (they resume first); a priority queue orders
them by (priority, arrival) like everybody else.
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


def preemption_victim(policy: str, running: list[RequestState]) -> RequestState:
    """The request vLLM V1 preempts when a running request cannot get KV blocks."""
    if policy == "priority":
        return max(running, key=lambda r: (r.priority, r.arrival_s, r.index))
    return running[-1]
