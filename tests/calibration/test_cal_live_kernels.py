"""calibration/live/kernels.py `table`: vLLM kernel rows replace the base table's ops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infsim.cost.table import read

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "calibration" / "live" / "kernels.py"


def test_measured_ops_replace_the_base_ones_and_fitted_rows_are_dropped(tmp_path: Path):
    rows = tmp_path / "kernels.csv"
    rows.write_text(
        "# vllm 0.32.0, torch 2.13.0+cpu, 1 thread; model tiny-llama; test\n"
        "op,batch_size,dtype,head_dim,kv_len,m,n,k,num_heads,num_kv_heads,query_len,tp,"
        "variant,time_s\n"
        "gemm,,bfloat16,,,1,768,512,,,,1,vllm-cpu,0.000064\n"
        "gemm,,bfloat16,,,8,768,512,,,,1,vllm-cpu,0.000069\n"
        "attention_prefill,1,bfloat16,64,512,,,,8,2,512,1,vllm-cpu,0.004059\n"
    )
    out = tmp_path / "cpu-host-vllm"
    argv = [sys.executable, str(SCRIPT), "table", "--rows", str(rows), "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    table, meta = read(out)
    frame = table.to_pandas()
    base = read(REPO / "calibration" / "cpu-host-torch")[0].to_pandas()
    # The measured ops are exactly the CSV's rows; the base's rows of those ops are gone.
    assert sorted(frame.loc[frame["op"] == "gemm", "time_s"]) == [0.000064, 0.000069]
    assert frame.loc[frame["op"] == "attention_prefill", "time_s"].tolist() == [0.004059]
    # Ops the CSV does not measure stay; the fitted remainders of the old ops do not.
    assert frame["op"].eq("attention_decode").sum() == base["op"].eq("attention_decode").sum()
    assert not frame["op"].isin(["step_overhead", "frontend"]).any()
    assert meta.engine == "vllm-cpu"
    assert meta.engine_version == "vllm 0.32.0"
    assert meta.provenance[-1].rows == 3
