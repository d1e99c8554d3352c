"""Per-request mutable state inside a replica.

One `RequestState` per trace row, created by the wiring layer when the request arrives.
Token accounting follows vLLM V1 (`Request.num_computed_tokens` catching up with
`num_tokens`); there is no separate prefill/decode phase::

    num_tokens = num_prompt_tokens + num_output_done
    a step schedules n = num_tokens - num_computed_tokens (capped by budget/threshold)
    after the step, num_computed_tokens += n; if it now equals num_tokens the engine
    sampled one token: num_output_done += 1 (the first one is the TTFT event)
    the request finishes when num_output_done == num_output_tokens

Preemption (recompute) resets `num_computed_tokens` to 0 and frees the KV blocks; the
tokens already generated are kept and recomputed as part of the prompt, exactly as vLLM.

`__slots__` keeps a request at ~200 bytes: the speed budget is microseconds per request.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import numpy as np

NO_BLOCKS = np.empty(0, dtype=np.intp)
"""The block table of a request holding no blocks (shared, never written: a pool gives a
request its own array when it first allocates)."""


class Status(enum.IntEnum):
    """Lifecycle: WAITING → RUNNING ⇄ (preempted) WAITING → FINISHED, or REJECTED, or
    FAILED (its replica was lost and the fleet's failure policy gave up on it)."""

    WAITING = 0
    RUNNING = 1
    FINISHED = 2
    REJECTED = 3
    FAILED = 4


UNSET_S = -1.0
"""A time that has not happened yet (first scheduled, first token, last emit, finish)."""
NO_REPLICA = -1
"""`replica_id` before the request is routed."""


class RequestState:
    """Mutable scheduling state of one request (times in seconds of simulated time)."""

    __slots__ = (
        "arrival_s",
        "block_keys",
        "block_table",
        "finish_s",
        "first_scheduled_s",
        "first_token_s",
        "index",
        "last_emit_s",
        "num_blocks",
        "num_cached_blocks",
        "num_cached_tokens",
        "num_computed_tokens",
        "num_output_done",
        "num_output_tokens",
        "num_preemptions",
        "num_prompt_tokens",
        "priority",
        "reject_reason",
        "replica_id",
        "request_id",
        "status",
    )

    def __init__(
        self,
        *,
        index: int,
        request_id: int,
        arrival_s: float,
        num_prompt_tokens: int,
        num_output_tokens: int,
        priority: int = 0,
        block_keys: Sequence[int] | None = None,  # a list, or the keyer's BlockKeys
    ) -> None:
        self.index = index  # position in the trace; orders ties deterministically
        self.request_id = request_id
        self.arrival_s = arrival_s
        self.num_prompt_tokens = num_prompt_tokens
        self.num_output_tokens = num_output_tokens
        self.priority = priority
        # Prefix-cache keys of consecutive engine blocks (None: no prefix identity).
        self.block_keys = block_keys
        self.status = Status.WAITING
        self.replica_id = NO_REPLICA
        self.num_computed_tokens = 0
        self.num_output_done = 0
        self.num_cached_tokens = 0  # prefix-cache hit at first admission
        self.num_preemptions = 0
        self.first_scheduled_s = UNSET_S
        self.first_token_s = UNSET_S
        self.last_emit_s = UNSET_S
        self.finish_s = UNSET_S
        self.reject_reason = ""
        # KV bookkeeping owned by the KV manager: the number of blocks held (always),
        # their ids (prefix caching only: the first num_blocks entries of block_table, an
        # array with room to grow) and how many leading ones are registered.
        self.num_blocks = 0
        self.block_table: np.ndarray | list[int] = NO_BLOCKS
        self.num_cached_blocks = 0

    def retry_from_scratch(self) -> None:
        """Its replica was lost: it goes back to the gateway to start again elsewhere (its
        arrival, first scheduling and preemption count are kept; its KV is gone)."""
        self.status = Status.WAITING
        self.replica_id = NO_REPLICA
        self.num_computed_tokens = 0
        self.num_output_done = 0
        self.first_token_s = UNSET_S
        self.last_emit_s = UNSET_S

    @property
    def block_ids(self) -> list[int]:
        """Ids of the KV blocks held, in token order (prefix caching; [] otherwise)."""
        held = self.block_table[: self.num_blocks]
        return held if isinstance(held, list) else held.tolist()

    @property
    def num_tokens(self) -> int:
        """Tokens whose KV the next sample needs: prompt plus tokens generated so far."""
        return self.num_prompt_tokens + self.num_output_done

    @property
    def num_remaining_output(self) -> int:
        return self.num_output_tokens - self.num_output_done

    def __repr__(self) -> str:
        return (
            f"RequestState(id={self.request_id}, {self.status.name}, "
            f"computed={self.num_computed_tokens}/{self.num_tokens}, "
            f"out={self.num_output_done}/{self.num_output_tokens})"
        )
