"""What the harness measures: a model's own operations over a grid of shapes (no torch here).

`cases(model, plan, tp)` turns a `ModelSpec` into the list of measurements, each one
calibration row once timed. Per decoder layer of a dense Llama-style model, at tensor
parallel degree `tp` (shapes are per rank, h = hidden, q = heads×head_dim, kv = kv_heads×
head_dim, i = intermediate):

    gemm        qkv_proj   m=T  n=(q+2kv)/tp  k=h        over token counts T
                o_proj     m=T  n=h           k=q/tp
                gate_up    m=T  n=2i/tp       k=h
                down_proj  m=T  n=h           k=i/tp
    lm_head     lm_head    m=B  n=vocab/tp    k=h        over batch sizes B (last tokens)
    attention_prefill      B sequences of query_len over kv_len = context + query_len
    attention_decode       B sequences, one query token over kv_len
    norm        rms_norm over [T, h];  activation  silu_and_mul over [T, 2i/tp]
    sampler     softmax + argmax over [B, vocab] in float32
    all_reduce  (only with more than one device) T×h activations of the model dtype

MoE and MLA layers are not measured by this harness (their GEMMs differ); it says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from infsim.catalog import precision as prec
from infsim.catalog.model_spec import ModelSpec
from infsim.errors import InputError


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The shape grid and the timing protocol of one collection run."""

    token_counts: tuple[int, ...] = (
        1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
        1536, 2048, 4096,
    )  # fmt: skip
    """Tokens per step (GEMM m, norm and activation rows)."""
    prefill_query_lens: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024, 2048)
    prefill_context_lens: tuple[int, ...] = (0, 256, 1024, 4096)
    """Cached tokens before the query: kv_len = context + query_len."""
    prefill_batch_sizes: tuple[int, ...] = (1, 4)
    max_prefill_tokens: int = 4096
    """Skip prefill cases with batch × query_len above this."""
    decode_kv_lens: tuple[int, ...] = (16, 64, 256, 512, 1024, 2048, 4096)
    decode_batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    """Sequences per step for the LM head and the sampler."""
    warmup: int = 3
    repeats: int = 15
    min_repeats: int = 3
    max_case_s: float = 0.5
    """Stop repeating a case after min_repeats once this much time has gone into it."""

    @classmethod
    def quick(cls) -> Plan:
        """A small grid for tests and smoke runs (a few seconds)."""
        return cls(
            token_counts=(1, 16, 128),
            prefill_query_lens=(16, 64),
            prefill_context_lens=(0, 64),
            prefill_batch_sizes=(1,),
            decode_kv_lens=(64, 256),
            decode_batch_sizes=(1, 4),
            batch_sizes=(1, 8),
            warmup=1,
            repeats=3,
            min_repeats=2,
            max_case_s=0.2,
        )


@dataclass(frozen=True)
class Case:
    """One measurement: `kind` says which torch function to time (see `ops.py`)."""

    op: str
    variant: str
    shape: tuple[tuple[str, int], ...]

    def dims(self) -> dict[str, int]:
        return dict(self.shape)


def cases(model: ModelSpec, plan: Plan, *, tp: int = 1, num_devices: int = 1) -> list[Case]:
    """Every measurement of `plan` for `model` at tensor-parallel degree `tp`."""
    _check(model, tp)
    out = []
    for variant, n, k in projections(model, tp):
        out += [_case("gemm", variant, m=t, n=n, k=k) for t in plan.token_counts]
    vocab = model.vocab_size // tp
    out += [
        _case("lm_head", "lm_head", batch_size=b, m=b, n=vocab, k=model.hidden_size)
        for b in plan.batch_sizes
    ]
    out += _attention(model, plan, tp)
    inter = model.intermediate_size // tp
    for t in plan.token_counts:
        out.append(_case("norm", "rms_norm", num_tokens=t, hidden_size=model.hidden_size))
        out.append(_case("activation", "silu_and_mul", num_tokens=t, inter_size=inter))
    out += [
        _case("sampler", "softmax+argmax", batch_size=b, n=model.vocab_size)
        for b in plan.batch_sizes
    ]
    if num_devices > 1:
        size = int(prec.bytes_per_element(model.dtype) * model.hidden_size)
        out += [
            _case(
                "all_reduce",
                "torch.distributed",
                message_bytes=t * size,
                num_devices=num_devices,
                num_tokens=t,
            )
            for t in plan.token_counts
        ]
    return out


def projections(model: ModelSpec, tp: int) -> list[tuple[str, int, int]]:
    """(name, n, k) of the per-layer GEMMs, sharded over `tp` ranks (Megatron layout)."""
    h = model.hidden_size
    return [
        ("qkv_proj", (model.q_size + 2 * model.kv_size) // tp, h),
        ("o_proj", h, model.q_size // tp),
        ("gate_up_proj", 2 * model.intermediate_size // tp, h),
        ("down_proj", h, model.intermediate_size // tp),
    ]


def _attention(model: ModelSpec, plan: Plan, tp: int) -> list[Case]:
    heads = {
        "num_heads": model.num_attention_heads // tp,
        "num_kv_heads": max(1, model.num_kv_heads // tp),
        "head_dim": model.head_dim,
    }
    out = []
    for b in plan.prefill_batch_sizes:
        for q in plan.prefill_query_lens:
            if b * q > plan.max_prefill_tokens:
                continue
            for c in plan.prefill_context_lens:
                out.append(
                    _case(
                        "attention_prefill",
                        "sdpa",
                        batch_size=b,
                        query_len=q,
                        kv_len=c + q,
                        **heads,
                    )
                )
    for b in plan.decode_batch_sizes:
        for kv in plan.decode_kv_lens:
            out.append(_case("attention_decode", "sdpa", batch_size=b, kv_len=kv, **heads))
    return out


def _case(op: str, variant: str, **shape: int) -> Case:
    return Case(op, variant, tuple(shape.items()))


def _check(model: ModelSpec, tp: int) -> None:
    if model.is_moe or model.is_mla:
        raise InputError(
            f"model {model.name!r}: the harness measures dense attention/MLP layers only; "
            "MoE and MLA models are not supported yet"
        )
    if tp < 1 or model.num_attention_heads % tp or model.intermediate_size % tp:
        raise InputError(
            f"model {model.name!r}: tp={tp} must divide the heads "
            f"({model.num_attention_heads}) and the intermediate size "
            f"({model.intermediate_size})"
        )
