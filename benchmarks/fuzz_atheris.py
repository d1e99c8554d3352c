"""Coverage-guided fuzzing (atheris / libFuzzer) of infsim's parsers.

    pip install 'infsim[fuzz]'
    python benchmarks/fuzz_atheris.py TARGET [libFuzzer options, e.g. -atheris_runs=20000
                                              -max_total_time=600 corpus_dir/]

Targets: scenario (YAML text → validated scenario, and `--set` items), trace (bytes as a
CSV / JSONL / JSON / Parquet trace in every format), bench (bytes as a benchmark result in
every `infsim validate` format), expr (sweep constraint expressions), vllm_args (`vllm
serve` argument lines). Each input must give a result or one `InputError`; any other
exception, a warning (numpy's included) or a run past the per-input alarm is a crash that
libFuzzer reports with the input that caused it (saved as crash-<sha1>). Only infsim's own
modules are instrumented. The Hypothesis fuzz modules under tests/ run in CI; this is the
long, coverage-guided campaign (docs/robustness.md).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import warnings
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["infsim"]):
    from infsim.errors import InputError
    from infsim.scenario.load import apply_override, validate_scenario
    from infsim.scenario.vllm_args import parse_vllm_args
    from infsim.sweep.expr import Expression
    from infsim.textio import load_yaml
    from infsim.validation.formats import format_names as bench_format_names
    from infsim.validation.formats import load_measured
    from infsim.workload.loaders import format_names as trace_format_names
    from infsim.workload.loaders import load_trace

ALARM_S = 20
TMP = Path(tempfile.mkdtemp(prefix="infsim-atheris-"))
BASE = {"model": "llama-3.1-8b", "hardware": {"gpu": "h100-sxm"},
        "workload": {"synthetic": {"num_requests": 4, "arrival": {"kind": "poisson",
                     "rate_per_s": 1.0}, "prompt_tokens": {"kind": "fixed", "value": 8},
                     "output_tokens": {"kind": "fixed", "value": 2}}}}  # fmt: skip
SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")


def _scenario(fdp: atheris.FuzzedDataProvider) -> None:
    if fdp.ConsumeBool():
        raw = load_yaml(fdp.ConsumeUnicodeNoSurrogates(4096), "fuzz.yaml")
        if isinstance(raw, dict):
            validate_scenario(raw, "fuzz.yaml")
        return
    raw = {**BASE}
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        apply_override(raw, fdp.ConsumeUnicodeNoSurrogates(200))
    validate_scenario(raw, "fuzz.yaml")


def _file(fdp: atheris.FuzzedDataProvider) -> Path:
    path = TMP / f"input{SUFFIXES[fdp.ConsumeIntInRange(0, len(SUFFIXES) - 1)]}"
    path.write_bytes(fdp.ConsumeBytes(1 << 16))
    return path


def _trace(fdp: atheris.FuzzedDataProvider) -> None:
    names = ["auto", *trace_format_names()]
    fmt = names[fdp.ConsumeIntInRange(0, len(names) - 1)]
    columns = None
    if fmt == "csv":
        columns = {"arrival_s": "a", "num_prompt_tokens": "b", "num_output_tokens": "c"}
    load_trace(_file(fdp), fmt, columns=columns, drop_zero_output=fdp.ConsumeBool(),
               drop_failed=fdp.ConsumeBool())  # fmt: skip


def _bench(fdp: atheris.FuzzedDataProvider) -> None:
    names = ["auto", *bench_format_names()]
    fmt = names[fdp.ConsumeIntInRange(0, len(names) - 1)]
    run_index = fdp.ConsumeIntInRange(0, 3) if fdp.ConsumeBool() else None
    load_measured(_file(fdp), fmt, run_index)


def _expr(fdp: atheris.FuzzedDataProvider) -> None:
    names = {"deployment.replicas": 2, "engine.max_num_seqs": 64, "hardware.gpu": "h100-sxm"}
    Expression(fdp.ConsumeUnicodeNoSurrogates(300), "constraints[0]").evaluate(names)


def _vllm_args(fdp: atheris.FuzzedDataProvider) -> None:
    parse_vllm_args(fdp.ConsumeUnicodeNoSurrogates(500))


TARGETS = {"scenario": _scenario, "trace": _trace, "bench": _bench, "expr": _expr,
           "vllm_args": _vllm_args}  # fmt: skip


class HangError(Exception):
    pass


def _alarm(_signum, _frame) -> None:
    raise HangError(f"one input ran past {ALARM_S} s")


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[sys.argv.pop(1)]
    signal.signal(signal.SIGALRM, _alarm)

    def one(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        signal.alarm(ALARM_S)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a leaked numpy warning is a finding
                target(fdp)
        except InputError:
            pass
        finally:
            signal.alarm(0)

    os.environ.setdefault("INFSIM_MAX_REQUESTS", "100000")  # keep each input small
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
