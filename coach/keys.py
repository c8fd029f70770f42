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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

# Arrow and function keys send escape sequences ("\x1b[B" is the down arrow): dropped
# whole, so that their last letter is not taken for a command key.
_ESCAPE_SEQUENCE = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|O.|.)?", re.DOTALL)


class Resumed(str):
    """What read() gives after the process was stopped (Ctrl-Z) and taken up again (fg):
    the Ctrl-Z character, with the clock times (time.monotonic) it stopped and went on at.
    A session goes on as after a pause of that length: the device's sound and the clock
    that places it both stood still meanwhile, but not by the same amount."""

    stopped_at: float
    resumed_at: float

    def __new__(cls, stopped_at: float, resumed_at: float) -> Resumed:
        marker = super().__new__(cls, SUSPEND_KEY)
        marker.stopped_at, marker.resumed_at = stopped_at, resumed_at
        return marker


SUSPEND_KEY = "\x1a"  # Ctrl-Z: with ISIG on (cbreak mode) it never arrives as a key itself


class TerminalKeys:
    """Keys from a terminal in cbreak mode. sleep() waits, but wakes at once on a key press."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._pending: deque[str] = deque()
        self._closed = False
        # Whether the terminal's cursor is hidden now (by the live panel): shown while Ctrl-Z has
        # the process stopped, so that the shell's prompt has one, and hidden again on `fg`.
        self.cursor_hidden: Callable[[], bool] = lambda: False
        # Written to by wake() (a signal handler): a sleep in select() ends at once.
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)

    def wake(self, key: str) -> None:
        """Put `key` first in line and end the current sleep (safe in a signal handler)."""
        self._pending.appendleft(key)
        with contextlib.suppress(OSError):  # full: a wake-up is already on its way
            os.write(self._wake_write, b"!")

    def close(self) -> None:
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def read(self) -> str | None:
        """The next key pressed, or None; never blocks."""
        if not self._pending and not self._closed:
            self._take(0.0)
        return self._pending.popleft() if self._pending else None

    def sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`; return early when a key arrives (read() then has it)."""
        if self._pending or seconds <= 0:
            return
        self._take(seconds)

    def _take(self, timeout: float) -> None:
        # After the end of input only a wake-up can end the sleep early.
        watched = [self._wake_read] if self._closed else [self.fd, self._wake_read]
        ready, _, _ = select.select(watched, [], [], timeout)
        if self._wake_read in ready:
            with contextlib.suppress(OSError):
                os.read(self._wake_read, 64)
        if self.fd not in ready:
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
    keys = TerminalKeys(fd)

    def suspend(signum, frame) -> None:
        # Ctrl-Z: give the shell its terminal back as it was, stop, and on `fg` take it again;
        # then tell the reader of the keys when it stopped.
        hidden = keys.cursor_hidden()
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        if hidden:
            _write_terminal(fd, SHOW_CURSOR)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        # The times on either side of the stop itself: the sound plays on while the terminal's
        # output drains, and the hold must lose neither that nor the terminal set-up after fg.
        stopped_at = time.monotonic()
        os.kill(os.getpid(), signal.SIGTSTP)  # stops here until SIGCONT
        resumed_at = time.monotonic()
        signal.signal(signal.SIGTSTP, suspend)
        tty.setcbreak(fd, termios.TCSANOW)
        if hidden:
            _write_terminal(fd, HIDE_CURSOR)
        keys.wake(Resumed(stopped_at, resumed_at))

    previous = signal.signal(signal.SIGTSTP, suspend) if _main_thread() else None
    try:
        tty.setcbreak(fd, termios.TCSANOW)
        yield keys
    finally:
        if previous is not None:
            signal.signal(signal.SIGTSTP, previous)
        keys.close()
        # TCSAFLUSH also drops keys typed but not read, so they do not reach the shell.
        # A terminal that has hung up (SIGHUP) cannot be restored, nor does it need to be.
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(fd, termios.TCSAFLUSH, saved)


SHOW_CURSOR, HIDE_CURSOR = b"\x1b[?25h", b"\x1b[?25l"


def _write_terminal(fd: int, data: bytes) -> None:
    """Straight to the terminal (the keys' own descriptor: standard output may be pointed
    elsewhere by a speech render just now); a terminal that cannot take it is left as it is."""
    with contextlib.suppress(OSError):
        os.write(fd, data)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
