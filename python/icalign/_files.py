"""Atomic file writes: every file icalign writes (checkpoints, results, report,
figures) appears whole or not at all, even on a crash or Ctrl-C."""
from __future__ import annotations

import os
import tempfile
from typing import BinaryIO, Callable, Union


def _naming(exc: OSError, path: str) -> OSError:
    """The same kind of OSError (same errno, so PermissionError stays one), with a
    message naming the file that could not be written: the temporary file's name
    means nothing to the user."""
    reason = exc.strerror or str(exc)
    return OSError(exc.errno, f"cannot write {path!r}: {reason}") if exc.errno is not None \
        else OSError(f"cannot write {path!r}: {reason}")


def _remove_stale(directory: str, base: str) -> None:
    """Delete temporary files of ``base`` left by writers that died mid-write
    (SIGKILL, power loss): their names carry the writer's pid, and a pid that no
    longer runs cannot finish its write. Files of live writers are left alone."""
    if os.name != "posix":  # os.kill(pid, 0) probes a process on POSIX only
        return
    prefix = f".{base}."
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _running(int(pid)):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def atomic_write(path: Union[str, os.PathLike], write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file in the target directory, fsync it and
    rename it over ``path`` (os.replace is atomic on POSIX and Windows). On any
    error the temporary file is removed and the old ``path`` is left untouched;
    an OSError (full disk, permission denied) is re-raised naming ``path``.
    The file gets the usual permissions (0666 minus the umask), not mkstemp's 0600.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        _remove_stale(directory, os.path.basename(path))
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{os.getpid()}.",
                                   suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _naming(exc, path) from exc
        raise
    try:  # make the rename itself durable; not possible on every platform
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_text(path: Union[str, os.PathLike], text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
