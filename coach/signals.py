"""Ctrl-C, SIGTERM and SIGHUP as exceptions, so clean-up code (temporary files, the terminal,
the sound device, a speech helper) always runs, and the command can exit 130, 143 or 129 with
one line. SIGHUP comes when the terminal goes away (a closed window, a dropped ssh link):
without a handler Python would die on the spot and leave a half-written `.part` file."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_SIGINT = 130
SIGHUP = getattr(signal, "SIGHUP", None)  # POSIX only


class Interrupted(KeyboardInterrupt):
    """Ctrl-C. A subclass because CPython 3.11 remembers a plain KeyboardInterrupt raised inside
    exec'd code (dataclasses and pydantic build classes that way while they load) and, even
    once it is handled, ends the process by SIGINT instead of with the exit code chosen."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised like KeyboardInterrupt (not an Exception, so nothing swallows it)."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def reason(self) -> str:
        """For "Stopped (...)": what ended the command."""
        return "hung up" if self.signum == SIGHUP else "terminated"


def raise_interrupted(signum, frame) -> None:
    raise Interrupted()


def raise_terminated(signum, frame) -> None:
    raise Terminated(signum)


def stop_behind(err: BaseException) -> BaseException | None:
    """The Ctrl-C or Terminated that ended the command, if `err` is one or hides one.

    After SIGHUP the terminal is gone: a write to it fails with OSError (EIO) in the clean-up
    that Terminated set off (rich restoring the cursor, say), and that OSError would take
    Terminated's place. It is still a stop by the signal, not a crash.
    """
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, (KeyboardInterrupt, Terminated)):
            return err
        if not isinstance(err, OSError):
            return None
        seen.add(id(err))
        err = err.__context__
    return None


def exit_code(stop: BaseException) -> int:
    """130 for Ctrl-C, 128 + the signal's number otherwise (143 SIGTERM, 129 SIGHUP), as shells do."""
    return 128 + stop.signum if isinstance(stop, Terminated) else EXIT_SIGINT


_ENDING = [sig for sig in (signal.SIGTERM, SIGHUP) if sig is not None]


def install() -> None:
    """From now on Ctrl-C raises Interrupted, SIGTERM and SIGHUP Terminated. A signal that is
    ignored stays ignored: Ctrl-C in a background job, SIGHUP under nohup."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, raise_interrupted)
    signal.signal(signal.SIGTERM, raise_terminated)
    if SIGHUP is not None and signal.getsignal(SIGHUP) is not signal.SIG_IGN:
        signal.signal(SIGHUP, raise_terminated)


@contextmanager
def as_exceptions() -> Iterator[None]:
    """install() for the duration of the block; the previous handlers come back after."""
    saved = {sig: signal.getsignal(sig) for sig in [signal.SIGINT, *_ENDING]}
    install()
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
