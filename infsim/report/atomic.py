"""Publish an output directory as a whole: written into a temporary sibling, then renamed
into place, so a reader (or a kill -9, or a full disk) never sees a mix of two runs.

    publish_dir(target, [(name, writer), ...], replaceable=RUN_FILES)

1. `check_target`: the target is a new directory, an empty one, or one holding only
   `replaceable` names (an earlier run); anything else (a symbolic link, a file, a mount
   point, a directory holding other files, the current directory) is refused with an
   `InputError` before any work, so replacing it can never delete someone's files.
2. A sibling `.<name>.infsim-tmp-<host>-<pid>-<random>` is created; each writer writes
   one file into it (fresh directory, fresh names: nothing is written through an existing
   symbolic link); every file and the directory are fsynced.
3. The sibling replaces the target in one step (Linux `renameat2(RENAME_EXCHANGE)` when the
   target exists, `rename` when it does not), and the old run, now at the sibling's name,
   is deleted. Where the exchange is not available the old directory is renamed aside
   first: a kill between the two renames leaves no target, never a mix.
4. Any failure (disk full, permissions) removes the sibling and ends in one `InputError`
   saying the target is unchanged. Siblings left by killed writers (their process gone on
   this host) are removed by the next write to the same target.

`INFSIM_TEST_WRITE_PAUSE_S` (tests only) sleeps that long before each step, so a test can
kill the writer at any point of its write window.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from infsim.errors import InputError

Writer = Callable[[Path], None]
"""Writes one file at the path it is given (a fresh name in a fresh directory)."""

PAUSE_ENV = "INFSIM_TEST_WRITE_PAUSE_S"
_STEM_CHARS = 40  # of the target's name in its siblings' names (keeps them under 255 bytes)
_SIBLING = re.compile(
    r"^\.(?P<stem>.*)\.infsim-(?:tmp|old)-(?P<host>[0-9a-f]{6})-"
    r"(?P<pid>\d+)-[0-9a-f]{8}$",
    re.DOTALL,
)


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]


def _sibling(target: Path, kind: str) -> Path:
    stem = target.name[:_STEM_CHARS]
    return target.with_name(f".{stem}.infsim-{kind}-{_host()}-{os.getpid()}-{secrets.token_hex(4)}")


def _pause() -> None:
    seconds = os.environ.get(PAUSE_ENV)
    if seconds:
        time.sleep(float(seconds))


def absolute(target: Path | str) -> Path:
    """`target` made absolute without following links (`..` taken lexically)."""
    return Path(os.path.abspath(target))


def check_target(target: Path | str, replaceable: Iterable[str], what: str = "run") -> Path:
    """Refuse, before any work, a target that publishing could not replace safely; the
    absolute target path."""
    path = absolute(target)
    if path.parent == path:
        raise InputError(
            f"{target}: cannot write the {what} to the file-system root; give "
            "a directory path such as runs/NAME"
        )
    if path.is_symlink():
        raise InputError(
            f"{target}: is a symbolic link; infsim replaces a {what} directory as a whole and "
            f"never writes through a link; give the directory it points to "
            f"({os.path.realpath(path)}) or a new path"
        )
    if not path.exists():
        return path
    if not path.is_dir():
        raise InputError(
            f"{target}: exists and is not a directory; give a directory path for the {what}"
        )
    if os.path.ismount(path):
        raise InputError(
            f"{target}: is a mount point; infsim replaces a {what} directory as a whole "
            f"(written beside it, then renamed), which a mount point cannot be; give a "
            f"directory inside it, e.g. {target}/{what}"
        )
    cwd = absolute(os.getcwd())
    if cwd == path or path in cwd.parents:
        raise InputError(
            f"{target}: is the current directory or holds it; give a separate "
            f"directory for the {what}, e.g. {target}/{what}"
        )
    allowed = set(replaceable)
    try:
        with os.scandir(path) as entries:
            foreign = sorted(
                e.name for e in entries if e.name not in allowed or e.is_dir(follow_symlinks=False)
            )
    except OSError as err:
        raise InputError(f"{target}: cannot list the directory: {err.strerror}") from None
    if foreign:
        shown = ", ".join(foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        raise InputError(
            f"{target}: holds files that are not part of an infsim {what} ({shown}); infsim "
            f"replaces a {what} directory as a whole, so it writes only to a new or empty "
            f"directory or one holding an earlier {what}; give a separate directory, e.g. "
            f"{target}/{what}"
        )
    return path


def publish_dir(
    target: Path | str,
    files: Sequence[tuple[str, Writer]],
    *,
    replaceable: Iterable[str],
    what: str = "run",
) -> Path:
    """Write `files` (name, writer), in order, as the directory `target`, replacing an
    earlier one as a whole (module docstring); the absolute target path."""

    def write_into(tmp: Path, step: list[str]) -> None:
        for name, write in files:
            _pause()
            step[0] = f"write {name}"
            write(tmp / name)
        _pause()

    return publish_tree(target, write_into, replaceable=replaceable, what=what)


def publish_tree(
    target: Path | str,
    write_into: Callable[[Path, list[str]], None],
    *,
    replaceable: Iterable[str],
    what: str = "run",
) -> Path:
    """`write_into(fresh_dir, step)` fills a fresh temporary sibling (naming what it does in
    `step[0]`, for the message if it fails), which then replaces `target` as a whole."""
    path = check_target(target, set(replaceable), what)
    tmp = _fresh_sibling_name(path)
    step = ["create a temporary directory"]
    try:
        tmp.mkdir()
        write_into(tmp, step)
        step[0] = f"replace {target}"
        for name in sorted(os.listdir(tmp)):
            _fsync(tmp / name)
        _fsync(tmp)
        _swap_into_place(tmp, path)
    except OSError as err:
        _remove(tmp)
        raise InputError(_failure(target, path, step[0], err, what)) from None
    except BaseException:
        _remove(tmp)
        raise
    with contextlib.suppress(OSError):
        _fsync(path.parent)  # the rename itself, durable
    _remove(tmp)  # the earlier run, exchanged into the temporary name
    return path


def _fresh_sibling_name(path: Path) -> Path:
    """A new temporary sibling's name for `path` (not created): the parent made, and the
    siblings killed writers left removed first."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(
            f"{path.parent}: cannot create the output directory: {err.strerror or err}"
        ) from None
    remove_stale_siblings(path)
    return _sibling(path, "tmp")


