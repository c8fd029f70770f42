"""Single key presses from the terminal, without Enter and without echo (cbreak mode).

`terminal_keys()` puts the terminal in cbreak mode and always puts it back as it was,
also when a signal ends the session (signals arrive as exceptions and pass through the
`finally`). Ctrl-C keeps working: cbreak mode leaves signal keys alone. Ctrl-Z hands
the terminal back to the shell as it was, and `fg` takes it again.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

# Arrow and function keys send escape sequences ("\x1b[B" is the down arrow): dropped
# whole, so that their last letter is not taken for a command key.
_ESCAPE_SEQUENCE = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|O.|.)?", re.DOTALL)


class TerminalKeys:
    """Keys from a terminal in cbreak mode. sleep() waits, but wakes at once on a key press."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._pending: deque[str] = deque()
        self._closed = False

    def read(self) -> str | None:
        """The next key pressed, or None; never blocks."""
        if not self._pending and not self._closed:
            self._take(0.0)
        return self._pending.popleft() if self._pending else None

    def sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`; return early when a key arrives (read() then has it)."""
        if self._pending or seconds <= 0:
            return
        if self._closed:
            time.sleep(seconds)
        else:
            self._take(seconds)

    def _take(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return
        data = os.read(self.fd, 64)
        if not data:
            self._closed = True  # end of input: no more keys, sleep normally from now on
            return
        text = _ESCAPE_SEQUENCE.sub("", data.decode("utf-8", errors="ignore"))
        self._pending.extend(text)


def keys_available(stream: IO[str]) -> bool:
    """True when `stream` is a terminal we may switch to cbreak: ours, in the foreground.

    A background job that touched the terminal mode would be stopped by SIGTTOU.
    """
    try:
        fd = stream.fileno()
        return os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp()
    except (AttributeError, OSError, ValueError):
        return False


@contextmanager
def terminal_keys(stream: IO[str] | None = None) -> Iterator[TerminalKeys | None]:
    """Key presses from `stream` (stdin) while in the block; None when it is not a usable terminal."""
    stream = stream if stream is not None else sys.stdin
    if not keys_available(stream):
        yield None
        return
    import termios
    import tty

    fd = stream.fileno()
    saved = termios.tcgetattr(fd)

    def suspend(signum, frame) -> None:
        # Ctrl-Z: give the shell its terminal back as it was, stop, and on `fg` take it again.
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stops here until SIGCONT
        signal.signal(signal.SIGTSTP, suspend)
        tty.setcbreak(fd, termios.TCSANOW)

    previous = signal.signal(signal.SIGTSTP, suspend) if _main_thread() else None
    try:
        tty.setcbreak(fd, termios.TCSANOW)
        yield TerminalKeys(fd)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTSTP, previous)
        # TCSAFLUSH also drops keys typed but not read, so they do not reach the shell.
        # A terminal that has hung up (SIGHUP) cannot be restored, nor does it need to be.
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(fd, termios.TCSAFLUSH, saved)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
