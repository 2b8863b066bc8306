"""Reading input files and writing outputs, with one-line errors (InputError) that name the real cause.

Outputs go to what the path names: a new or regular file is written to a temporary file in the same folder
and renamed over it (no half-written results), with the permissions the umask gives (or the old file's);
a symbolic link is followed to its target; a device or a named pipe is written to directly. Nothing is
reported written that was not: every error, a full disk included, is an InputError.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path
from typing import IO, Callable

from astrogate.errors import InputError


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def os_reason(exc: OSError) -> str:
    """Why an operating-system call failed, in words (a full disk and a name too long said plainly)."""
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.ENAMETOOLONG:
        return "a name in the path is longer than the file system allows (255 bytes a name, 4096 a path)"
    return exc.strerror or str(exc)


def file_status(path: str | Path, what: str) -> os.stat_result | None:
    """os.stat of the path (links followed), None where nothing is there; any other failure (a name too long,
    a folder that cannot be searched) is an InputError, never the traceback of Path.exists or is_dir."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise InputError(f"cannot use {what} {str(path)!r}: {os_reason(exc)}") from None
    except ValueError as exc:  # a NUL character in the path
        raise InputError(f"cannot use {what} {str(path)!r}: {exc}") from None


def _remove_quietly(path: Path) -> None:
    """Remove a temporary file on the way out of a failure; the failure, not this, is what gets reported."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


# -- inputs ---------------------------------------------------------------------------------------------

def check_input_file(path: str | Path, what: str) -> Path:
    """A readable, non-empty regular file, or an InputError saying what the path is instead."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise InputError(f"{what} {str(path)!r} is a symbolic link to a missing file") from None
        raise InputError(f"{what} {str(path)!r} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {str(path)!r}: {os_reason(exc)}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{what} {str(path)!r} is {_kind(info.st_mode)}, expected a file")
    if info.st_size == 0:
        raise InputError(f"{what} {str(path)!r} is an empty file")
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {what} {str(path)!r}: permission denied")
    return path


def read_bytes(path: str | Path, what: str) -> bytes:
    path = check_input_file(path, what)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {str(path)!r}: {os_reason(exc)}") from None


def read_text(path: str | Path, what: str) -> str:
    """The file as UTF-8 text; an InputError naming the first byte that is not UTF-8."""
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {str(path)!r} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                         f"{exc.start})") from None


def make_folder(folder: str | Path, described: str) -> Path:
    """mkdir -p folder; a failure is "cannot create <described>: <why>" (`described` names it for the user)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {described}: {os_reason(exc)}") from None
    return Path(folder)


# -- outputs --------------------------------------------------------------------------------------------

def write_output(path: str | Path, what: str, write: Callable[[IO], None], binary: bool = False) -> Path:
    """Write through `write(file object)` to what `path` names (see the module docstring); returns path."""
    path = Path(path)
    try:
        is_link = stat.S_ISLNK(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        is_link = False
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot write {what} {str(path)!r}: "
                         f"{os_reason(exc) if isinstance(exc, OSError) else exc}") from None
    target = Path(os.path.realpath(path)) if is_link else path
    try:
        info = target.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise InputError(f"cannot write {what} {str(path)!r}: {os_reason(exc)}") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise InputError(f"{what} {str(path)!r} is a folder, expected a file path")
    if info is not None and not stat.S_ISREG(info.st_mode):
        _write_through(path, target, what, write, binary)  # a device or a pipe cannot be replaced, only fed
        return path
    make_folder(target.parent, f"the folder for {what} {str(path)!r}")
    # the temporary name stays within the 255 bytes a name may have, however long the output's own name
    tmp = target.parent / f".{target.name.encode()[:200].decode(errors='ignore')}.{secrets.token_hex(4)}.tmp"
    try:
        # mode 0o666: the kernel applies the umask, as for any new file
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            if info is not None:  # replacing a file keeps its permissions
                os.chmod(fd, stat.S_IMODE(info.st_mode))
            with _open_fd(fd, binary) as fh:
                write(fh)
        except BaseException:
            _remove_quietly(tmp)
            raise
        os.replace(tmp, target)
    except OSError as exc:
        _remove_quietly(tmp)  # on a read-only file system the clean-up fails too: the first error is the one to say
        raise InputError(f"cannot write {what} {str(path)!r}: {os_reason(exc)}") from None
    return path


def check_writable(path: str | Path, what: str, folder: bool = False) -> Path:
    """Refuse, before any work, an output that could not be written: a folder where a file is expected (or
    the reverse), or a location whose nearest existing folder is read-only or not writable; one line."""
    path = Path(path)
    info = file_status(path, what)  # a folder that cannot be searched is a one-line error, not a traceback
    if info is not None:
        if folder != stat.S_ISDIR(info.st_mode):
            raise InputError(f"{what} {str(path)!r} is {'not a folder' if folder else 'a folder'}, expected "
                             f"{'a folder' if folder else 'a file path'}")
        probe = path if folder else path.parent
    else:
        probe = path.parent
        while file_status(probe, what) is None and probe != probe.parent:
            probe = probe.parent
        if not stat.S_ISDIR(file_status(probe, what).st_mode):
            raise InputError(f"cannot write {what} {str(path)!r}: {str(probe)!r} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK) or (path.is_file() and not os.access(path, os.W_OK)):
        try:
            read_only = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        why = "read-only file system" if read_only else "permission denied"
        raise InputError(f"cannot write {what} {str(path)!r}: {why} ({str(probe)!r})")
    return path


def _open_fd(fd: int, binary: bool) -> IO:
    return os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")


def _write_through(path: Path, target: Path, what: str, write, binary: bool) -> None:
    try:
        with open(target, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as fh:
            write(fh)
    except OSError as exc:
        raise InputError(f"cannot write {what} {str(path)!r}: {os_reason(exc)}") from None


def write_text(path: str | Path, text: str, what: str = "output") -> Path:
    return write_output(path, what, lambda fh: fh.write(text))
