"""Ctrl-C, SIGTERM, SIGHUP and SIGQUIT as exceptions, so clean-up code (temporary files, the
terminal, the sound device, a speech helper) always runs, and the command can exit 130, 143,
129 or 131 with one line. SIGHUP comes when the terminal goes away (a closed window, a dropped
ssh link), SIGQUIT from Ctrl-\\: without a handler Python would die on the spot (SIGQUIT with
a core dump) and leave a half-written `.part` file and the terminal in the session's key mode.

An exception raised by a signal handler does not always survive: CPython drops it when it
lands in the compiler's constant folding (only KeyboardInterrupt is kept there), in the
import machinery's lock clean-up or in an atexit callback ("Exception ignored in ..."). So
the handler records the stop before it raises, and the places that commit something (the
final rename of an output, a speech cache entry, the end of a command) call
raise_if_stopped(): a stop is never lost, and nothing is written after it.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

EXIT_SIGINT = 130
SIGHUP = getattr(signal, "SIGHUP", None)  # POSIX only
SIGQUIT = getattr(signal, "SIGQUIT", None)  # POSIX only


class Interrupted(KeyboardInterrupt):
    """Ctrl-C. A subclass because CPython 3.11 remembers a plain KeyboardInterrupt raised inside
    exec'd code (dataclasses and pydantic build classes that way while they load) and, even
    once it is handled, ends the process by SIGINT instead of with the exit code chosen."""


class Terminated(BaseException):
    """SIGTERM, SIGHUP or SIGQUIT, raised like KeyboardInterrupt (not an Exception, so nothing swallows it)."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def reason(self) -> str:
        """For "Stopped (...)": what ended the command."""
        return {SIGHUP: "hung up", SIGQUIT: "quit signal"}.get(self.signum, "terminated")


# The first stopping signal that arrived and has not been reported yet (its number), or None.
_recorded: int | None = None
_deferring = 0  # depth of deferred() blocks in the main thread
# Not empty once Python exits (see only_record_from_now): a list, so that a C function
# (its bound append) can fill it without running Python code a handler could cut short.
_exiting: list[bool] = []


# Called (with no argument) from the handler the moment a stop arrives, before anything can
# drop it: a speech helper process is told to stop there, so it does not go on filling the
# cache while this process unwinds (which, on a busy machine, can take a second).
_on_stop: list[Callable[[], None]] = []


def record(signum: int) -> None:
    global _recorded
    if _recorded is None:
        _recorded = signum
    for hook in list(_on_stop):
        try:
            hook()
        except Exception:  # a hook's failure must not hide the stop  # noqa: BLE001
            pass


@contextmanager
def calling_on_stop(hook: Callable[[], None]) -> Iterator[None]:
    """Inside the block, a stopping signal calls `hook()` from its handler (keep it tiny: os.kill)."""
    _on_stop.append(hook)
    try:
        yield
    finally:
        _on_stop.remove(hook)


def raise_interrupted(signum, frame) -> None:
    record(signum)
    if not _deferring and not _exiting and not _stop_in_flight():
        raise Interrupted()


def raise_terminated(signum, frame) -> None:
    record(signum)
    if not _deferring and not _exiting and not _stop_in_flight():
        raise Terminated(signum)


def _stop_in_flight() -> bool:
    """Whether the code the handler interrupted is already unwinding from a stop (in an
    `except`, a `finally` or an `__exit__` it set off, where sys.exc_info() shows it to a
    handler). A second Ctrl-C there only adds to the record: raised, it cut that clean-up
    short (a sound device left open hung the exit; a terminal stayed raw). When the first
    exception was dropped, nothing is unwinding, and the next signal raises as usual."""
    err = sys.exc_info()[1]
    for _ in range(20):  # a chain this long is no stop's
        if err is None:
            return False
        if isinstance(err, (KeyboardInterrupt, Terminated)):
            return True
        err = err.__cause__ or err.__context__
    return False


# For atexit, called with True: from then on a handler only records its stop and raises nothing,
# so the check at exit cannot itself be cut short (an atexit callback's exception is dropped).
only_record_from_now = _exiting.append


def _as_exception(signum: int) -> BaseException:
    return Interrupted() if signum == signal.SIGINT else Terminated(signum)


def recorded_stop() -> BaseException | None:
    """A new exception for the stop that was recorded, whether or not its first one survived."""
    return _as_exception(_recorded) if _recorded is not None else None


def raise_if_stopped() -> None:
    """Raise the recorded stop again, in case Python dropped the handler's exception.

    Only in the main thread, where signal handlers run: a worker thread that checks goes on,
    and the main thread stops at its own next check.
    """
    if _recorded is not None and threading.current_thread() is threading.main_thread():
        raise _as_exception(_recorded)


@contextmanager
def deferred() -> Iterator[None]:
    """A few lines that a stop must not cut in two, such as making a temporary file and
    remembering its name, or writing one and then removing it: inside the block a signal is
    only recorded, and raised when the block ends (unless an exception already ends it)."""
    global _deferring
    if threading.current_thread() is not threading.main_thread():  # handlers run in the main thread only
        yield
        return
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    raise_if_stopped()


def forget() -> None:
    """The stop was reported (or a test is done with it): the next check does not raise again."""
    global _recorded
    _recorded = None


def stop_behind(err: BaseException) -> BaseException | None:
    """The Ctrl-C or Terminated that ended the command, if `err` is one or hides one.

    After SIGHUP the terminal is gone: a write to it fails with OSError (EIO) in the clean-up
    that Terminated set off (rich restoring the cursor, say), and that OSError would take
    Terminated's place. It is still a stop by the signal, not a crash. So is an error that
    names the stop as its cause: Python wraps an exception raised inside a class's
    `__set_name__` in a RuntimeError, and a signal can land there while a module loads. Any
    other error raised while a stop was being handled is a bug of its own, not a stop.
    """
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, (KeyboardInterrupt, Terminated)):
            return err
        seen.add(id(err))
        if err.__cause__ is not None:
            err = err.__cause__
        elif isinstance(err, OSError):
            err = err.__context__
        else:
            return None
    return None


def exit_code(stop: BaseException) -> int:
    """130 for Ctrl-C, 128 + the signal's number otherwise (143 SIGTERM, 129 SIGHUP, 131 SIGQUIT), as shells do."""
    return 128 + stop.signum if isinstance(stop, Terminated) else EXIT_SIGINT


_ENDING = [sig for sig in (signal.SIGTERM, SIGHUP, SIGQUIT) if sig is not None]
STOPPING = [signal.SIGINT, *_ENDING]  # every signal that stops a command cleanly


def install() -> None:
    """From now on Ctrl-C raises Interrupted, SIGTERM, SIGHUP and SIGQUIT Terminated. A signal
    that is ignored stays ignored: Ctrl-C in a background job, SIGHUP under nohup."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, raise_interrupted)
    signal.signal(signal.SIGTERM, raise_terminated)
    for sig in (SIGHUP, SIGQUIT):
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, raise_terminated)


@contextmanager
def as_exceptions() -> Iterator[None]:
    """install() for the duration of the block; the previous handlers come back after.

    When the block is the outermost (in a program that has handlers of its own, such as
    pytest), a stop recorded inside it is forgotten at its end: it belonged to the block.
    """
    saved = {sig: signal.getsignal(sig) for sig in [signal.SIGINT, *_ENDING]}
    outermost = saved[signal.SIGTERM] is not raise_terminated
    install()
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if outermost:
            forget()
