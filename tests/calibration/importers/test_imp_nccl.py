"""nccl-tests importer: APEX+ CSVs (staged) and raw nccl-tests stdout.

The stdout fixture below is written from the output format documented by nccl-tests
(README.md and doc/PERFORMANCE.md of github.com/NVIDIA/nccl-tests: header lines, the
"size count type redop root time algbw busbw #wrong" table with out-of-place and in-place
halves, times in µs); the numbers are made up.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from infsim.calibration.importers import ImportOptions, import_paths
from infsim.errors import InputError

APEX = Path(__file__).resolve().parents[3].parent / "shared/data/profiles/microsoft_apex_plus_comm"
needs_data = pytest.mark.skipif(not APEX.is_dir(), reason=f"shared profile data absent ({APEX})")

STDOUT = """\
# nThread 1 nGpus 1 minBytes 1024 maxBytes 4096 step: 2(factor) warmup iters: 5 iters: 20 \
agg iters: 1 validation: 1 graph: 0
#
# Using devices
#  Rank  0 Group  0 Pid  41001 on     node01 device  0 [0x18] NVIDIA H100 80GB HBM3
#  Rank  1 Group  0 Pid  41002 on     node01 device  1 [0x2a] NVIDIA H100 80GB HBM3
#  Rank  2 Group  0 Pid  41003 on     node01 device  2 [0x3a] NVIDIA H100 80GB HBM3
#  Rank  3 Group  0 Pid  41004 on     node01 device  3 [0x5d] NVIDIA H100 80GB HBM3
#
#                                                              out-of-place                       in-place
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
        1024           512      half     sum      -1    10.50    0.10    0.15      0    10.25    0.10    0.15      0
        2048          1024      half     sum      -1    11.00    0.19    0.28      0    10.75    0.19    0.29      0
        4096          2048      half     sum      -1    12.00    0.34    0.51      0    11.80    0.35    0.52      0
# Out of bounds values : 0 OK
# Avg bus bandwidth    : 0.3
#
"""  # noqa: E501  (verbatim nccl-tests layout)


def run(*paths: Path, **options: object) -> pd.DataFrame:
    return import_paths("nccl-tests", list(paths), ImportOptions(**options)).frame


@needs_data
def test_apex_files() -> None:
    result = import_paths("nccl-tests", [APEX / "H100-SXM-80GB"], ImportOptions())
    assert result.meta["device"] == "H100-SXM"
    frame = result.frame
    # 4 x 114 + 38 rows; the 13 rows of size 0 KiB have no byte count and are dropped
    assert len(frame) == 4 * 114 + 38 - 13
    assert set(frame.op) == {"all_reduce", "all_gather", "reduce_scatter", "all_to_all",
                             "send_recv"}  # fmt: skip
    assert set(frame.dtype) == {"float16", "float32"}
    raw = pd.read_csv(APEX / "H100-SXM-80GB/all_reduce.csv")
    raw = raw[raw["size(kb)"] > 0]
    reduce = frame[frame.op == "all_reduce"]
    assert reduce.message_bytes.tolist() == (raw["size(kb)"] * 1024).tolist()
    assert reduce.time_s.tolist() == pytest.approx((raw["time(us)"] * 1e-6).tolist())
    assert set(reduce.num_devices) == {2, 4, 8}
    assert len(run(APEX / "H200-SXM-141GB")) == 4 * 57 + 19 - 13


@needs_data
def test_apex_bad_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="mixed devices"):
        run(APEX / "H100-SXM-80GB/all_reduce.csv", APEX / "H200-SXM-141GB/all_reduce.csv")
    raw = pd.read_csv(APEX / "H100-SXM-80GB/all_reduce.csv")
    bad = tmp_path / "all_reduce.csv"
    raw.rename(columns={"time(us)": "time(fortnights)"}).to_csv(bad, index=False)
    with pytest.raises(InputError, match=rf"{bad}: column 'time\(fortnights\)': unknown unit"):
        run(bad)
    raw.drop(columns="dtype").to_csv(bad, index=False)
    with pytest.raises(InputError, match=rf"{bad}: missing column\(s\) dtype"):
        run(bad)
    raw.iloc[:0].to_csv(bad, index=False)
    with pytest.raises(InputError, match=rf"{bad}: empty table"):
        run(bad)
    raw.assign(dtype="float7").to_csv(bad, index=False)
    with pytest.raises(InputError, match=rf"{bad}: unknown dtype 'float7'"):
        run(APEX / "H100-SXM-80GB/all_gather.csv", bad)  # nothing from the first file either


def test_raw_stdout(tmp_path: Path) -> None:
    path = tmp_path / "all_reduce_perf.txt"
    path.write_text(STDOUT)
    result = import_paths("nccl-tests", [path], ImportOptions())
    assert result.meta["device"] == "H100-SXM"  # from the rank lines
    frame = result.frame
    assert len(frame) == 6  # 3 sizes x (out-of-place, in-place)
    assert set(frame.op) == {"all_reduce"}
    assert set(frame.num_devices) == {4}
    assert set(frame.dtype) == {"float16"}
    out = frame[frame.variant == "nccl-tests/out_of_place"]
    assert out.message_bytes.tolist() == [1024, 2048, 4096]
    assert out.time_s.tolist() == pytest.approx([10.5e-6, 11e-6, 12e-6])
    no_table = tmp_path / "log.txt"
    no_table.write_text("# nThread 1 nGpus 8\n")
    with pytest.raises(InputError, match=rf"{no_table}: not nccl-tests output"):
        run(no_table)
