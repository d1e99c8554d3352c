"""The result store: one Parquet file per finished point, named by the point's key.

    SWEEP_DIR/
      sweep.json              the job: base scenario, axes, points (index, key, overrides)
      points/<key>.parquet    one row per finished point (ok or failed), never rewritten
      .lock                   held (flock) by the one job writing the directory

A store that cannot lie:

- **Atomic points.** A point file is written to a temporary name unique to its writer
  (`.tmp-<pid>-<random>-<key>.parquet`), fsynced and `os.replace`d into place, so a process
  killed at any instant (SIGKILL included) leaves either the whole file or none. A writer
  removes its own temporary when a write fails (disk full); another writer's temporaries
  are left alone unless they are over `STALE_TMP_S` old (a writer killed mid-write).
  Readers (`infsim results`, `report`) never delete anything.
- **Validated points.** A point file counts as stored only if it reads as a one-row
  Parquet table with `key` and `status` columns (`scan`); an empty, truncated or foreign
  file is *damaged*: a sweep recomputes it and says so, and a reader refuses to show a
  table with a hole in it (`DamagedPointError`, naming the files).
- **One job per directory.** A job (sweep, capacity, optimize, plan) holds `.lock` while it
  writes, so a second job on the same directory is refused while the first runs; and a job
  whose manifest would hide the points of the directory's previous job (different axes,
  scenario or target) is refused unless `force` (see `claim`). Growing a sweep's axes, or
  resuming the same job, is not a conflict.
- **Checked manifest.** `sweep.json` is read through `infsim.textio` and its shape is
  checked; a truncated or edited file is an `InputError` naming it.

Resuming is "skip the valid keys present": nothing finished is lost and nothing is run
twice. Rows are read back with pandas, since override columns may mix types across points
(e.g. `auto` and `fp8`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from infsim.errors import InputError
from infsim.textio import load_json, read_text

POINTS = "points"
MANIFEST = "sweep.json"
LOCK = ".lock"
TMP_PREFIX = ".tmp-"
STALE_TMP_S = 3600.0
"""A temporary of another process older than this is left over from a killed writer (a
point file takes milliseconds to write) and is removed when a writer opens the store."""

KINDS = ("sweep", "capacity", "optimize", "plan")
_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")
_REQUIRED_COLUMNS = ("key", "status")
_STATUSES = ("ok", "failed")

#: Lock file descriptors this process holds; forked pool workers close their copies.
HELD_LOCK_FDS: set[int] = set()


class DamagedPointError(InputError):
    """Point files that exist but cannot be read back as a finished point."""

    def __init__(self, points_dir: Path, damaged: dict[str, str]) -> None:
        self.damaged = dict(damaged)
        shown = "; ".join(f"{k}.parquet: {why}" for k, why in list(damaged.items())[:3])
        more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
        super().__init__(
            f"{points_dir}: {len(damaged)} point file(s) damaged ({shown}{more}); run the same "
            "infsim sweep / capacity / optimize command again to recompute them (a damaged "
            "point is recomputed), or delete them"
        )


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all, through a temporary unique to this
    writer. On any failure (disk full included) the temporary is removed and the error
    propagates; `path` keeps its previous content."""
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}-{path.name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InputError(
            f"point key {str(key)[:80]!r}: not a point key (1-128 letters, digits, - or _)"
        )
    return key


class ResultStore:
    """Finished points of one sweep directory (shared by sweeps, searches and re-runs).

    `create=True` (writers: sweep, capacity, optimize) makes the directory and removes
    stale temporaries; `create=False` (readers: results, report) changes nothing."""

    def __init__(self, root: Path | str, *, create: bool = True) -> None:
        self.root = Path(root)
        self.points_dir = self.root / POINTS
        if create:
            try:
                self.points_dir.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise InputError(
                    f"{self.root}: cannot create the sweep directory: "
                    f"{err.strerror or type(err).__name__}"
                ) from None
            self._remove_stale_temporaries()
        elif not self.root.is_dir():
            raise InputError(f"{self.root}: no such directory")
        if self.points_dir.exists() and not self.points_dir.is_dir():
            raise InputError(f"{self.points_dir}: is not a directory; this is not a sweep store")

    # -- temporaries ----------------------------------------------------------------------
    def _remove_stale_temporaries(self, now: float | None = None) -> list[Path]:
        """Remove other writers' temporaries over STALE_TMP_S old; never this process's,
        never a fresh one (another sweep, or `results`, may be writing right now)."""
        now = time.time() if now is None else now
        removed = []
        for folder in (self.root, self.points_dir):
            for tmp in folder.glob(f"{TMP_PREFIX}*"):
                if _tmp_owner(tmp.name) == os.getpid():
                    continue
                try:
                    if now - tmp.lstat().st_mtime > STALE_TMP_S:
                        tmp.unlink()
                        removed.append(tmp)
                except OSError:
                    continue  # gone already, or not ours to remove: leave it
        return removed

    # -- points ---------------------------------------------------------------------------
    def _point_path(self, key: str) -> Path:
        return self.points_dir / f"{check_key(key)}.parquet"

    def scan(self) -> tuple[set[str], dict[str, str]]:
        """(keys of valid point files, {key: why it is damaged}). Checks each file's
        Parquet footer (rows and columns) without reading its data."""
        valid: set[str] = set()
        damaged: dict[str, str] = {}
        try:
            entries = list(os.scandir(self.points_dir))
        except FileNotFoundError:
            return valid, damaged
        except OSError as err:
            raise InputError(f"{self.points_dir}: cannot list: {err.strerror}") from None
        for entry in entries:
            name = entry.name
            if name.startswith(".") or not name.endswith(".parquet"):
                continue  # temporaries being written, and files that are not points
            key = name.removesuffix(".parquet")
            problem = _footer_problem(Path(entry.path))
            if problem is None:
                valid.add(key)
            else:
                damaged[key] = problem
        return valid, damaged

    def stored_keys(self) -> set[str]:
        return self.scan()[0]

    def has(self, key: str) -> bool:
        return self._point_path(key).is_file()

    def write(self, row: dict[str, Any]) -> None:
        """Store one finished point's row (`row["key"]` names the file). A failure to write
        (disk full) is an `InputError`; the points stored before are untouched."""
        path = self._point_path(row["key"])
        table = pa.Table.from_pylist([_parquet_safe(row)])
        sink = pa.BufferOutputStream()
        pq.write_table(table.replace_schema_metadata(None), sink, compression="zstd")
        try:
            write_atomic(path, sink.getvalue().to_pybytes())
        except OSError as err:
            raise _write_error(self.points_dir, f"point {row['key']}", err) from None

    def _table(self, key: str) -> pa.Table:
        """The point's one-row table, checked; DamagedPointError when it is not whole."""
        path = self._point_path(key)
        if not path.exists():
            raise InputError(f"{path}: point {key} is not stored")
        problem = _footer_problem(path)
        if problem is not None:
            raise DamagedPointError(self.points_dir, {key: problem})
        try:
            table = pq.read_table(path)
        except Exception as err:  # pyarrow raises several types for a damaged file
            raise DamagedPointError(self.points_dir, {key: _why(err)}) from None
        problem = _content_problem(table, key)
        if problem is not None:
            raise DamagedPointError(self.points_dir, {key: problem})
        return table

    def read(self, key: str) -> dict[str, Any]:
        return self._table(key).to_pylist()[0]

    def rows(self, keys: list[str] | None = None) -> pd.DataFrame:
        """The stored rows of `keys` (default: every valid point) in that order; keys not
        stored yet are left out; any damaged file among them is a DamagedPointError."""
        if keys is None:
            valid, damaged = self.scan()
            wanted = sorted(valid)
        else:
            wanted, damaged = [k for k in dict.fromkeys(keys) if self.has(k)], {}
        frames = []
        for key in wanted:
            try:
                frames.append(self._table(key).to_pandas().dropna(axis=1, how="all"))
            except DamagedPointError as err:
                damaged.update(err.damaged)
        if damaged:
            raise DamagedPointError(self.points_dir, damaged)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # -- the manifest ---------------------------------------------------------------------
    def write_manifest(self, manifest: dict[str, Any]) -> None:
        text = json.dumps(manifest, indent=1, default=str) + "\n"
        try:
            write_atomic(self.root / MANIFEST, text.encode())
        except OSError as err:
            raise _write_error(self.root, MANIFEST, err) from None

    def manifest(self) -> dict[str, Any]:
        path = self.root / MANIFEST
        if not path.exists():
            raise InputError(
                f"{self.root}: not a sweep directory (no {MANIFEST}); give the directory "
                "that infsim sweep, capacity or optimize wrote (-o)"
            )
        data = load_json(read_text(path, "sweep manifest"), str(path))
        check_manifest(data, str(path))
        return data

    # -- one job per directory ------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory's writer lock for a job; a second job is refused while it
        runs (an InputError naming the holder). Released when the job ends or dies."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock, one job at a time
            yield
            return
        path = self.root / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise InputError(f"{path}: cannot create the lock file: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise InputError(
                f"{self.root}: another infsim job (pid {holder}) is writing this directory; "
                "wait for it to finish, or use another directory (-o)"
            ) from None
        except OSError:  # a file system without locks (some network mounts): go on unlocked
            os.close(fd)
            locked = False
        if not locked:
            yield
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        HELD_LOCK_FDS.add(fd)
        try:
            yield
        finally:
            HELD_LOCK_FDS.discard(fd)
            os.close(fd)

    def claim(self, manifest: dict[str, Any], *, force: bool = False) -> None:
        """Check that writing `manifest` does not hide another job's results: the existing
        sweep.json must describe the same job (or, for a sweep, one whose points this one
        keeps: grown axes). Refused with the way out unless `force`."""
        path = self.root / MANIFEST
        if force or not path.exists():
            return
        try:
            old = self.manifest()
        except InputError as err:
            raise InputError(
                f"{err} — a new job would overwrite it; use another directory (-o), or "
                "--force to replace it (the stored points are kept and reused)"
            ) from None
        conflict = _conflict(old, _plain_json(manifest))
        if conflict:
            raise InputError(
                f"{self.root}: holds another job's results ({conflict}); writing this "
                f"{manifest.get('kind', 'job')} would replace its {MANIFEST} and hide them. "
                "Use another directory (-o), or --force to replace the manifest (the stored "
                "points are kept and reused)"
            )


def base_digest(base_raw: dict[str, Any]) -> str:
    """sha256 of a base scenario mapping (with --set applied): part of a job's identity."""
    text = json.dumps(base_raw, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


#: What must be equal for a search's manifest to belong to the same job.
_IDENTITY = {
    "capacity": ("base_sha256", "target", "rel_tol"),
    "optimize": ("base_sha256", "axes", "target", "settings"),
    "plan": ("base_sha256", "target", "settings"),
}


def _conflict(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why `new` would hide `old`'s results, or None when it is the same job (or grows it)."""
    old_kind, new_kind = old.get("kind", "sweep"), new.get("kind", "sweep")
    if old_kind != new_kind:
        return f"a {old_kind} of {old.get('scenario', '?')}, not a {new_kind}"
    if new_kind == "sweep":
        old_keys = {p["key"] for p in old.get("points", [])}
        new_keys = {p["key"] for p in new.get("points", [])}
        if not old_keys:
            same = old.get("axes") == new.get("axes") and old.get("scenario") == new.get("scenario")
            return None if same else "a sweep with other axes and no runnable point"
        missing = old_keys - new_keys
        if missing:
            return (
                f"a sweep of {old.get('scenario', '?')} with {len(old_keys)} points, "
                f"{len(missing)} of which this sweep does not have (other axes, scenario or "
                "--set)"
            )
        return None
    for field in _IDENTITY.get(new_kind, ()):
        if field == "base_sha256" and field not in old:  # written before it was recorded
            field = "scenario"
        if _identity(field, old.get(field)) != _identity(field, new.get(field)):
            return f"a {old_kind} with another {field.removesuffix('_sha256')}"
    return None


def _identity(field: str, value: Any) -> Any:
    """More trials of the same search are the same job (it replays and goes on)."""
    if field == "settings" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "num_trials"}
    return value


def _plain_json(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))


def check_manifest(data: Any, where: str) -> None:
    """The shape every reader relies on: a mapping whose `points` is a list of
    {index: int, key: point key, overrides: mapping}; `kind`, `axes`, `skipped` typed."""

    def bad(field: str, what: str, value: Any) -> InputError:
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return InputError(
            f"{where}: {field}: {what}, got {shown}; the manifest is damaged or was edited "
            "(run the job again with --force to rewrite it; its stored points are kept)"
        )

    if not isinstance(data, dict):
        raise bad("(top level)", "expected a mapping", type(data).__name__)
    kind = data.get("kind", "sweep")
    if kind not in KINDS:
        raise bad("kind", f"expected one of {', '.join(KINDS)}", kind)
    _check_points(data.get("points", []), bad)
    axes = data.get("axes", {})
    if not isinstance(axes, dict) or not isinstance(axes.get("axes", {}), dict):
        raise bad("axes", "expected a mapping with axes: {path: values}", axes)
    skipped = data.get("skipped", [])
    if not isinstance(skipped, list) or not all(isinstance(s, dict) for s in skipped):
        raise bad("skipped", "expected a list of mappings", skipped)
    for field in ("result", "best", "settings", "target"):
        if data.get(field) is not None and not isinstance(data[field], dict):
            raise bad(field, "expected a mapping", data[field])
    for field in ("objective", "latency"):
        value = (data.get("settings") or {}).get(field)
        if value is not None and not isinstance(value, str):
            raise bad(f"settings.{field}", "expected a column name", value)


def _check_points(points: Any, bad: Any) -> None:
    if not isinstance(points, list):
        raise bad("points", "expected a list", type(points).__name__)
    for i, point in enumerate(points):
        if not isinstance(point, dict):
            raise bad(f"points[{i}]", "expected a mapping", point)
        if not isinstance(point.get("key"), str) or not _KEY.fullmatch(point["key"]):
            raise bad(f"points[{i}].key", "expected a point key", point.get("key"))
        index = point.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            raise bad(f"points[{i}].index", "expected an integer", index)
        if not isinstance(point.get("overrides"), dict):
            raise bad(f"points[{i}].overrides", "expected a mapping", point.get("overrides"))


# -- helpers --------------------------------------------------------------------------------
def _tmp_owner(name: str) -> int | None:
    """The pid in `.tmp-<pid>-…`, or None for a name of another form."""
    head = name[len(TMP_PREFIX) :].split("-", 1)[0]
    return int(head) if head.isdigit() and len(head) < 10 else None


def _why(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _footer_problem(path: Path) -> str | None:
    """Why the file is not a whole one-row point table (from its footer), or None."""
    try:
        if not path.is_file():
            return "not a regular file"
        if path.stat().st_size == 0:
            return "empty file"
        meta = pq.read_metadata(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... for damaged files
        return f"not a whole Parquet file ({_why(err)})"
    if meta.num_rows != 1:
        return f"holds {meta.num_rows} rows, a point file holds 1"
    names = set(meta.schema.names)
    missing = [c for c in _REQUIRED_COLUMNS if c not in names]
    return f"lacks the column(s) {', '.join(missing)}" if missing else None


def _content_problem(table: pa.Table, key: str) -> str | None:
    if table.num_rows != 1:
        return f"holds {table.num_rows} rows, a point file holds 1"
    missing = [c for c in _REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        return f"lacks the column(s) {', '.join(missing)}"
    stored_key, status = table.column("key")[0].as_py(), table.column("status")[0].as_py()
    if stored_key != key:
        return f"holds the point {str(stored_key)[:80]!r}, not {key}"
    if status not in _STATUSES:
        return f"status {str(status)[:40]!r} is neither ok nor failed"
    return None


def _write_error(where: Path, what: str, err: OSError) -> InputError:
    reason = err.strerror or type(err).__name__
    full = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
    hint = "free some space" if err.errno in full else "fix that"
    return InputError(
        f"{where}: cannot write {what}: {reason}; every point stored before is kept: "
        f"{hint} and run the same command again to resume"
    )


def _parquet_safe(row: dict[str, Any]) -> dict[str, Any]:
    """Values Arrow can store in a one-row table: lists/dicts become JSON text, and an
    integer beyond int64 its exact decimal text."""
    return {k: _storable(v) for k, v in row.items()}


def _storable(value: Any) -> Any:
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, default=str)
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return str(value)
    return value
