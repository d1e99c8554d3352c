"""validation/live_store.py: the live runs in compact form give back the measured files."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
# validation/ is not a package: load the module by path.
_spec = importlib.util.spec_from_file_location("live_store", REPO / "validation" / "live_store.py")
live_store = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(live_store)


def test_the_calibration_sources_come_back_with_their_recorded_sha256(tmp_path: Path):
    # calibration/cpu-host-*/meta.yaml name validation/live/<run>/rep<N>/result.json files
    # (with sha256) as the sources of their step_overhead and frontend rows.
    checked = 0
    for table in ("cpu-host-torch", "cpu-host-vllm"):
        meta = yaml.safe_load((REPO / "calibration" / table / "meta.yaml").read_text())
        for source in meta["provenance"]:
            parts = source["path"].split("/")
            if parts[:2] != ["validation", "live"] or parts[-1] != "result.json":
                continue
            bench = live_store.materialise(parts[2], parts[3], tmp_path)
            assert hashlib.sha256(bench.read_bytes()).hexdigest() == source["sha256"]
            checked += 1
    assert checked == 48


def test_a_stored_repeat_comes_back_byte_for_byte(tmp_path: Path):
    measured = live_store.materialise("near", "rep12", tmp_path / "measured", with_logs=True)
    store = tmp_path / "store"
    live_store.add([("near", "rep3", measured.parent)], store)
    assert live_store.reps("near", store) == ["rep3"]
    rebuilt = live_store.materialise("near", 3, tmp_path / "out", with_logs=True, live=store)
    names = sorted(p.name for p in measured.parent.iterdir())
    assert names == sorted(live_store.ALL_FILES)
    for name in names:
        assert (rebuilt.parent / name).read_bytes() == (measured.parent / name).read_bytes()
    assert live_store.verify(store) == (len(names), 1)
    table = live_store.requests("near", store)
    result = json.loads(measured.read_text())
    assert table.column("ttft_us").to_pylist() == [round(t * 1e6) for t in result["ttfts"]]


def test_a_repeat_is_replaced_and_an_untrimmed_one_refused(tmp_path: Path):
    src = live_store.materialise("conc-c1", "rep5", tmp_path / "measured").parent
    store = tmp_path / "store"
    live_store.add([("conc-c1", 5, src)], store)
    result = json.loads((src / "result.json").read_text())
    result["ttfts"][0], result["label"] = 0.25, "relabelled"
    changed = tmp_path / "changed"
    shutil.copytree(src, changed)
    (changed / "result.json").write_text(json.dumps(result, separators=(",", ":")))
    live_store.add([("conc-c1", 5, changed)], store)
    assert live_store.result("conc-c1", 5, store) == result
    result["ttfts"][0] = 0.1234567  # not rounded to the microsecond
    (changed / "result.json").write_text(json.dumps(result, separators=(",", ":")))
    with pytest.raises(ValueError, match="rounded to 1 µs"):
        live_store.add([("conc-c1", 5, changed)], store)
    assert live_store.result("conc-c1", 5, store)["ttfts"][0] == 0.25
