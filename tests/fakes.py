"""Stand-ins for failing I/O, shared by the export and robustness tests."""

from __future__ import annotations

import errno
import os


class FullDisk:
    """A file object that runs out of space after `room` bytes, like a full disk."""

    def __init__(self, real, room: int) -> None:
        self.real, self.room, self.written = real, room, 0

    def write(self, data) -> int:
        if self.written + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += len(data)
        return self.real.write(data)

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.real.close()
