"""Every file symcost writes goes through :func:`write_atomic`, and every file it reads through :func:`read_limited`.

A write never leaves a half-written file: the bytes go to a temporary file in the target's own
folder, are flushed to disk (``fsync``), and only then renamed over the target (``os.replace``,
atomic on POSIX within one file system). On any failure (a full disk, no permission, Ctrl-C) the
temporary file is removed and the old target, if any, is left as it was. A write that would
replace one of the command's own inputs is refused.

>>> import tempfile, os
>>> folder = tempfile.mkdtemp()
>>> target = os.path.join(folder, "out.csv")
>>> write_atomic(target, "H,flops\\n224,4\\n")
'...out.csv'
>>> open(target).read(), sorted(os.listdir(folder))
('H,flops\\n224,4\\n', ['out.csv'])
>>> write_atomic(target, "x", inputs=[target])
Traceback (most recent call last):
...
symcost.errors.UsageError: --output: refusing to overwrite the input '...out.csv'
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import Location, SymcostError, UsageError

#: Inputs symcost reads are at most this many bytes unless the reader says otherwise.
MAX_READ_BYTES = 1_000_000


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    return exc.strerror or str(exc)


def _same_file(a: Path, b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_inputs(path: str | os.PathLike[str] | None, inputs: Iterable[Any], option: str = "--output") -> None:
    """Refuse an output ``path`` that is one of ``inputs`` (the same file under any name): writing it
    would destroy what the command read. Commands call it before any work; :func:`write_atomic` again."""
    if not path:
        return
    for source in inputs:
        if isinstance(source, (str, os.PathLike)) and _same_file(Path(path), source):
            raise UsageError(f"refusing to overwrite the input '{path}'", Location(option))


def write_atomic(
    path: str | os.PathLike[str],
    data: str | bytes | Callable[[Any], None],
    *,
    inputs: Iterable[Any] = (),
    option: str = "--output",
) -> str:
    """Write ``data`` to ``path`` atomically and return the path as given (for "wrote PATH").

    ``data`` is text (written as UTF-8), bytes, or a function that writes to the open binary file
    (a plot's ``savefig``). ``inputs`` are the files the command read: writing over one of them is
    refused. ``option`` names the option in errors (``--output``, ``--plot``).
    """
    target = Path(path)
    shown = str(path)
    loc = Location(option)
    if target.is_dir():
        raise UsageError(f"cannot write '{shown}': it is a directory", loc)
    refuse_inputs(path, inputs, option)
    if target.exists() and not stat.S_ISREG(os.stat(target).st_mode):
        raise UsageError(f"cannot write '{shown}': not a regular file", loc)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"cannot write '{shown}': no directory '{folder}'", loc)
    temp: str | None = None
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        mode = 0o666 & ~_umask()
        if target.exists():
            mode = stat.S_IMODE(os.stat(target).st_mode)
        os.chmod(temp, mode)
        os.replace(temp, target)
        temp = None
    except OSError as exc:
        raise UsageError(f"cannot write '{shown}': {_reason(exc)}", loc) from None
    except SymcostError as exc:
        raise UsageError(f"cannot write '{shown}': {exc.message}", loc) from None
    finally:
        if temp is not None:
            try:
                os.unlink(temp)
            except OSError:
                pass
    return shown


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_limited(path: str | os.PathLike[str], limit: int = MAX_READ_BYTES, *, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, never blocking.

    A FIFO, a device (``/dev/zero``, whose size reads as 0 and which never ends), a socket or a
    directory is refused before it is opened for reading; the file is opened non-blocking and
    read to ``limit + 1`` bytes at most, so a file that grows or lies about its size is caught.
    Errors are :class:`OSError`-free: each is a ``ValueError`` with the user's words, for the
    caller to locate.
    """
    info = os.stat(path)  # FileNotFoundError etc. are the caller's to word
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"not a regular {what} (a FIFO, a device or a socket cannot be read)")
    if info.st_size > limit:
        raise ValueError(f"{what} is larger than {limit:,} bytes")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # swapped after the stat
            raise ValueError(f"not a regular {what} (a FIFO, a device or a socket cannot be read)")
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise ValueError(f"{what} is larger than {limit:,} bytes")
    return raw
