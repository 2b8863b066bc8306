"""A run's output folder: the one writer of astrogate's studies (sweeps, benchmarks, MQAR, spiking studies).

- Checked before any work: the folder is created and its lock file written, so that a read-only or missing
  location is refused in one line before a point runs.
- Owned by one run at a time: OUT/.astrogate.lock names the owner (pid, host, command) and is held with an
  flock for the whole run; the kernel releases it when the owner dies, so the lock of a dead run is taken
  over, and a second live run is refused in one line.
- Written without half-files: every file goes into OUT/.staging/ and is renamed into place, so a kill leaves
  no partial result and no temporary file beside the results (the next run empties the staging folder).
  Renaming replaces a symbolic link at the destination instead of writing through it to another place.
- Results that belong together (the dataset, the table, the figures, the summaries) are written into one
  staging subfolder and moved into place together once all of them are written.
- Files read back (point files, the spec copy) are read only when they are regular files (not links) of a
  bounded size; anything else reads as None, which callers treat as "not finished".
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import shutil
import socket
import stat
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

from astrogate.errors import InputError
from astrogate.files import file_status, make_folder, os_reason

LOCK_FILE = ".astrogate.lock"
STAGING = ".staging"
MAX_READ_BYTES = 64 * 2**20  # a point file or spec copy beyond this is not astrogate's


class RunFolder:
    """An output folder held by this run (see the module docstring). Use as a context manager:
    ``with RunFolder.open(out) as folder: ...``; leaving it empties the staging folder and frees the lock."""

    def __init__(self, path: Path, lock_fd: int):
        self.path = path
        self._lock_fd = lock_fd

    # -- ownership ------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, what: str = "output folder") -> "RunFolder":
        path = Path(path)
        info = file_status(path, what)  # a name too long, a folder that cannot be searched: one line
        if os.path.islink(path) and info is None or (info is not None and not stat.S_ISDIR(info.st_mode)):
            if os.path.islink(path):
                raise InputError(f"{what} {str(path)!r} is a link to {os.readlink(path)!r}, not a folder")
            raise InputError(f"{what} {str(path)!r} is not a folder")
        make_folder(path, f"{what} {str(path)!r}")
        lock = path / LOCK_FILE
        fd = _open_lock(lock, what, path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = _read_owner(fd)
            os.close(fd)
            raise InputError(f"{what} {str(path)!r} is in use by another astrogate run ({owner}): wait for it to "
                             f"finish, or choose another folder") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "command": " ".join(sys.argv)[:300],
                                     "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        except OSError as exc:
            os.close(fd)
            raise InputError(f"cannot write in {what} {str(path)!r}: {os_reason(exc)}") from None
        folder = cls(path, fd)
        folder._clear_staging()
        return folder

    def close(self) -> None:
        if self._lock_fd is None:
            return
        self._clear_staging()
        with suppress(OSError):
            os.ftruncate(self._lock_fd, 0)
        os.close(self._lock_fd)  # closing the descriptor releases the flock
        self._lock_fd = None
        with suppress(OSError):
            (self.path / LOCK_FILE).unlink()

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _clear_staging(self) -> None:
        shutil.rmtree(self.path / STAGING, ignore_errors=True)

    # -- writing --------------------------------------------------------------------------------------
    def _staging(self) -> Path:
        return make_folder(self.path / STAGING, f"the staging folder in {str(self.path)!r}")

    def write(self, relative: str, data: bytes | str, what: str = "output") -> Path:
        """One file, written in the staging folder and renamed to OUT/relative (a link there is replaced)."""
        target = self.path / relative
        tmp = self._staging() / f"{secrets.token_hex(6)}.tmp"
        payload = data.encode() if isinstance(data, str) else data
        try:
            self._own_parents(target)
            with open(tmp, "xb") as fh:
                fh.write(payload)
            _replace(tmp, target)
        except OSError as exc:
            with suppress(OSError):
                tmp.unlink()
            raise InputError(f"cannot write {what} {str(target)!r}: {os_reason(exc)}") from None
        return target

    @contextmanager
    def staged(self):
        """A fresh folder to write outputs that belong together; when the block ends without an error, each
        of its files is moved to the same place under OUT (links there replaced), else all are dropped."""
        stage = self._staging() / f"outputs-{secrets.token_hex(4)}"
        stage.mkdir()
        try:
            yield stage
            for source in sorted(p for p in stage.rglob("*") if not p.is_dir()):
                target = self.path / source.relative_to(stage)
                try:
                    self._own_parents(target)
                    _replace(source, target)
                except OSError as exc:
                    raise InputError(f"cannot write {str(target)!r}: {os_reason(exc)}") from None
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def own_folder(self, relative: str) -> Path:
        """OUT/relative as a folder of this run's own (created; a link there replaced, never followed)."""
        path = self.path / relative
        try:
            self._own_parents(path / "_")
        except OSError as exc:
            raise InputError(f"cannot write in {str(self.path)!r}: {os_reason(exc)}") from None
        return path

    def _own_parents(self, target: Path) -> None:
        """The folders between OUT and target, created; a link among them is replaced by a real folder, so
        that nothing is written through it."""
        folder = self.path
        for part in target.relative_to(self.path).parts[:-1]:
            folder = folder / part
            if folder.is_symlink():
                folder.unlink()
            folder.mkdir(exist_ok=True)

    def remove(self, names) -> list[str]:
        """Delete these entries of OUT (files, links or folders; a link is removed, never followed)."""
        removed = []
        for name in names:
            path = self.path / name
            try:
                if path.is_symlink() or path.is_file():
                    path.unlink()
                elif path.is_dir():
                    shutil.rmtree(path)
                else:
                    continue
            except OSError as exc:
                raise InputError(f"cannot remove {str(path)!r}: {os_reason(exc)}") from None
            removed.append(name)
        return removed


def _replace(source: Path, target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        raise IsADirectoryError(errno.EISDIR, "a folder is in the way", str(target))
    os.replace(source, target)  # a rename: replaces a link at target itself, never its destination


def _open_lock(lock: Path, what: str, folder: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(2):
        try:
            return os.open(lock, flags, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a link where the lock belongs: astrogate's own file, replaced
                with suppress(OSError):
                    lock.unlink()
                continue
            raise InputError(f"cannot write in {what} {str(folder)!r}: {os_reason(exc)}") from None
    raise InputError(f"cannot write in {what} {str(folder)!r}: its lock file {LOCK_FILE} cannot be created")


def _read_owner(fd: int) -> str:
    try:
        owner = json.loads(os.pread(fd, 4096, 0).decode())
        return f"pid {int(owner['pid'])} on {owner['host']}, started {owner['started']}"
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "its lock file is held"


# -- reading back ---------------------------------------------------------------------------------------

def read_own_file(path: str | Path, limit: int = MAX_READ_BYTES) -> str | None:
    """The text of one of astrogate's own files, or None when it is missing, a link, not a regular file,
    larger than `limit` or not UTF-8 (damaged files count as absent)."""
    path = Path(path)
    try:
        info = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        return None
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
        return data.decode("utf-8") if len(data) <= limit else None
    except (OSError, UnicodeDecodeError):
        return None


def read_own_json(path: str | Path, limit: int = MAX_READ_BYTES):
    """The JSON value of one of astrogate's own files, or None when it is absent or damaged (read_own_file),
    not JSON, or nested too deep to parse."""
    text = read_own_file(path, limit)
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None
