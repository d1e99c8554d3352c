"""A `vllm serve` argument line as scenario overrides (`infsim run --from-vllm-args "…"`).

Each engine argument that changes what infsim simulates becomes a `dotted.path=value`
override, applied before `--set` (which therefore wins). Arguments that do not change the
prediction (host, port, logging, names) are accepted and listed as such; arguments that
change it in ways infsim does not model are listed as not modelled; anything else is an
error naming the argument and the supported ones. Nothing is silently dropped.

Names follow vLLM's `EngineArgs` (`vllm/engine/arg_utils.py`) and `vllm serve`'s front-end
arguments; both `--flag value` and `--flag=value`, and vLLM's `--no-<flag>` for booleans.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field

from infsim.errors import InputError, did_you_mean

VALUED: dict[str, tuple[str, str]] = {
    # vLLM argument → (scenario path, kind: int | float | size | precision | choice)
    "tensor-parallel-size": ("deployment.tensor_parallel", "int"),
    "pipeline-parallel-size": ("deployment.pipeline_parallel", "int"),
    "data-parallel-size": ("deployment.replicas", "int"),
    "max-num-seqs": ("engine.max_num_seqs", "int"),
    "max-num-batched-tokens": ("engine.max_num_batched_tokens", "size"),
    "max-model-len": ("engine.max_model_len", "size"),
    "block-size": ("engine.block_size", "int"),
    "gpu-memory-utilization": ("engine.gpu_memory_utilization", "float"),
    "num-gpu-blocks-override": ("engine.num_gpu_blocks_override", "int"),
    "long-prefill-token-threshold": ("engine.long_prefill_token_threshold", "int"),
    "scheduling-policy": ("engine.scheduling_policy", "choice"),
    "kv-cache-dtype": ("deployment.kv_cache_precision", "precision"),
    "quantization": ("deployment.weight_precision", "precision"),
    "dtype": ("deployment.weight_precision", "precision"),
    "api-server-count": ("frontend.api_server_count", "int"),
}
SIZE_SUFFIX = {"k": 10**3, "K": 2**10, "m": 10**6, "M": 2**20, "g": 10**9, "G": 2**30}
"""vLLM's `human_readable_int`: lower case decimal, upper case binary."""
SHORT = {"tp": "tensor-parallel-size", "pp": "pipeline-parallel-size", "dp": "data-parallel-size",
         "q": "quantization"}  # fmt: skip
BOOLEAN: dict[str, str] = {
    "enable-prefix-caching": "engine.enable_prefix_caching",
    "enable-chunked-prefill": "engine.enable_chunked_prefill",
    "async-scheduling": "engine.async_scheduling",
}
DISABLING: dict[str, str] = {
    "disable-async-output-proc": "engine.async_output_processing",  # vLLM V0 (0.6-0.7)
}
"""flags that turn a setting off (`--disable-…`, no value)"""
NO_EFFECT_VALUED = frozenset({
    "host", "port", "served-model-name", "api-key", "uvicorn-log-level", "download-dir",
    "load-format", "tokenizer", "tokenizer-mode", "chat-template", "max-log-len",
    "root-path", "ssl-keyfile", "ssl-certfile", "allowed-origins", "seed", "revision",
    "generation-config", "config-format", "hf-config-path", "response-role",
    "tool-call-parser", "reasoning-parser",
})  # fmt: skip
NO_EFFECT_FLAGS = frozenset({
    "trust-remote-code", "disable-log-requests", "disable-log-stats", "enable-log-requests",
    "disable-fastapi-docs", "enable-auto-tool-choice", "disable-uvicorn-access-log",
})  # fmt: skip
NOT_MODELLED_VALUED = frozenset({"compilation-config", "cuda-graph-sizes", "swap-space",
                                 "cpu-offload-gb", "max-seq-len-to-capture"})  # fmt: skip
NOT_MODELLED_FLAGS = frozenset({"enforce-eager", "enable-expert-parallel",
                                "disable-custom-all-reduce"})  # fmt: skip
SPECIAL = {
    "model": "the scenario's `model` (a catalog name) stands; the served model is not taken "
    "from the arguments",
    "speculative-config": "set engine.speculative in the scenario: infsim also needs the "
    "acceptance rate, which vLLM's config does not give",
}


@dataclass
class VllmArgs:
    """What an argument line turned into."""

    given: dict[str, str] = field(default_factory=dict)  # argument → `--set` item
    no_effect: list[str] = field(default_factory=list)  # accepted; no effect on a prediction
    not_modelled: list[str] = field(default_factory=list)  # accepted; infsim ignores them
    model: str | None = None  # the positional or --model argument, for the caller to say

    @property
    def overrides(self) -> list[str]:
        """The `--set` items, in argument order (a later repeat of an argument wins)."""
        return list(self.given.values())

    def record(self, line: str) -> dict[str, object]:
        """What summary.json keeps of it (`from_vllm_args`)."""
        return {
            "args": line,
            "overrides": self.overrides,
            "model": self.model,
            "not_modelled": list(self.not_modelled),
            "no_effect": list(self.no_effect),
        }

    def notes(self) -> list[str]:
        out = []
        if self.model is not None:
            out.append(f"model {self.model!r}: {SPECIAL['model']}")
        if self.not_modelled:
            out.append("not modelled (ignored): " + ", ".join(self.not_modelled))
        if self.no_effect:
            out.append("no effect on the prediction: " + ", ".join(self.no_effect))
        return out


