"""Writing output files so that nothing is ever half-written or overwritten by surprise.

Everything goes to a temporary file beside the target and is renamed over it only when
complete; a failure, Ctrl-C or SIGTERM on the way removes the temporary file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from coach import signals
from coach.errors import ExportError


def check_target(path: Path, *, force: bool) -> None:
    """Fail early, before any work, when the output cannot or should not be written."""
    if path.is_dir():
        raise ExportError(f"{path} is a folder; give a file name, e.g. {path / 'session.wav'}")
    if path.exists() and not force:
        raise ExportError(f"{path} already exists; use --force to overwrite it or choose another name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"folder {folder} does not exist; create it first or choose another place")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"folder {folder} is not writable; choose another place for {path.name}")


@contextmanager
def atomic_writer(path: Path, *, force: bool) -> Iterator[BinaryIO]:
    """A binary file object that becomes `path` only if the block finishes without error."""
    path = Path(path)
    check_target(path, force=force)
    folder = path.parent if str(path.parent) else Path(".")
    tmp: Path | None = None
    try:
        with signals.deferred():  # a stop right after mkstemp would leave a .part file nobody knows of
            try:
                fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
            except OSError as err:
                raise ExportError(f"cannot write in {folder}: {err.strerror}") from None
            tmp = Path(tmp_name)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists() and not force:  # appeared while we worked
            raise ExportError(f"{path} appeared while exporting; use --force to overwrite it")
        signals.raise_if_stopped()  # a stop whose exception was lost: nothing is written after it
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"cannot write {path}: {err.strerror or err}; nothing was written") from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes, *, force: bool) -> None:
    with atomic_writer(path, force=force) as handle:
        handle.write(data)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
