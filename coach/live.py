"""`coach start`: a session played live, wiring the player to a device, the terminal and signals.

Everything timing-related lives in coach.player; this module opens the sound output
(falling back to captions when there is none), reads keys when a terminal is attached,
chooses the display, and turns Ctrl-C / SIGTERM into a clean stop that says where the
session was and how to continue from there.
"""

from __future__ import annotations

import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import IO

import numpy as np

from coach import signals
from coach.audio import SAMPLE_RATE
from coach.display import SPOKEN_KEYS, LiveDisplay, LogDisplay, format_clock
from coach.errors import AudioOutputError, CoachError, one_line
from coach.keys import terminal_keys
from coach.live_plan import GrowingPlan, KnownClips
from coach.player import Listener, Player, Status, Stop, find_section
from coach.session import LiveSession, Session, SessionOptions
from coach.settings import SPEED_RANGE, VOLUME_RANGE
from coach.sinks import CaptionSink, Sink, close_quietly, open_sink
from coach.timeline import Section

CAPTIONS_NOTE = "Continuing on time with captions only."


class SessionStopped(CoachError):
    """The session was stopped by a signal; `message` says where and how to continue."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def run_live(session: Session | LiveSession, *, from_pose: str | None = None, quiet: bool = False,
             require_audio: bool = False, backend: str | None = None,
             stdin: IO[str] | None = None, stdout: IO[str] | None = None,
             clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> Stop:
    """Play `session` now, on time, until its end or the q key.

    A LiveSession starts with its first utterance while the rest is synthesized; a Session
    (every clip made already) plays at its one speed. from_pose (--from) is for a Session:
    a LiveSession begins at its pose from the start (start_live_session(from_pose=...)), so
    that pose's speech is synthesized first. Raises UsageError for a bad --from,
    AudioOutputError when there is no sound and require_audio is set, and SessionStopped
    (exit 130 / 143 / 129) on Ctrl-C / SIGTERM / SIGHUP. `sleep` is used when stdin is not a
    terminal; with keys, a key press ends a sleep.
    """
    plan = live_plan(session)
    speech = session.speech if isinstance(session, LiveSession) else None
    output_lock = speech.output_lock if speech is not None else threading.Lock()
    with output_lock:  # not while an espeak render has them swapped for /dev/null
        stdin = stdin if stdin is not None else sys.stdin
        stdout = stdout if stdout is not None else sys.stdout
    if from_pose and isinstance(session, LiveSession):
        raise ValueError("a live session begins at its pose from the start: start_live_session(from_pose=...)")
    # Checked before any sound.
    first = find_section(plan.estimated_timeline(), from_pose) if from_pose else None
    with output_lock:  # opening a device moves file descriptor 2 about, as a render does
        sink, no_device = open_output(backend, require_audio)
    sink.set_volume(session.options.volume)
    player: Player | None = None
    start = 0
    try:
        with signals.as_exceptions(), terminal_keys(stdin) as keys:
            with output_lock:  # isatty() asks file descriptor 1, which a render points elsewhere
                display = _display(session, plan, stdout, quiet, keys is not None)
            display.captions = isinstance(sink, CaptionSink)
            if keys is not None and isinstance(display, LiveDisplay):
                keys.cursor_hidden = display.hides_cursor  # shown again while Ctrl-Z has it stopped
            guarded = GuardedListener(display, output_lock, clock)
            if speech is not None:
                speech.output_free = guarded.drain

            def first_sound_playing() -> None:
                if speech is not None:
                    speech.first_sound_playing()  # the rest of the speech goes on first
                if no_device is not None:
                    guarded.warn(no_device)
                guarded.open()
            with guarded:
                if first is not None:  # a built session: every section is known
                    start = plan.timeline.sections[first.index].start
                player = Player.of(
                    plan, sink, clock=clock, sleep=keys.sleep if keys else sleep,
                    keys=keys.read if keys else None, listener=guarded,
                    on_sink_error=_fallback(guarded, display, require_audio),
                    help_sound=_help_sound(session, plan), volume_range=VOLUME_RANGE, speed_range=SPEED_RANGE,
                    on_first_sound=first_sound_playing)
                try:
                    stop = player.run(start)
                except BaseException:
                    _stop_quietly(player.sink)  # silence first, whatever ended the session
                    _ignore_signals()  # until the terminal is restored: a second Ctrl-C must not cut that short
                    raise
                guarded.finish(stop)
    except (KeyboardInterrupt, signals.Terminated, OSError) as err:
        signal_exception = signals.stop_behind(err)
        if signal_exception is None:
            raise
        why = f" ({signal_exception.reason})" if isinstance(signal_exception, signals.Terminated) else ""
        position, section = ((player.position, player.section_at(player.position)) if player
                             else (start / SAMPLE_RATE, first or _first_section(plan)))
        message = stopped_message(session, position, section, why, speed=plan.speed,
                                  volume=player.volume if player else None)
        keep = keep_settings_line(session, player)
        raise SessionStopped(message + (f"\n{keep}" if keep else ""), signals.exit_code(signal_exception)) from None
    finally:
        if speech is not None:
            speech.close()
        close_quietly(player.sink if player else sink)
    if stop.reason == "quit":
        print(stopped_message(session, stop.position, stop.section, speed=plan.speed, volume=player.volume),
              file=sys.stderr, flush=True)
    keep = keep_settings_line(session, player)
    if keep:
        print(keep, file=sys.stderr, flush=True)
    return stop


def live_plan(session: Session | LiveSession) -> GrowingPlan:
    """What the player plays: the live session's own plan, or a built session's clips at its speed."""
    if isinstance(session, LiveSession):
        return session.plan
    clips = KnownClips(session.speech, session.options.speed, session.timeline)
    plan = GrowingPlan(session.routine, session.options.timeline_options, session.chimes, clips,
                       can_change_speed=False)
    if session.options.minutes is not None:  # the only kind of built session `coach start` plays
        plan.fixed_speed_note = (f"the speed stays at {session.options.speed:g} in a session fitted to --minutes "
                                 "(its holds were chosen for it); to change it, start again with --speed")
    return plan


def _first_section(plan: GrowingPlan) -> Section | None:
    """Where a session begun --from a pose is before it plays: that pose (None from the start)."""
    if plan.first_turn is None:
        return None
    sections = plan.estimated_timeline().sections
    return sections[0] if sections else None


def _help_sound(session: Session | LiveSession, plan: GrowingPlan) -> Callable[[], np.ndarray | None]:
    """The h key: the key list spoken at the session's current speed (cached like every clip)."""

    def speak() -> np.ndarray | None:
        try:
            if isinstance(session, LiveSession):
                clip = session.speech.synthesize_now(SPOKEN_KEYS, plan.speed)
            else:
                from coach.speech import SpeechSettings, synthesize

                options = session.options
                clip = synthesize(SPOKEN_KEYS, SpeechSettings(plan.speed, options.voice, options.engine))
        except CoachError:
            return None  # no voice for it: the key line on the screen has to do
        return np.multiply(clip, np.float32(plan.gain), dtype=np.float32)

    return speak