def _fail(arg: str, what: str) -> InputError:
    return InputError(f"--from-vllm-args: {arg}: {what}")


def _value(name: str, kind: str, text: str) -> str:
    """The override's value text for `name`'s `kind` (validated by the scenario later)."""
    arg = f"--{name} {text}"
    if kind in ("int", "size"):
        multiplier = 1
        if kind == "size" and text[-1:] in SIZE_SUFFIX:  # vLLM's human-readable 32k, 1M
            multiplier, text = SIZE_SUFFIX[text[-1]], text[:-1]
        try:
            return str(int(text) * multiplier)
        except ValueError:
            raise _fail(arg, "expected an integer") from None
    if kind == "float":
        try:
            float(text)
        except ValueError:
            raise _fail(arg, "expected a number") from None
        return text
    if kind == "precision":
        return "auto" if text.lower() in ("auto", "none") else text
    return text


def parse_vllm_args(line: str) -> VllmArgs:
    """Turn a `vllm serve` argument line into overrides and notes."""
    try:
        tokens = shlex.split(line)
    except ValueError as err:
        raise InputError(f"--from-vllm-args: cannot split the line: {err}") from None
    if tokens[:2] == ["vllm", "serve"]:
        tokens = tokens[2:]
    out = VllmArgs()
    for name, value, token in _arguments(tokens):
        if name is None or name == "model":  # the positional model or --model
            if out.model is not None and name is None:
                raise _fail(token, f"unexpected positional argument (the model is {out.model!r})")
            out.model = value
        else:
            _apply(out, name, value, token)
    if "quantization" in out.given and "dtype" in out.given:  # the weights: quantization's
        dropped = out.given.pop("dtype")
        out.no_effect.append(
            f"--dtype {dropped.partition('=')[2]} (--quantization sets the weights)"
        )
    return out


def _takes_value(name: str) -> bool:
    return (
        name in VALUED
        or name in NO_EFFECT_VALUED
        or name in NOT_MODELLED_VALUED
        or (name in SPECIAL)
    )


def _arguments(tokens: list[str]) -> Iterator[tuple[str | None, str | None, str]]:
    """(argument name or None for a positional, its value or None for a flag, the token)."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("-"):
            yield None, token, token
            continue
        raw, eq, inline = token.lstrip("-").partition("=")
        name = SHORT.get(raw, raw).replace("_", "-")
        if eq or not _takes_value(name):
            yield name, inline if eq else None, token
            continue
        if i >= len(tokens) or tokens[i].startswith("--"):
            raise _fail(f"--{name}", "expects a value")
        yield name, tokens[i], token
        i += 1


def _apply(out: VllmArgs, name: str, value: str | None, token: str) -> None:
    if name in SPECIAL:
        raise _fail(f"--{name}", SPECIAL[name])
    if name in VALUED:
        path, kind = VALUED[name]
        out.given[name] = f"{path}={_value(name, kind, value or '')}"
    elif name in BOOLEAN or (name.startswith("no-") and name[3:] in BOOLEAN):
        if value is not None:
            raise _fail(token, "a flag takes no value; use --no-<flag> to turn it off")
        on = not name.startswith("no-")
        out.given[name.removeprefix("no-")] = (
            f"{BOOLEAN[name.removeprefix('no-')]}={str(on).lower()}"
        )
    elif name in DISABLING:
        if value is not None:
            raise _fail(token, "a flag takes no value")
        out.given[name] = f"{DISABLING[name]}=false"
    elif name in NO_EFFECT_VALUED or name in NO_EFFECT_FLAGS:
        out.no_effect.append(f"--{name}" + (f" {value}" if value is not None else ""))
    elif name in NOT_MODELLED_VALUED or name in NOT_MODELLED_FLAGS:
        out.not_modelled.append(f"--{name}" + (f" {value}" if value is not None else ""))
    else:
        known = sorted([*VALUED, *BOOLEAN, *DISABLING, *NO_EFFECT_VALUED, *NO_EFFECT_FLAGS,
                        *NOT_MODELLED_VALUED, *NOT_MODELLED_FLAGS, *SPECIAL])  # fmt: skip
        raise _fail(
            f"--{name}",
            f"not a vLLM serve argument infsim knows{did_you_mean(name, known)}; "
            f"the ones that change a prediction: {', '.join('--' + k for k in VALUED)}, "
            f"{', '.join('--[no-]' + k for k in BOOLEAN)}",
        )
