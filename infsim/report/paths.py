"""Default output directories: a name (a scenario's `name:`, a calibration's `--name`)
becomes one safe directory name under a root (`runs/`, `calibration/`).

The rule (docs/outputs.md), applied by `safe_name`:

1. The name is put in Unicode NFC form.
2. Letters and digits (any script), `-`, `_` and `.` are kept; every other character —
   `/`, `\\`, spaces, `:`, control characters, NUL — becomes `_`.
3. Leading and trailing dots and underscores are dropped, so the result is never `.`,
   `..` or a hidden name (infsim's own temporary siblings start with a dot; a run
   directory never does).
4. Over `MAX_NAME_BYTES` bytes of UTF-8, the name is cut and `-` plus the first 8 hex
   digits of the full name's SHA-256 are appended (two long names sharing a beginning
   stay apart).
5. An empty result is `unnamed`.

So `name: ../../x` writes to `runs/x`, `name: /abs/dir` to `runs/abs_dir`, `name: my run`
to `runs/my_run`. An explicit `-o DIR` is taken as given.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path

MAX_NAME_BYTES = 100
"""Longest directory name produced (UTF-8 bytes): file systems allow 255, and the
temporary sibling a run is written into adds a prefix and a suffix."""

_KEEP = frozenset("-_.")


def safe_name(name: str) -> str:
    """`name` as one directory name (the module docstring states the rule).

    >>> safe_name("../../x"), safe_name("/abs/dir"), safe_name("my run"), safe_name("..")
    ('x', 'abs_dir', 'my_run', 'unnamed')
    """
    text = unicodedata.normalize("NFC", str(name))
    kept = "".join(c if c.isalnum() or c in _KEEP else "_" for c in text)
    kept = kept.strip("._")
    if len(kept.encode("utf-8")) > MAX_NAME_BYTES:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cut = kept.encode("utf-8")[: MAX_NAME_BYTES - 9].decode("utf-8", "ignore")
        kept = f"{cut.rstrip('._')}-{digest}"
    return kept or "unnamed"


def safe_run_dir(name: str, root: Path | str = "runs") -> Path:
    """`root / safe_name(name)`: a directory directly inside `root`, whatever `name` holds.

    Default output directories call this: `infsim run` (`runs/<scenario name>`),
    `infsim calibrate import` (`calibration/<name>`), and `sweep` / `capacity` / `optimize`
    (`runs/<command>-<scenario name>`).
    """
    root = Path(root)
    path = root / safe_name(name)
    if path.parent != root or os.sep in path.name or (os.altsep and os.altsep in path.name):
        raise AssertionError(f"unsafe directory name from {name!r}: {path}")  # never happens
    return path