@contextlib.contextmanager
def spool_beside(target: Path | str, what: str = "run") -> Iterator[Path]:
    """A fresh temporary sibling of `target` for the files a long job writes as it goes
    (a run's tables), before `publish_dir` publishes them: beside the target, so on the
    same file system (they are linked into the published directory, not copied). Removed
    on leaving the block; if the process is killed, by the next write to the target (it
    has a temporary sibling's name). A failure to write into it (disk full) becomes one
    `InputError` saying the target is unchanged."""
    path = absolute(target)
    tmp = _fresh_sibling_name(path)
    try:
        tmp.mkdir()
        yield tmp
    except OSError as err:
        if err.filename is not None and not str(err.filename).startswith(str(tmp)):
            raise  # another file's error: the CLI's error boundary names its path
        # (Arrow's write errors carry no file name: the spool's writes are the run's only)
        raise InputError(_failure(target, path, f"write the {what}'s tables", err, what)) from None
    finally:
        _remove(tmp)


def _failure(target: Path | str, path: Path, step: str, err: OSError, what: str) -> str:
    reason = err.strerror or str(err) or type(err).__name__
    if err.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(err):
        reason = "no space left on the device (disk full or quota reached)"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason += (f" (the new {what} is written beside the directory, in {path.parent}, "
                   "then renamed into place: that directory must be writable)")  # fmt: skip
    state = (
        f"{target} still holds the earlier {what}" if path.exists() else f"{target} was not created"
    )
    return (
        f"{target}: could not {step}: {reason}; nothing was half-written: {state}. Free "
        f"space or fix the permissions and run again"
    )


def _swap_into_place(tmp: Path, target: Path) -> None:
    if not target.exists():
        try:
            os.rename(tmp, target)  # replaces nothing, or an empty directory made meanwhile
            return
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    if _exchange(tmp, target):
        return
    aside = _sibling(target, "old")
    os.rename(target, aside)  # a kill here leaves no target; never a mix
    try:
        os.rename(tmp, target)
    except OSError:
        os.rename(aside, target)
        raise
    os.rename(aside, tmp)  # so the caller deletes it; a kill leaves a stale sibling


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where not available."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # kernel or file system without RENAME_EXCHANGE
    raise OSError(code, os.strerror(code), str(b))


def _fsync(path: Path) -> None:
    """Flush a file or directory to the device (best effort where the OS refuses)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) * path.is_dir())
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_symlink():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def remove_stale_siblings(target: Path) -> list[Path]:
    """Delete temporary siblings of `target` left by writers that were killed (same host,
    process gone); the paths removed. Live writers' siblings are left alone."""
    removed: list[Path] = []
    stem, host = target.name[:_STEM_CHARS], _host()
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            match = _SIBLING.match(entry.name)
            if (
                match is None
                or match["stem"] != stem
                or match["host"] != host
                or _alive(int(match["pid"]))
                or not entry.is_dir(follow_symlinks=False)
            ):
                continue
            _remove(Path(entry.path))
            removed.append(Path(entry.path))
    return removed
