"""Stand-ins for failing I/O and counting wrappers, shared by several test files."""

from __future__ import annotations

import errno
import os


class FullDisk:
    """A file object that runs out of space after `room` bytes, like a full disk."""

    def __init__(self, real, room: int) -> None:
        self.real, self.room, self.written = real, room, 0
        self.full = False

    def write(self, data) -> int:
        if self.full or self.written + len(data) > self.room:
            self.full = True
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += len(data)
        return self.real.write(data)

    def seek(self, *args) -> int:
        # A buffered file flushes what it holds before it moves: on a full disk that fails too.
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.real.seek(*args)

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.real.close()


def count_renders(monkeypatch, engine) -> list[str]:
    """Every text `engine` is asked to render from now on in the test (it still renders them)."""
    real_render = engine.render
    calls: list[str] = []

    def counting_render(text, voice, speed):
        calls.append(text)
        return real_render(text, voice, speed)

    monkeypatch.setattr(engine, "render", counting_render)
    return calls
