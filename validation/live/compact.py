"""The conversion of the live matrix into its compact store (issue 14, item 7), kept so that
it can be rerun from the commit before it.

    python validation/live/compact.py

Until then each repeat was a directory `validation/live/<run>/rep<N>/` of seven files
(result.json, metrics.json, command.txt, load.txt, session.txt, bench.log, server.log).
This stores every such directory with `live_store.add` (per run `requests.parquet` and
`repeats.parquet`, the logs in `logs.tar.xz`, the sha256 of every file in `manifest.sha256`;
`add` rebuilds each file from the tables before writing them and refuses any that does not
come back byte for byte), then rebuilds every repeat from the store once more, logs
included, compares the bytes with the directories, and prints the size before and after.
It deletes nothing: the directories were removed with `git rm` once `validation/report.py`
regenerated docs/validation.md identically from the store.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import live_store  # validation/live_store.py

LIVE = live_store.LIVE


def measured_repeats() -> list[tuple[str, str, Path]]:
    """(run, repN, directory) of every measured repeat directory, by run and N."""
    found = [(p.parent.parent.name, p.parent.name, p.parent)
             for p in LIVE.glob(f"*/rep*/{live_store.RESULT}")]  # fmt: skip
    return sorted(found, key=lambda t: (t[0], live_store.rep_number(t[1])))


def _mb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def main() -> int:
    items = measured_repeats()
    if not items:
        raise SystemExit(f"no <run>/rep<N>/result.json under {LIVE}: nothing to convert")
    before = [p for _, _, d in items for p in d.iterdir() if p.is_file()]
    live_store.add(items)
    for run, rep, src in items:
        rebuilt = live_store.files(run, rep) | live_store.logs(run, rep)
        on_disk = {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()}
        if rebuilt != on_disk:
            differ = sorted(n for n in rebuilt.keys() | on_disk.keys()
                            if rebuilt.get(n) != on_disk.get(n))  # fmt: skip
            raise SystemExit(f"{run}/{rep}: {differ} do not come back from the store")
    n_files, n_reps = live_store.verify()
    after = [LIVE / live_store.LOGS, LIVE / live_store.MANIFEST]
    after += [LIVE / run / name for run in live_store.runs()
              for name in (live_store.REQUESTS, live_store.REPEATS)]  # fmt: skip
    print(f"{n_reps} repeats, {n_files} files, {_mb(before):.1f} MB -> {len(after)} files, "  # noqa: T201
          f"{_mb(after):.2f} MB; all rebuilt byte for byte")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
