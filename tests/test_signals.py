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
                                        (signals.Terminated(signal.SIGHUP), 129),
                                        (signals.Terminated(signal.SIGQUIT), 131)])
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
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
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


def test_ctrl_backslash_stops_coach_like_sigterm_so_that_its_clean_up_runs():
    # SIGQUIT's default action ends the process on the spot: a live session's terminal was left
    # without echo and with its cursor hidden, and nothing said where the session stopped.
    def quit_signal():
        assert signal.getsignal(signal.SIGQUIT) is signals.raise_terminated  # else it ends pytest itself
        with pytest.raises(signals.Terminated) as raised:
            signal.raise_signal(signal.SIGQUIT)
        assert raised.value.signum == signal.SIGQUIT and raised.value.reason == "quit signal"
        assert signals.exit_code(raised.value) == 131
        signals.forget()

    _with_our_handlers(quit_signal)
    assert signal.getsignal(signal.SIGQUIT) is not signals.raise_terminated  # put back after


def _with_our_handlers(body):
    """Run body() with coach's handlers installed; pytest's come back after, the record is clean."""
    try:
        with signals.as_exceptions():
            return body()
    finally:
        assert signals.recorded_stop() is None


def test_a_stop_is_recorded_before_it_is_raised_and_raised_again_on_request():
    def drop_a_terminate_then_check():
        try:
            signal.raise_signal(signal.SIGTERM)
        except signals.Terminated:
            pass  # as CPython's constant folder or import lock clean-up would
        assert isinstance(signals.recorded_stop(), signals.Terminated)
        with pytest.raises(signals.Terminated) as raised:
            signals.raise_if_stopped()
        assert raised.value.signum == signal.SIGTERM
        signals.forget()
        signals.raise_if_stopped()  # reported: no second stop

    _with_our_handlers(drop_a_terminate_then_check)


def test_the_first_stop_is_the_one_kept():
    def two_signals():
        for sig in (signal.SIGHUP, signal.SIGINT):
            with pytest.raises((signals.Terminated, KeyboardInterrupt)):
                signal.raise_signal(sig)
        assert signals.exit_code(signals.recorded_stop()) == 129

    _with_our_handlers(two_signals)


def test_a_stop_calls_the_hooks_from_the_handler_even_when_its_exception_is_dropped():
    calls = []

    def dropped_stop():
        with signals.calling_on_stop(lambda: calls.append("told")):
            try:
                signal.raise_signal(signal.SIGHUP)
            except signals.Terminated:
                pass  # dropped, as in CPython's constant folder
            assert calls == ["told"]  # already, before anything checks the record
        signals.forget()
        with pytest.raises(signals.Terminated):
            signal.raise_signal(signal.SIGTERM)
        assert calls == ["told"]  # the block is over: no longer called
        signals.forget()

    _with_our_handlers(dropped_stop)


def test_a_failing_hook_does_not_hide_the_stop():
    def failing_hook():
        with signals.calling_on_stop(lambda: 1 / 0):
            with pytest.raises(signals.Interrupted):
                signal.raise_signal(signal.SIGINT)
        assert isinstance(signals.recorded_stop(), signals.Interrupted)
        signals.forget()

    _with_our_handlers(failing_hook)


def test_a_worker_thread_that_checks_goes_on():
    import threading

    def check_in_a_thread():
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        outcome = []
        worker = threading.Thread(target=lambda: (signals.raise_if_stopped(), outcome.append("went on")))
        worker.start()
        worker.join()
        assert outcome == ["went on"]
        with pytest.raises(signals.Interrupted):
            signals.raise_if_stopped()

    _with_our_handlers(check_in_a_thread)


def test_a_stop_wrapped_by_set_name_is_still_the_stop():
    class Stopping:
        def __set_name__(self, owner, name):
            raise signals.Terminated(signal.SIGTERM)

    try:
        type("Loaded", (), {"attribute": Stopping()})
    except BaseException as err:  # 3.11 wraps it in a RuntimeError; 3.12 lets it through
        wrapped = err
    assert isinstance(signals.stop_behind(wrapped), signals.Terminated)
    assert signals.stop_behind(RuntimeError("a bug of its own")) is None


def _a_stop_was_lost():
    """As after a signal whose exception Python dropped: recorded, not raised."""
    try:
        signal.raise_signal(signal.SIGTERM)
    except signals.Terminated:
        pass


def test_after_a_lost_stop_an_output_is_not_renamed_into_place(tmp_path):
    from coach.files import atomic_writer

    target = tmp_path / "session.txt"

    def write():
        _a_stop_was_lost()
        with pytest.raises(signals.Terminated):
            with atomic_writer(target, force=False) as handle:
                handle.write(b"the whole script")
        signals.forget()

    _with_our_handlers(write)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its .part


def test_after_a_lost_stop_no_speech_cache_entry_is_published(tmp_path):
    import numpy as np

    from coach.speech.cache import SpeechCache

    cache = SpeechCache(tmp_path)

    def store():
        _a_stop_was_lost()
        with pytest.raises(signals.Terminated):
            cache.put("somekey", np.ones(100, dtype=np.int16))
        signals.forget()

    _with_our_handlers(store)
    assert list(tmp_path.iterdir()) == [] and cache.get("somekey") is None


def test_a_stop_inside_a_deferred_block_is_raised_when_the_block_ends():
    steps = []

    def defer():
        with pytest.raises(signals.Terminated):
            with signals.deferred():
                signal.raise_signal(signal.SIGTERM)
                steps.append("the block went on")  # e.g. removing its temporary file
        signals.forget()
        with pytest.raises(KeyError):  # an error that ends the block is not replaced by the stop
            with signals.deferred():
                signal.raise_signal(signal.SIGINT)
                raise KeyError("its own error")
        assert isinstance(signals.recorded_stop(), signals.Interrupted)
        signals.forget()

    _with_our_handlers(defer)
    assert steps == ["the block went on"]
