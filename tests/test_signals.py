"""coach.signals: which signals stop coach, with which exit code, and what hides behind an OSError."""

from __future__ import annotations

import errno
import os
import signal

import pytest

from coach import signals


def _raised_while_handling(first: BaseException, second: BaseException) -> BaseException:
    try:
        try:
            raise first
        except BaseException:
            raise second
    except BaseException as err:
        return err


@pytest.mark.parametrize("stop, code", [(signals.Interrupted(), 130), (signals.Terminated(signal.SIGTERM), 143),
                                        (signals.Terminated(signal.SIGHUP), 129)])
def test_exit_codes_are_what_a_shell_shows(stop, code):
    assert signals.exit_code(stop) == code


def test_a_failed_write_after_a_hang_up_is_still_the_hang_up():
    hang_up = signals.Terminated(signal.SIGHUP)
    masked = _raised_while_handling(hang_up, OSError(errno.EIO, os.strerror(errno.EIO)))
    assert signals.stop_behind(masked) is hang_up
    assert hang_up.reason == "hung up" and signals.Terminated().reason == "terminated"


def test_other_errors_are_not_taken_for_a_stop():
    assert signals.stop_behind(OSError(errno.ENOSPC, "No space left on device")) is None
    # An error raised on purpose while reporting a stop (the CLI's exit) is not a new stop.
    assert signals.stop_behind(_raised_while_handling(signals.Interrupted(), SystemExit(130))) is None
    assert signals.stop_behind(_raised_while_handling(signals.Interrupted(), ValueError("bug"))) is None


def test_an_ignored_hang_up_stays_ignored_as_under_nohup():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signals.install()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signals.install()
        assert signal.getsignal(signal.SIGHUP) is signals.raise_terminated
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
