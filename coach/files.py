"""Writing output files so that nothing is ever half-written or overwritten by surprise.

Everything goes to a temporary file beside the target and is renamed over it only when
complete; a failure, Ctrl-C or SIGTERM on the way removes the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from coach import signals
from coach.errors import ExportError


def check_target(path: Path | str, *, force: bool, example: str = "session.wav") -> None:
    """Fail early, before any work, when the output cannot or should not be written.

    `path` as the user gave it: a name ending in / names a folder."""
    written = str(path)
    if not written:  # Path("") is ".", which would be called a folder, with "/session.wav" as the example
        raise ExportError("the output file name is empty; give one, e.g. -o session.wav")
    if "\0" in written:  # pathlib answers False for such a name rather than fail
        raise ExportError(f"{_shortened(written)!r} is not a usable file name (it contains a NUL character)")
    try:
        _check_target(Path(path), written, force, example)
    except OSError as err:  # the name itself: too long, or a component the system refuses
        if err.errno == errno.ENAMETOOLONG:
            raise ExportError(f"the file name {_shortened(written)!r} is too long for the file system; "
                              "choose a shorter one") from None
        raise ExportError(f"cannot use {_shortened(written)!r} as the output: {err.strerror or err}; "
                          "choose another place") from None


def _check_target(path: Path, written: str, force: bool, example: str) -> None:
    if written.endswith(("/", os.sep)) or path.is_dir():
        shown = written if written.endswith(("/", os.sep)) else f"{written}{os.sep}"
        raise ExportError(f"{written} is a folder; give a file name, e.g. {shown}{example}")
    if path.exists():
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            # Replacing it would put a regular file where a device or pipe was (as root, /dev/null).
            raise ExportError(f"{written} is {special_kind(mode)}, not a regular file; coach writes only "
                              "files: give a file name (a text format can go to standard output with -o -)")
        if not force:
            raise ExportError(f"{written} already exists; use --force to overwrite it or choose another name")
    folder = _final_path(path).parent
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} is a file, not a folder; choose another place for {path.name}")
    if not folder.is_dir():
        raise ExportError(f"folder {folder} does not exist; create it first or choose another place")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"folder {folder} is not writable; choose another place for {path.name}")


def file_in_the_way(path: Path) -> Path | None:
    """The first of `path` and the folders above it that is a file, so that `path` cannot be
    a folder (or lie in one); None when there is none."""
    return next((p for p in (path, *path.parents) if p.is_file()), None)


def special_kind(mode: int) -> str:
    """What a path that is neither a file nor a folder is, for a message."""
    kinds = [(stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]
    return next((name for test, name in kinds if test(mode)), "not a file")


def _final_path(path: Path) -> Path:
    """Where a write to `path` lands: a symbolic link's target (the link itself stays)."""
    if not path.is_symlink():
        return path
    try:
        return path.resolve()
    except RuntimeError:  # a loop of links (Python before 3.13; 3.13 resolves it as far as it goes)
        raise ExportError(f"{path} is a symbolic link that loops back on itself; remove it or "
                          "choose another name") from None


def _temp_stem(name: str, limit: int = 200) -> str:
    """`name` cut (at a character) to `limit` bytes, so that the temporary `.NAME.xxxxxxxx.part`
    stays within the 255 bytes of a file name even when NAME itself is close to them."""
    while len(os.fsencode(name)) > limit:
        name = name[:-1]
    return name


def _shortened(text: str, keep: int = 60) -> str:
    return text if len(text) <= keep else f"{text[:keep // 2]}…{text[-keep // 2:]}"


@contextmanager
def atomic_writer(path: Path | str, *, force: bool) -> Iterator[BinaryIO]:
    """A binary file object that becomes `path` only if the block finishes without error.
    `path` may be a symbolic link: the file it points to is replaced, the link kept."""
    check_target(path, force=force)
    path = _final_path(Path(path))
    folder = path.parent if str(path.parent) else Path(".")
    tmp: Path | None = None
    try:
        with signals.deferred():  # a stop right after mkstemp would leave a .part file nobody knows of
            try:
                fd, tmp_name = tempfile.mkstemp(prefix=f".{_temp_stem(path.name)}.", suffix=".part", dir=folder)
            except OSError as err:
                raise ExportError(f"cannot write in {folder}: {err.strerror}; choose another place") from None
            tmp = Path(tmp_name)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists() and not force:  # appeared while we worked
            raise ExportError(f"{path} appeared while exporting; use --force to overwrite it")
        signals.raise_if_stopped()  # a stop whose exception was lost: nothing is written after it
        os.chmod(tmp, 0o644 & ~_umask())
        if force:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
        _remove_stale_parts(folder, path.name)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        full = err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
        fix = "free some space or choose another place" if full else "choose another place"
        raise ExportError(f"cannot write {path}: {err.strerror or err}; nothing was written; {fix}") from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


# A `.NAME.xxxxxxxx.part` this old is no running export's (an hour's session takes seconds to
# write) but what a killed one (kill -9, a power cut) left: the next write of NAME removes it.
STALE_PART_SECONDS = 3600.0


def _remove_stale_parts(folder: Path, name: str) -> None:
    prefix = f".{_temp_stem(name)}."
    cutoff = time.time() - STALE_PART_SECONDS
    with contextlib.suppress(OSError):
        with os.scandir(folder) as entries:
            for entry in entries:
                if (entry.name.startswith(prefix) and entry.name.endswith(".part")
                        and len(entry.name) == len(prefix) + 8 + len(".part")):  # mkstemp's 8 letters
                    with contextlib.suppress(OSError):
                        if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                            os.unlink(entry.path)


def _publish_new(tmp: Path, path: Path) -> None:
    """Give the whole file `tmp` the name `path`, which must still be free: a hard link fails
    where a rename would replace a file that another export (or anyone) put there since the
    check above. Without hard links (FAT, some network file systems) a rename, checked just before."""
    with signals.deferred():  # the name given and the temporary one removed, both or neither
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise ExportError(f"{path} appeared while exporting; use --force to overwrite it") from None
        except OSError:
            if path.exists():
                raise ExportError(f"{path} appeared while exporting; use --force to overwrite it") from None
            os.replace(tmp, path)
            return
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes, *, force: bool) -> None:
    with atomic_writer(path, force=force) as handle:
        handle.write(data)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def discard_stream(stream) -> None:
    """Point a standard stream's descriptor at /dev/null, once its reader has gone (a closed
    pipe, a full disk): Python flushes it again at exit, and a second failure there would print
    "Exception ignored" and change the exit code to 120."""
    with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)


def open_without_waiting(path, flags: int) -> int:
    """An `opener` for open(): a named pipe put where a file was expected does not hang it."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def read_if_regular(path: Path | str) -> bytes | None:
    """The file's bytes, or None when `path` is not a regular file: opened without waiting,
    so a named pipe in its place does not hang the command (nor a device such as /dev/zero,
    behind a link, fill the memory). For coach's own files, such as the speech cache's."""
    with open(path, "rb", opener=open_without_waiting) as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read()
