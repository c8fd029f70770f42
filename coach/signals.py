"""Ctrl-C and SIGTERM as exceptions, so clean-up code (temporary files, the terminal, the
sound device) always runs, and the command can exit 130 or 143 with one line."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Interrupted(KeyboardInterrupt):
    """Ctrl-C. A subclass because CPython 3.11 remembers a plain KeyboardInterrupt raised inside
    exec'd code (dataclasses and pydantic build classes that way while they load) and, even
    once it is handled, ends the process by SIGINT instead of with the exit code chosen."""


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt (not an Exception, so nothing swallows it)."""


def raise_interrupted(signum, frame) -> None:
    raise Interrupted()


def raise_terminated(signum, frame) -> None:
    raise Terminated()


def exit_code(stop: BaseException) -> int:
    return EXIT_SIGTERM if isinstance(stop, Terminated) else EXIT_SIGINT


def install() -> None:
    """From now on Ctrl-C raises Interrupted and SIGTERM Terminated (unless Ctrl-C is ignored,
    e.g. under nohup: then it stays ignored)."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, raise_interrupted)
    signal.signal(signal.SIGTERM, raise_terminated)


@contextmanager
def as_exceptions() -> Iterator[None]:
    """install() for the duration of the block; the previous handlers come back after."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    install()
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
