"""Writing a trace file so that a failure leaves no half-written file and says where.

`write_atomically(path, write)` has `write` fill a temporary file next to `path`, then
renames it over `path`: a full disk (ENOSPC), a missing directory or a permission problem
is one `InputError` naming `path`, and `path` keeps its old content (or stays absent).
Special files (a device, a FIFO) are refused: they cannot be renamed over, and
`pyarrow.parquet.write_table` deletes its target when a write fails.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from infsim.errors import InputError


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower() if err.strerror[:1].isupper() else err.strerror
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= 160 else text[:120] + "…"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: str | Path, write: Callable[[Path], None], what: str = "trace") -> None:
    """Run `write(tmp)` on a temporary sibling of `path`, then rename it to `path`."""
    path = Path(path)
    parent = path.parent
    try:
        if not parent.exists():
            raise InputError(
                f"{path}: cannot write the {what}: the directory {parent} does not exist; "
                "create it first"
            )
        if not parent.is_dir():
            raise InputError(f"{path}: cannot write the {what}: {parent} is not a directory")
        if path.is_dir():
            raise InputError(f"{path}: cannot write the {what}: it is a directory")
        if path.exists() and not path.is_file():
            raise InputError(
                f"{path}: cannot write the {what}: it exists and is not a regular file (a "
                "device, a FIFO); give the path of a file"
            )
    except (OSError, ValueError) as err:  # a name too long, a NUL byte in it
        raise InputError(f"{path}: cannot write the {what}: {_reason(err)}") from None
    try:
        handle, name = tempfile.mkstemp(prefix=".infsim-", suffix=".tmp", dir=parent)
        os.close(handle)
    except OSError as err:
        raise InputError(f"{path}: cannot write the {what}: {_reason(err)}") from None
    tmp = Path(name)
    try:
        _run(write, tmp, path, what)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as err:
        raise InputError(f"{path}: cannot write the {what}: {_reason(err)}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _run(write: Callable[[Path], None], target: Path, path: Path, what: str) -> None:
    try:
        write(target)
    except (OSError, pa.ArrowException) as err:
        raise InputError(f"{path}: cannot write the {what}: {_reason(err)}") from None
