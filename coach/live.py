"""`coach start`: a session played live, wiring the player to a device, the terminal and signals.

Everything timing-related lives in coach.player; this module opens the sound output
(falling back to captions when there is none), reads keys when a terminal is attached,
chooses the display, and turns Ctrl-C / SIGTERM into a clean stop that says where the
session was and how to continue from there.
"""

from __future__ import annotations

import shlex
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO

import numpy as np

from coach import signals
from coach.audio import SAMPLE_RATE
from coach.display import LiveDisplay, LogDisplay, format_clock
from coach.errors import AudioOutputError, CoachError, one_line
from coach.keys import terminal_keys
from coach.mixer import Segment, mix_segment, segments, session_gain
from coach.player import Player, Stop, find_section
from coach.session import Session
from coach.sinks import CaptionSink, Sink, open_sink
from coach.timeline import Section

CAPTIONS_NOTE = "Continuing on time with captions only."


class SessionStopped(CoachError):
    """The session was stopped by a signal; `message` says where and how to continue."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class MixedSegments(Sequence):
    """Segment i's audio, mixed when asked for: the player asks one segment ahead."""

    def __init__(self, segs: Sequence[Segment], speech: Mapping[str, np.ndarray],
                 chimes: Mapping[str, np.ndarray], gain: float) -> None:
        self.segs, self.speech, self.chimes, self.gain = segs, speech, chimes, gain

    def __len__(self) -> int:
        return len(self.segs)

    def __getitem__(self, index):
        return mix_segment(self.segs[index], self.speech, self.chimes, self.gain)


def run_live(session: Session, *, from_pose: str | None = None, quiet: bool = False,
             require_audio: bool = False, backend: str | None = None,
             stdin: IO[str] | None = None, stdout: IO[str] | None = None,
             clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> Stop:
    """Play `session` now, on time, until its end or the q key.

    Raises UsageError for a bad --from, AudioOutputError when there is no sound and
    require_audio is set, and SessionStopped (exit 130 / 143) on Ctrl-C / SIGTERM.
    `sleep` is used when stdin is not a terminal; with keys, a key press ends a sleep.
    """
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    timeline = session.timeline
    first = find_section(timeline, from_pose) if from_pose else None
    start = first.start if first else 0
    segs = segments(timeline)
    gain = session_gain(segs, session.speech, session.chimes, session.options.volume)
    buffers = MixedSegments(segs, session.speech, session.chimes, gain)
    sink = open_output(backend, require_audio)
    player: Player | None = None
    try:
        with signals.as_exceptions(), terminal_keys(stdin) as keys:
            display = _display(session, stdout, quiet, keys is not None)
            display.captions = isinstance(sink, CaptionSink)
            with display:
                player = Player(
                    timeline, segs, buffers, sink, clock=clock,
                    sleep=keys.sleep if keys else sleep, keys=keys.read if keys else None,
                    listener=display, on_sink_error=_fallback(display, require_audio))
                try:
                    stop = player.run(start)
                except BaseException:
                    _stop_quietly(player.sink)  # silence first, whatever ended the session
                    _ignore_signals()  # until the terminal is restored: a second Ctrl-C must not cut that short
                    raise
                display.finish(stop)
    except (KeyboardInterrupt, signals.Terminated, OSError) as err:
        signal_exception = signals.stop_behind(err)
        if signal_exception is None:
            raise
        why = f" ({signal_exception.reason})" if isinstance(signal_exception, signals.Terminated) else ""
        position, section = ((player.position, player.section_at(player.position)) if player
                             else (start / SAMPLE_RATE, first))
        message = stopped_message(session, position, section, why)
        raise SessionStopped(message, signals.exit_code(signal_exception)) from None
    finally:
        _close_quietly(player.sink if player else sink)
    if stop.reason == "quit":
        print(stopped_message(session, stop.position, stop.section), file=sys.stderr, flush=True)
    return stop


def open_output(backend: str | None, require_audio: bool) -> Sink:
    """The sound device, or captions with one warning line when there is none (unless required)."""
    try:
        return open_sink(backend)
    except AudioOutputError as err:
        if require_audio:
            raise
        _warn(err)
        return CaptionSink()


def _warn(err: AudioOutputError) -> None:
    # sys.stderr looked up now: under the live display it is rich's proxy, printing above the panel.
    print(f"Warning: {one_line(str(err))} {CAPTIONS_NOTE}", file=sys.stderr, flush=True)


def _fallback(display, require_audio: bool):
    """What the player does when the device goes away mid-session."""

    def switch_to_captions(err: AudioOutputError) -> Sink:
        if require_audio:
            raise err
        _warn(err)
        display.captions = True
        return CaptionSink()

    return switch_to_captions


def _display(session: Session, stdout: IO[str], quiet: bool, keys: bool):
    title = session.routine.title
    if quiet or not stdout.isatty():
        return LogDisplay(session.timeline, title, stdout)
    from rich.console import Console

    return LiveDisplay(session.timeline, title, Console(file=stdout), keys=keys)


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stop_quietly(sink: Sink) -> None:
    with suppress(Exception):
        sink.stop()


def _close_quietly(sink: Sink) -> None:
    with suppress(Exception):
        sink.close()


# --- where it stopped -----------------------------------------------------------------

def stopped_message(session: Session, position: float, section: Section | None, what: str = "") -> str:
    """`Stopped at 03:12 in Leg up (right). To continue from there: coach start ... --from "Leg up:right"`."""
    timeline = session.timeline
    if section is None:
        where, resume = "the introduction", None
    elif section.index == len(timeline.sections) - 1 and round(position * SAMPLE_RATE) >= section.end:
        where, resume = "the closing words", section
    else:
        where, resume = section.label, section
    command = continue_command(session, resume)
    return one_line(f"Stopped{what} at {format_clock(position)} in {where}. To continue from there: {command}")


def continue_command(session: Session, section: Section | None) -> str:
    """The `coach start` command that plays the same session from `section` (the start if None)."""
    parts = ["coach", "start", _routine_argument(session)]
    options = session.options
    # What shapes the session's order and timing; a value that came from the settings
    # file is repeated harmlessly.
    if options.hold is not None:
        parts.append(f"--hold {options.hold:g}")
    if options.start_side is not None:
        parts.append(f"--side {options.start_side}")
    if options.speed != 1.0:
        parts.append(f"--speed {options.speed:g}")
    if options.countdown:
        parts.append(f"--countdown {options.countdown}")
    if section is not None:
        # The name reads better; the number when the name would need shell escaping or has a colon.
        plain = not any(c in section.pose for c in '"$`\\:!')
        name = section.pose if plain else str(section.pose_number)
        parts.append(f'--from "{name}:{section.side}"' if section.side else f'--from "{name}"')
    return " ".join(part for part in parts if part)


def _routine_argument(session: Session) -> str:
    """The routine's name when coach finds it by that name, else its path."""
    source = session.routine.source
    if source is None:
        return ""
    from coach.routine import available_routines

    with suppress(CoachError, OSError):
        found = available_routines().get(source.stem)
        if found is not None and Path(found).resolve() == source.resolve():
            return source.stem
    try:
        path = str(source.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        path = str(source)
    return shlex.quote(path)
