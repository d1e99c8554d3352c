"""kill -9 of `infsim run` at random points of its write window (issue 15, item 3): the
output directory afterwards holds the earlier complete run or the new complete run — never
a mix, never a truncated file that reads as complete — and the killed writer's temporary
sibling is cleaned up by the next write (docs/outputs.md).

`INFSIM_TEST_WRITE_PAUSE_S` makes the window observable: the writer sleeps that long before
each file and before the final swap. A kill waits until the temporary sibling holds
0 to 6 files (before, while and after writing each of the six), or for step 7 until the
new run is in place (the kill lands while the earlier run is deleted or after the end),
then a random part of one pause more, and sends SIGKILL. Each kill is a fresh
`python -m infsim run` process; half write into a directory holding an earlier run, half
into a new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from click.testing import CliRunner

from infsim.cli import main
from infsim.errors import InputError
from infsim.report.atomic import PAUSE_ENV, remove_stale_siblings
from infsim.report.read import verify_run

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"
OLD = ["--set", "workload.synthetic.num_requests=40", "--set", "seed=1"]
NEW = ["--set", "workload.synthetic.num_requests=50", "--set", "seed=2"]
KILLS = 20
PARALLEL = 3
PAUSE_S = 0.03
STEPS = 8  # 6 files (requests, timeline, fleet_timeline, resolved, summary, marker) + 2


def _fingerprint(directory: Path) -> dict[str, str] | None:
    """Digest of each file of a complete run (summary.json without its wall-clock field);
    None when the directory does not exist. A damaged run raises InputError."""
    if not directory.exists():
        return None
    prints = {}
    for name, data in verify_run(directory).items():
        if name == "summary.json":
            summary = json.loads(data)
            summary["simulation"].pop("wall_s")
            data = json.dumps(summary, sort_keys=True).encode()
        prints[name] = hashlib.sha256(data).hexdigest()
    return prints


def _reference(tmp_path: Path, name: str, args: list[str]) -> dict[str, str]:
    out = tmp_path / name
    result = CliRunner().invoke(main, ["run", str(QUICKSTART), "-o", str(out), "--quiet", *args])
    assert result.exit_code == 0, result.output
    prints = _fingerprint(out)
    assert prints is not None
    return prints


def _kill_once(i: int, tmp_path: Path, old_dir: Path, env: dict[str, str]) -> tuple[int, str]:
    parent = tmp_path / f"kill{i}"
    parent.mkdir()
    target = parent / "run"
    if i % 2 == 0:  # half into a directory holding an earlier run, half into a new one
        shutil.copytree(old_dir, target)
    step = (i // 2) % STEPS  # each kind of directory, killed at every step
    cmd = [sys.executable, "-m", "infsim", "run", str(QUICKSTART), "-o", str(target),
           "--quiet", *NEW]  # fmt: skip
    marker = target / "run-complete.json"
    before = marker.read_bytes() if marker.exists() else None
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if step < STEPS - 1:
            tmp = [p for p in parent.iterdir() if ".infsim-tmp-" in p.name]
            with contextlib.suppress(OSError):
                if tmp and len(os.listdir(tmp[0])) >= step:
                    break
        elif marker.exists() and marker.read_bytes() != before:
            break  # the new run is in place: the earlier one is being deleted
        time.sleep(0.003)
    if step < STEPS - 1:
        time.sleep(random.Random(i).uniform(0, PAUSE_S))
    proc.kill()
    _, stderr = proc.communicate()
    return proc.returncode, stderr.decode()


def test_kill_9_during_the_write_leaves_the_earlier_or_the_new_run(tmp_path: Path) -> None:
    old = _reference(tmp_path, "old", OLD)
    new = _reference(tmp_path, "new", NEW)
    assert old != new
    env = {**os.environ, PAUSE_ENV: str(PAUSE_S),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                       os.environ.get("PYTHONPATH")]))}  # fmt: skip
    with ThreadPoolExecutor(PARALLEL) as pool:
        codes = list(pool.map(lambda i: _kill_once(i, tmp_path, tmp_path / "old", env),
                              range(KILLS)))  # fmt: skip

    outcomes = []
    for i, (code, stderr) in enumerate(codes):
        assert code in (0, -signal.SIGKILL), stderr  # never an error or a traceback
        target = tmp_path / f"kill{i}" / "run"
        try:
            prints = _fingerprint(target)
        except InputError as err:  # a damaged or mixed directory
            raise AssertionError(f"kill {i} (exit {code}) left a damaged run: {err}") from None
        if i % 2 == 0:
            assert prints in (old, new), f"kill {i}: neither the earlier nor the new run"
        else:
            assert prints in (None, new), f"kill {i}: a fresh directory holds something else"
        outcomes.append("new" if prints == new else "old" if prints == old else "none")
        # the killed writer's temporary sibling (if any) goes at the next write
        remove_stale_siblings(target)
        assert sorted(p.name for p in target.parent.iterdir()) in ([], ["run"])

    killed = sum(code == -signal.SIGKILL for code, _ in codes)
    print(f"{killed} of {KILLS} runs killed; outcomes {outcomes}")
    assert killed >= KILLS // 2, f"only {killed} of {KILLS} runs were killed while writing"
    assert set(outcomes) - {"new"}, "no kill landed before the swap"
    assert "new" in outcomes, "no kill landed after the swap"
