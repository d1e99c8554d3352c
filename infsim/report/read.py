"""Reading a run directory back, refusing an incomplete or damaged one.

Every reader of what `infsim run` wrote (`infsim report`, notebooks, `api` users) goes
through `read_run` (or `verify_run` when it reads the files itself): the directory must hold
`run-complete.json`, written last, and every file it lists with that size and SHA-256. A
run killed while writing, truncated or mixed with another run's files is refused with one
`InputError` saying what is wrong and what to do — never stale results, never a traceback.

Files are read through one descriptor of the directory (never through a link) and hashed
from the very bytes that are parsed, so a run replaced while it is being read is refused
(a file missing or not matching), never read half old, half new.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from infsim.errors import InputError
from infsim.report.write import MARKER, MARKER_FORMAT, MARKER_VERSION, RUN_FILES
from infsim.textio import load_json

REQUIRED = ("requests.parquet", "timeline.parquet", "scenario.resolved.yaml", "summary.json")
"""Files every complete run has (the fleet and disaggregation timelines are optional)."""

_RERUN = "run `infsim run` again to rewrite it"


@dataclass(frozen=True)
class RunFiles:
    """A verified run directory: its summary, tables and resolved scenario text."""

    directory: Path
    summary: dict[str, Any]
    requests: pa.Table
    timeline: pa.Table
    resolved_scenario: str
    fleet_timeline: pa.Table | None = None
    disaggregation_timeline: pa.Table | None = None


def is_run_dir(directory: Path) -> bool:
    """Whether `directory` looks like a run directory, complete or not (for dispatching
    between run and sweep directories; `verify_run` says whether it is complete)."""
    return any(
        (directory / name).exists() or (directory / name).is_symlink()
        for name in (MARKER, *RUN_FILES)
    )


def _damaged(directory: Path, what: str) -> InputError:
    return InputError(f"{directory}: not a complete infsim run: {what}; {_RERUN}")


class _Dir:
    """Files opened relative to one descriptor of the directory, never through a link."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
        try:
            self.fd = os.open(directory, flags)
        except FileNotFoundError:
            raise InputError(f"{directory}: no such run directory") from None
        except NotADirectoryError:
            raise InputError(
                f"{directory}: is not a directory; give a run directory (what infsim run wrote)"
            ) from None
        except OSError as err:
            raise InputError(
                f"{directory}: cannot open the run directory: {err.strerror or err}"
            ) from None

    def read(self, name: str) -> bytes | None:
        """The file's bytes; None when it is missing."""
        try:
            fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as err:  # ELOOP: a link where infsim writes a file
            what = (
                "a symbolic link"
                if os.path.islink(self.directory / name)
                else (err.strerror or str(err))
            )
            raise _damaged(self.directory, f"{name} cannot be read ({what})") from None
        with os.fdopen(fd, "rb") as handle:
            try:
                return handle.read()
            except OSError as err:  # e.g. a directory where a file belongs
                raise _damaged(
                    self.directory, f"{name} cannot be read ({err.strerror or err})"
                ) from None

    def close(self) -> None:
        os.close(self.fd)


def _marker(directory: Path, data: bytes | None) -> dict[str, dict[str, Any]]:
    if data is None:
        raise _damaged(
            directory,
            f"{MARKER} is missing (the run was interrupted while "
            "writing, or written by an infsim that did not mark "
            "complete runs)",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _damaged(directory, f"{MARKER} is not UTF-8 text") from None
    try:
        body = load_json(text, str(directory / MARKER))
    except InputError as err:
        raise _damaged(directory, f"{MARKER} is unreadable ({err})") from None
    files = body.get("files") if isinstance(body, dict) else None
    if (
        not isinstance(body, dict)
        or body.get("format") != MARKER_FORMAT
        or not isinstance(files, dict)
    ):
        raise _damaged(directory, f"{MARKER} is not an infsim run marker")
    if body.get("version") != MARKER_VERSION:
        raise InputError(
            f"{directory}: run marker version {body.get('version')!r}; this "
            f"infsim reads version {MARKER_VERSION}; {_RERUN}"
        )
    for name, entry in files.items():
        if (
            name not in RUN_FILES
            or not isinstance(entry, dict)
            or not isinstance(entry.get("bytes"), int)
            or not isinstance(entry.get("sha256"), str)
        ):
            raise _damaged(directory, f"{MARKER} lists {str(name)[:80]!r} wrongly")
    missing = [name for name in REQUIRED if name not in files]
    if missing:
        raise _damaged(directory, f"{MARKER} does not list {', '.join(missing)}")
    return files


def verify_run(directory: Path) -> dict[str, bytes]:
    """The bytes of every file of a complete run, by name, each checked against the marker;
    an `InputError` for anything incomplete or damaged."""
    directory = Path(directory)
    handle = _Dir(directory)
    try:
        files = _marker(directory, handle.read(MARKER))
        out: dict[str, bytes] = {}
        for name, entry in files.items():
            data = handle.read(name)
            if data is None:
                raise _damaged(directory, f"{name} is missing")
            if len(data) != entry["bytes"]:
                raise _damaged(
                    directory,
                    f"{name} holds {len(data):,} bytes, the run wrote "
                    f"{entry['bytes']:,} (truncated or replaced)",
                )
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise _damaged(
                    directory, f"{name} does not match its checksum (damaged, or from another run)"
                )
            out[name] = data
        return out
    finally:
        handle.close()


def _table(directory: Path, name: str, data: bytes) -> pa.Table:
    try:
        return pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError) as err:
        raise _damaged(directory, f"{name} is not readable Parquet ({str(err)[:200]})") from None


def read_run(directory: Path) -> RunFiles:
    """A verified run directory, parsed (`verify_run` first)."""
    directory = Path(directory)
    data = verify_run(directory)
    try:
        summary_text = data["summary.json"].decode("utf-8")
        resolved = data["scenario.resolved.yaml"].decode("utf-8")
    except UnicodeDecodeError:
        raise _damaged(directory, "summary.json or scenario.resolved.yaml is not UTF-8") from None
    summary = load_json(summary_text, str(directory / "summary.json"))
    if not isinstance(summary, dict):
        raise _damaged(directory, "summary.json is not a JSON object")
    tables = {
        name: _table(directory, name, blob)
        for name, blob in data.items()
        if name.endswith(".parquet")
    }
    return RunFiles(
        directory=directory,
        summary=summary,
        requests=tables["requests.parquet"],
        timeline=tables["timeline.parquet"],
        resolved_scenario=resolved,
        fleet_timeline=tables.get("fleet_timeline.parquet"),
        disaggregation_timeline=tables.get("disaggregation_timeline.parquet"),
    )
