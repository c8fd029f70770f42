"""A session: a routine with its settings resolved, every clip synthesized, and its timeline.

This is what `coach plan`, `coach export` and `coach start` all build first, so the three
always agree on what is said when.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from coach.chimes import load_chimes
from coach.errors import ChimeError, UsageError
from coach.routine import MAX_HOLD, MIN_HOLD, Routine
from coach.settings import SPEED_RANGE, VOLUME_RANGE, Settings, check_value
from coach.speech import SpeechSettings, synthesize_all
from coach.timeline import Timeline, TimelineOptions, build_timeline, spoken_texts


@dataclass(frozen=True)
class SessionOptions:
    speed: float = 1.0
    voice: str | None = None
    engine: str = "espeak"
    volume: float = 1.0
    hold: float | None = None
    start_side: str | None = None
    countdown: int = 0

    @property
    def timeline_options(self) -> TimelineOptions:
        return TimelineOptions(speed=self.speed, hold=self.hold, start_side=self.start_side,
                               countdown=self.countdown)

    @property
    def speech_settings(self) -> SpeechSettings:
        return SpeechSettings(speed=self.speed, voice=self.voice, engine=self.engine)


def resolve_options(routine: Routine, settings: Settings, *, speed: float | None = None,
                    voice: str | None = None, engine: str | None = None, volume: float | None = None,
                    hold: float | None = None, side: str | None = None,
                    countdown: int | None = None) -> SessionOptions:
    """Command-line flag, then the routine's own value, then the user's settings, then defaults."""
    if speed is not None and not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
        raise UsageError(f"--speed must be between {SPEED_RANGE[0]:g} and {SPEED_RANGE[1]:g}, got {speed:g}")
    if volume is not None and not VOLUME_RANGE[0] <= volume <= VOLUME_RANGE[1]:
        raise UsageError(f"--volume must be between {VOLUME_RANGE[0]:g} and {VOLUME_RANGE[1]:g}, got {volume:g}")
    if hold is not None and not MIN_HOLD <= hold <= MAX_HOLD:
        raise UsageError(f"--hold must be between {MIN_HOLD:g} and {MAX_HOLD:g} seconds, got {hold:g}")
    if countdown is not None and not 0 <= countdown <= 10:
        raise UsageError(f"--countdown must be between 0 and 10 seconds, got {countdown}")
    if engine is not None:
        try:
            check_value("engine", engine)
        except Exception as err:
            raise UsageError(f"--engine: {err}") from None
    if side is not None and side not in routine.sides:
        known = ", ".join(routine.sides) or "none (this routine has no sides)"
        raise UsageError(f"--side must be one of this routine's sides: {known}; got {side!r}")
    return SessionOptions(
        speed=_first(speed, routine.speed, settings.speed),
        voice=_first(voice, routine.voice, settings.voice),
        engine=_first(engine, settings.engine),
        volume=_first(volume, settings.volume),
        hold=hold,
        start_side=side,
        countdown=_first(countdown, settings.countdown),
    )


def _first(*values):
    return next((v for v in values if v is not None), None)


@dataclass(frozen=True)
class Session:
    routine: Routine
    options: SessionOptions
    timeline: Timeline
    speech: dict[str, np.ndarray]
    chimes: dict[str, np.ndarray]


def load_routine_chimes(routine: Routine) -> dict[str, np.ndarray]:
    """The routine's chimes; a bad chime file's error also names the routine that asks for it."""
    try:
        return load_chimes(routine.chimes)
    except ChimeError as err:
        if routine.source is None or not routine.chimes:
            raise
        raise ChimeError(f"{routine.source}: {err}") from None


def build_session(routine: Routine, options: SessionOptions = SessionOptions(),
                  progress: Callable[[int, int], None] | None = None) -> Session:
    chimes = load_routine_chimes(routine)
    texts = spoken_texts(routine, options.timeline_options)
    speech = synthesize_all(texts, options.speech_settings, progress=progress)
    timeline = build_timeline(
        routine,
        {text: len(clip) for text, clip in speech.items()},
        {kind: len(clip) for kind, clip in chimes.items()},
        options.timeline_options,
    )
    return Session(routine, options, timeline, speech, chimes)