def keep_settings_line(session: Session | LiveSession, player: Player | None) -> str | None:
    """After the speed or volume was changed with a key: how to keep it for every session."""
    if player is None or not player.changed_settings:
        return None
    commands = []
    if player.plan.speed != session.options.speed:
        commands.append(f"coach config set speed {player.plan.speed:g}")
    if round(player.volume, 2) != round(session.options.volume, 2):
        commands.append(f"coach config set volume {player.volume:g}")
    if not commands:
        return None
    return f"To keep it for every session: {' && '.join(commands)}"


class GuardedListener(Listener):
    """The display, written to only while no espeak render has the output redirected, and
    opened only once the session's first sound is playing.

    A call that finds the output taken waits in a queue (a redraw only replaces the one
    before it), and goes out with the next call that finds it free: late by the few ms of
    one render rather than lost, and never holding up the player and its sounds.

    Drawing the live panel the first time imports rich and works out the estimated total:
    40 to 90 ms that the first word would otherwise wait for. So the display opens (and
    what was queued goes out, in order) at the first sound, or when the session has been
    preparing speech for OPEN_WHILE_PREPARING seconds (a cold Piper start), whichever
    comes first.
    """

    OPEN_WHILE_PREPARING = 0.3

    def __init__(self, display, lock: threading.Lock, clock: Callable[[], float] = time.monotonic) -> None:
        self.display = display
        self.lock = lock
        self.clock = clock
        self._queued: list[tuple[str, tuple]] = []
        self._queue_lock = threading.Lock()  # the speech worker drains the queue too
        self._since = clock()
        self._open_wanted = False
        self._opened = False

    @property
    def refresh(self) -> float | None:
        return self.display.refresh

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with self.lock:
            if not self._opened and any(method not in ("tick", "preparing") for method, _ in self._queued):
                self._open_wanted = True  # a note or a line still to show: show it
            self._flush()
            if self._opened:
                return self.display.__exit__(*exc)
            return None

    def open(self) -> None:
        """The first sound is playing: draw the display now (or at the next call that finds
        the output free)."""
        self._open_wanted = True
        self.drain()

    def _call(self, method: str, *args, wait: bool = False) -> None:
        with self._queue_lock:
            if self._queued and self._queued[-1][0] == "tick" == method:
                self._queued.pop()
            self._queued.append((method, args))
        if method in ("tick", "preparing") and self.clock() - self._since >= self.OPEN_WHILE_PREPARING:
            self._open_wanted = True
        if self.lock.acquire(blocking=wait):
            try:
                self._flush()
            finally:
                self.lock.release()

    def drain(self) -> None:
        """Write what waited while the output was taken (called by the speech worker)."""
        while self._queued and self.lock.acquire(blocking=False):
            try:
                self._flush()
            finally:
                self.lock.release()
            if not self._opened:
                return

    def _flush(self) -> None:
        if not self._opened:
            if not self._open_wanted:
                return
            self.display.__enter__()
            self._opened = True
        while True:
            with self._queue_lock:
                if not self._queued:
                    return
                method, args = self._queued.pop(0)
            getattr(self.display, method)(*args)

    def event(self, event, status): self._call("event", event, status)
    def tick(self, status): self._call("tick", status)
    def paused(self, status): self._call("paused", status)
    def resumed(self, status): self._call("resumed", status)
    def moved(self, status): self._call("moved", status)
    def changed(self, status): self._call("changed", status)
    def preparing(self, status): self._call("preparing", status)
    def ready(self, status, waited): self._call("ready", status, waited)
    def note(self, text): self._call("note", text)
    def replanned(self, timeline): self._call("replanned", timeline)
    def finish(self, stop): self._call("finish", stop, wait=True)

    def warn(self, err: AudioOutputError) -> None:
        with self.lock:
            self._flush()
            _warn(err)


