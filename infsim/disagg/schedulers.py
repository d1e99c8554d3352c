"""The vLLM V1 scheduler on each side of a disaggregated deployment. Pure.

Prefill side (`PrefillScheduler`): runs requests with max_tokens = 1 (what vLLM's P/D
proxy sends the prefill instance). A request finishes at the step that samples its
first token, but keeps its KV blocks until its transfer completes (`release`), as the
NixlConnector's prefill instance holds the blocks until the decode side has read them.

Decode side (`DecodeScheduler`): a request prefilled elsewhere is `offer`ed; it waits in
`remote` (FCFS) until this replica has the blocks for its prompt and a sequence slot
(running + receiving < max_num_seqs); then the blocks are allocated (`reserve`) and the
wiring starts the transfer (`on_reserved`). The destination memory must exist before the
bytes arrive: vLLM's NixlConnector allocates the decode blocks, then pulls (state
WAITING_FOR_REMOTE_KVS); SGLang's decode pre-allocates (DecodePreallocQueue), then the
prefill pushes. When the bytes have arrived (`on_received`) the request joins the
waiting queue with num_computed_tokens = prompt and one output token done; admission
then skips the prefix lookup (the KV is already here) and it decodes from there.

Reservation points are this replica's step boundaries (end of every step or run) and an
offer to an idle replica, so a fast-forwarded decode run stays exact: a blocked head can
only be unblocked by a finish, which ends the run.

    block conservation, per replica:
        free + Σ running + Σ receiving (+ Σ held, prefill) == total
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from infsim.core.batch import Batch
from infsim.core.request import RequestState, Status
from infsim.kvcache.base import KVCacheManager, cdiv
from infsim.scheduling.continuous import ContinuousBatchingScheduler, SchedulerConfig

if TYPE_CHECKING:
    from infsim.speculative.speculator import Speculator


def _no_transfer(req: RequestState, now: float) -> None:
    raise RuntimeError(f"decode scheduler without transfer wiring reserved {req!r}")


class PrefillScheduler(ContinuousBatchingScheduler):
    """Finishing a (max_tokens=1) request keeps its blocks: see the module docstring."""

    num_held: int = 0  # requests finished here whose KV has not been sent yet

    def release_finished(self, finished: list[RequestState]) -> None:
        self.num_held += len(finished)  # their blocks stay until the transfer (release)

    def has_work(self) -> bool:
        """Also False while the waiting head cannot get blocks because finished requests
        hold them for their transfers (the replica then sleeps until a `release`)."""
        if self.running or not self.waiting:
            return bool(self.running)
        return not self.num_held or _admissible(self.waiting.peek(), self.config, self.kv)

    def release(self, req: RequestState) -> None:
        """The transfer of `req`'s KV completed: free its blocks."""
        self.kv.free(req)
        self.num_held -= 1


class DecodeScheduler(ContinuousBatchingScheduler):
    """Admits requests whose prompt KV is computed elsewhere (module docstring)."""

    def __init__(
        self, config: SchedulerConfig, kv: KVCacheManager, speculator: Speculator | None = None
    ) -> None:
        super().__init__(config, kv, speculator)
        self.remote: deque[RequestState] = deque()  # prefilled elsewhere, waiting for room
        self.num_receiving = 0  # blocks held, KV in flight
        # Called with (request, now) when its blocks are allocated: start the transfer.
        self.on_reserved: Callable[[RequestState, float], None] = _no_transfer

    def num_remote_blocks(self) -> int:
        """Blocks the offered requests will need (a load signal for decode placement)."""
        bs = self.kv.block_size
        return sum(-(-r.num_prompt_tokens // bs) for r in self.remote)

    def offer(self, req: RequestState, now: float) -> None:
        req.status = Status.WAITING
        self.remote.append(req)
        if not self.running and not self.waiting:  # idle: no step in flight
            self.reserve(now)

    def reserve(self, now: float) -> None:
        """Allocate the prompt blocks of offered requests, FCFS, while they fit."""
        remote, kv, cap = self.remote, self.kv, self.config.max_num_seqs
        while remote and len(self.running) + self.num_receiving < cap:
            req = remote[0]
            req.num_computed_tokens = 0
            # The prompt's blocks plus the first decode step's slot: a received request
            # is always admissible, so all-reserved memory can never deadlock.
            if not kv.allocate(req, req.num_prompt_tokens + 1):
                return
            remote.popleft()
            self.num_receiving += 1
            self.on_reserved(req, now)

    def on_received(self, req: RequestState) -> None:
        """The KV arrived: `req` (computed = prompt, one token out) goes to the front of
        the queue: it holds its memory already (admitting it needs no block), and a
        prompt ahead of it could otherwise wait for exactly the blocks it holds."""
        self.num_receiving -= 1
        req.status = Status.WAITING
        self.waiting.prepend(req)

    def has_work(self) -> bool:
        """Also False while the waiting head is a local prompt that cannot get blocks
        because receiving requests hold them (the replica sleeps until one arrives)."""
        if self.running or not self.waiting:
            return bool(self.running)
        req = self.waiting.peek()
        if req.num_computed_tokens or not self.num_receiving:
            return True
        return _admissible(req, self.config, self.kv)

    def after_schedule(self, batch: Batch, now: float) -> None:
        if self.remote and not batch.num_preempted:
            self.reserve(now)

    def after_apply(self, end_s: float) -> None:
        if self.remote:
            self.reserve(end_s)


def _admissible(req: RequestState, cfg: SchedulerConfig, kv: KVCacheManager) -> bool:
    """Whether the free blocks cover `req`'s first chunk (prefix hits ignored)."""
    n = min(req.num_tokens, cfg.max_num_batched_tokens)
    if 0 < cfg.long_prefill_token_threshold < n:
        n = cfg.long_prefill_token_threshold
    return kv.num_free_blocks >= cdiv(n, kv.block_size)
