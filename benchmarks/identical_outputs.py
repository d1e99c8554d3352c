"""Fingerprint every shipped scenario's outputs, to show a refactor changed no behaviour.

    python benchmarks/identical_outputs.py > before.txt      # on the old commit
    python benchmarks/identical_outputs.py > after.txt       # on the new one
    diff before.txt after.txt                                # empty: byte-identical

For each `scenarios/*.yaml` it runs `infsim run` (fixed seed) in a fresh process and prints
the SHA-256 of `requests.parquet`, `timeline.parquet`, `fleet_timeline.parquet` and
`summary.json` with its one wall-clock field (`simulation.wall_s`) removed; sweep scenarios
are run as plain runs (their base point). The runs start outside the checkout, so they run
the infsim this interpreter has installed (`venv/bin/python benchmarks/identical_outputs.py`
fingerprints that venv's build, a compiled wheel's for one). A scenario that fails prints
its exit status and the end of its error, and the script then exits 1 (CI runs every
shipped scenario so).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILES = ("requests.parquet", "timeline.parquet", "fleet_timeline.parquet")


def fingerprint(out: Path) -> dict[str, str]:
    prints = {}
    for name in FILES:
        path = out / name
        if path.exists():
            prints[name] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    summary = json.loads((out / "summary.json").read_text())
    summary.get("simulation", {}).pop("wall_s", None)
    text = json.dumps(summary, sort_keys=True).encode()
    prints["summary.json"] = hashlib.sha256(text).hexdigest()[:16]
    return prints


def main() -> None:
    scenarios = sorted((REPO / "scenarios").glob("*.yaml"))
    failed = 0
    for scenario in scenarios:
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "infsim", "run", str(scenario), "--quiet"]
            run = [*command, "-o", f"{tmp}/run"]
            done = subprocess.run(run, capture_output=True, text=True, cwd=tmp, check=False)
            if done.returncode != 0:
                print(f"{scenario.name}: exit {done.returncode}: {done.stderr.strip()[-200:]}")
                failed += 1
                continue
            prints = fingerprint(Path(tmp) / "run")
        print(scenario.name, " ".join(f"{k}={v}" for k, v in prints.items()))
    if failed:
        sys.exit(f"{failed} of {len(scenarios)} scenarios failed")


if __name__ == "__main__":
    main()