def open_output(backend: str | None, require_audio: bool) -> tuple[Sink, AudioOutputError | None]:
    """(the sound device, None), or when there is none and it is not required (captions, why).

    The reason is for a warning line once the session makes its first sound: an error found
    before that (an unknown voice, say) is then the one line the user reads, not the second.
    """
    try:
        return open_sink(backend), None
    except AudioOutputError as err:
        if require_audio:
            raise
        return CaptionSink(), err


def _warn(err: AudioOutputError) -> None:
    # sys.stderr looked up now: under the live display it is rich's proxy, printing above the panel.
    print(f"Warning: {one_line(str(err))} {CAPTIONS_NOTE}", file=sys.stderr, flush=True)


def _fallback(guarded: GuardedListener, display, require_audio: bool):
    """What the player does when the device goes away mid-session."""

    def switch_to_captions(err: AudioOutputError) -> Sink:
        if require_audio:
            raise err
        guarded.warn(err)
        display.captions = True
        return CaptionSink()

    return switch_to_captions


def _display(session: Session | LiveSession, plan: GrowingPlan, stdout: IO[str], quiet: bool, keys: bool):
    title = session.routine.title
    if quiet or not stdout.isatty():
        return LogDisplay(plan.timeline, title, stdout, total=plan.total)

    def first() -> Status:  # when the panel is first drawn (GuardedListener)
        total, estimated = plan.total()
        return Status(0.0, False, None, speed=plan.speed, volume=session.options.volume, total=total,
                      estimated=estimated)

    return LiveDisplay(plan.timeline, title, keys=keys, labels=plan.labels, first=first,
                       intro=plan.has_intro, stream=stdout)


