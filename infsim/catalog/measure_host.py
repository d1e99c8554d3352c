"""Measure this host's single-thread fp32 GEMM FLOP/s and memory-copy bandwidth.

These two numbers fill `peak_flops_per_s.float32` and `mem_bandwidth_bytes_per_s` of
`infsim/catalog/hardware/cpu-host.yaml`, the device behind the live vLLM CPU engine (whose
engine core runs torch with one thread, see shared/live/README.md). They are roofline
bounds only; per-kernel step costs come from calibration against profiler traces.

Run it on a quiet machine, single-threaded:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        python -m infsim.catalog.measure_host

Method (numpy has no bfloat16, so fp32 is measured):

- GEMM: `a @ b` for square fp32 matrices of n = 512, 1024, 2048; FLOPs = 2 n^3. Each size is
  run `--warmup` times untimed, then `--repeats` times; the median time per size gives a
  rate, and the reported peak is the best of the per-size medians.
- Memory: `numpy.copyto(dst, src)` on two 256 MiB fp32 arrays (far larger than the caches);
  bytes moved = 2 x array bytes (one read and one write, STREAM "copy" convention); median.

Prints a YAML fragment with the numbers, the command and the UTC date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import statistics
import sys
import time

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
GEMM_SIZES = (512, 1024, 2048)
COPY_ARRAY_BYTES = 256 * 2**20


def _median_time_s(fn, *, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times_s = []
    for _ in range(repeats):
        start_s = time.perf_counter()
        fn()
        times_s.append(time.perf_counter() - start_s)
    return statistics.median(times_s)


def measure_gemm_flops_per_s(*, warmup: int, repeats: int) -> dict[int, float]:
    """Median fp32 GEMM rate for each size in `GEMM_SIZES`."""
    import numpy as np

    rng = np.random.default_rng(0)
    rates = {}
    for n in GEMM_SIZES:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        out = np.empty((n, n), dtype=np.float32)
        gemm = functools.partial(np.matmul, a, b, out=out)
        median_s = _median_time_s(gemm, warmup=warmup, repeats=repeats)
        rates[n] = 2.0 * n**3 / median_s
    return rates


def measure_copy_bytes_per_s(*, warmup: int, repeats: int) -> float:
    """Median memory-copy bandwidth (read + write bytes per second)."""
    import numpy as np

    num_elements = COPY_ARRAY_BYTES // 4
    src = np.ones(num_elements, dtype=np.float32)
    dst = np.zeros(num_elements, dtype=np.float32)
    median_s = _median_time_s(lambda: np.copyto(dst, src), warmup=warmup, repeats=repeats)
    return 2.0 * COPY_ARRAY_BYTES / median_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    if "numpy" not in sys.modules:
        # Only effective before numpy (and its BLAS) is first imported.
        for var in _THREAD_VARS:
            os.environ.setdefault(var, "1")
    threads = {var: os.environ.get(var) for var in _THREAD_VARS}
    gemm = measure_gemm_flops_per_s(warmup=args.warmup, repeats=args.repeats)
    copy_bytes_per_s = measure_copy_bytes_per_s(warmup=args.warmup, repeats=args.repeats)
    lines = [
        f"measured_at: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}",
        "command: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 "
        f"python -m infsim.catalog.measure_host --warmup {args.warmup} --repeats {args.repeats}",
        f"threads: {threads}",
        "gemm_fp32_flops_per_s_median:",
        *(f"  n{n}: {rate:.4g}" for n, rate in gemm.items()),
        f"peak_flops_per_s_float32: {max(gemm.values()):.4g}",
        f"mem_copy_bandwidth_bytes_per_s: {copy_bytes_per_s:.4g}",
    ]
    print("\n".join(lines))  # noqa: T201 - this is a command-line report
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
