"""Whether a path names a file that can be read, as the end of a sentence for an error.

Used for routine files (load.py) and for the chime files a routine names (validate.py).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from coach.files import special_kind

MISSING = "does not exist"
FOLDER = "is a folder, not a file"
NOT_REGULAR = "is not a regular file"


def file_problem(path: Path) -> str | None:
    """Why `path` is not a file that can be opened, as the end of a sentence; None when it is."""
    try:
        info = os.stat(path)
    except ValueError:
        return "is not a usable path (it contains a NUL character)"
    except OSError as err:
        if err.errno == errno.ENOENT and os.path.islink(path):
            return "is a broken symbolic link (it points to a file that does not exist)"
        return os_problem(err)
    if stat.S_ISDIR(info.st_mode):
        return FOLDER
    if not stat.S_ISREG(info.st_mode):
        # Opening a pipe waits for a writer, and a device may never end: not even opened.
        return f"{NOT_REGULAR} but {special_kind(info.st_mode)}"
    return None


def os_problem(err: OSError) -> str:
    return {
        errno.ENOENT: MISSING,
        errno.ENOTDIR: "does not exist (part of its path is a file, not a folder)",
        errno.ELOOP: "is a symbolic link loop (links that point back to each other); fix or remove the link",
        errno.ENAMETOOLONG: "has a name too long for the file system",
        errno.EACCES: "cannot be read: permission denied; check the file's permissions",
        errno.EPERM: "cannot be read: permission denied; check the file's permissions",
        errno.EISDIR: FOLDER,
    }.get(err.errno, f"cannot be read: {err.strerror or err}")


def is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False