def _ignore_signals() -> None:
    for sig in signals.STOPPING:
        signal.signal(sig, signal.SIG_IGN)


def _stop_quietly(sink: Sink) -> None:
    with suppress(Exception):
        sink.stop()


# --- where it stopped -----------------------------------------------------------------

def stopped_message(session: Session, position: float, section: Section | None, what: str = "",
                    speed: float | None = None, volume: float | None = None) -> str:
    """`Stopped at 03:12 in Leg up (right). To continue from there: coach start ... --from "Leg up:right"`."""
    timeline = session.timeline
    if section is not None and section.index == len(timeline.sections) - 1 \
            and round(position * SAMPLE_RATE) >= section.end:
        # Only the closing words were left: from the last pose would play that pose again.
        command = continue_command(session, None, speed, volume)
        return one_line(f"Stopped{what} at {format_clock(position)} in the closing words. "
                        f"To play it again: {command}")
    where = "the introduction" if section is None else section.label
    command = continue_command(session, section, speed, volume)
    return one_line(f"Stopped{what} at {format_clock(position)} in {where}. To continue from there: {command}")


def continue_command(session: Session, section: Section | None, speed: float | None = None,
                     volume: float | None = None) -> str:
    """The `coach start` command that plays the same session from `section` (the start if None),
    at `speed` and `volume` when given (where the keys had them when it stopped). Every part
    is quoted for a shell: it is there to be pasted."""
    words = ["coach", "start"]
    routine = _routine_argument(session)
    if routine:
        words.append(routine)
    options = session.options
    # Everything that shapes the session, its sound and its timing; a value that came from
    # the settings file is repeated harmlessly. A default is left out only where the command
    # without it gets the same (saved settings or the routine may say otherwise).
    speed = options.speed if speed is None else speed
    volume = options.volume if volume is None else volume
    plain = _options_without_flags(session)
    for flag, value, default, unflagged in (
            ("--hold", options.hold, None, None), ("--minutes", options.minutes, None, None),
            ("--side", options.start_side, None, None), ("--speed", speed, 1.0, plain.speed),
            ("--countdown", options.countdown, 0, plain.countdown),
            ("--guidance", options.guidance, "full", plain.guidance),
            ("--voice", options.voice, None, plain.voice), ("--engine", options.engine, "espeak", plain.engine),
            ("--volume", round(volume, 2), 1.0, round(plain.volume, 2))):
        if value is not None and (value != default or value != unflagged):
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if section is not None:
        words += ["--from", _from_value(session, section)]
    return " ".join(shell_word(word) for word in words)


def _options_without_flags(session: Session) -> SessionOptions:
    """What `coach start ROUTINE` with no flags resolves to now; the defaults if the saved
    settings cannot be read."""
    from coach.session import resolve_options
    from coach.settings import load_settings

    with suppress(CoachError, OSError):
        return resolve_options(session.routine, load_settings())
    return SessionOptions()


def _from_value(session: Session, section: Section) -> str:
    """--from's value for `section`: the pose's name where it names that pose alone (it reads
    better), else its number."""
    name = section.pose
    # Every pose of the routine, not only the timeline's: with --from it starts at that pose,
    # and a pose of the same name before it must still make this one go by its number.
    same_name = {number for number, pose in enumerate(session.routine.poses, 1)
                 if pose.name.lower() == name.lower()}
    by_name = same_name == {section.pose_number} and ":" not in name and not name.strip().isdigit()
    pose = name if by_name else str(section.pose_number)
    return f"{pose}:{section.side}" if section.side else pose


def shell_word(text: str) -> str:
    """`text` as one word of a POSIX shell command: bare when it can be, in double quotes when
    they are enough (they read better), else in single quotes."""
    if text and not re.search(r"[^\w@%+=:,./-]", text, re.ASCII):
        return text
    if not re.search(r'[$`\\"!]', text):
        return f'"{text}"'
    return shlex.quote(text)


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
        return str(source.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(source)
