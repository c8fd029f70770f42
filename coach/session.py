"""A session: a routine with its settings resolved, every clip synthesized, and its timeline.

This is what `coach plan`, `coach export` and `coach start` all build first, so the three
always agree on what is said when.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from coach.chimes import load_chimes
from coach.errors import ChimeError, SpeechError, UsageError
from coach.length import MAX_MINUTES, MIN_MINUTES, fit_holds
from coach.live_plan import GrowingPlan
from coach.routine import GUIDANCE_LEVELS, MAX_HOLD, MIN_HOLD, Routine, chime_line
from coach.settings import SPEED_RANGE, VOLUME_RANGE, Settings, check_value
from coach.speech import SpeechSettings, synthesize_clips, voice_for_language
from coach.speech.ahead import SpeechAhead
from coach.speech.clip import ClipSamples
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
    guidance: str = "full"
    # Fit the holds so the session lasts this long. The fit needs every clip's length, so a
    # session with minutes is built whole (build_session), never grown as clips arrive.
    minutes: float | None = None

    @property
    def timeline_options(self) -> TimelineOptions:
        return TimelineOptions(speed=self.speed, hold=self.hold, start_side=self.start_side,
                               countdown=self.countdown, guidance=self.guidance)

    @property
    def speech_settings(self) -> SpeechSettings:
        return SpeechSettings(speed=self.speed, voice=self.voice, engine=self.engine)


def resolve_options(routine: Routine, settings: Settings, *, speed: float | None = None,
                    voice: str | None = None, engine: str | None = None, volume: float | None = None,
                    hold: float | None = None, side: str | None = None,
                    countdown: int | None = None, guidance: str | None = None,
                    minutes: float | None = None) -> SessionOptions:
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
            raise UsageError(f"--{err}") from None  # "--engine must be one of espeak, piper, got 'x'"
    if guidance is not None and guidance not in GUIDANCE_LEVELS:
        raise UsageError(f"--guidance must be one of {', '.join(GUIDANCE_LEVELS)}, got {guidance!r}")
    if minutes is not None and not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise UsageError(f"--minutes must be between {MIN_MINUTES:g} and {MAX_MINUTES:g}, got {minutes:g}")
    if minutes is not None and hold is not None:
        raise UsageError("--minutes and --hold both set the holds; give one of them")
    if side is not None and side not in routine.all_sides:
        known = ", ".join(routine.all_sides) or "none (this routine has no sides)"
        raise UsageError(f"--side must be one of this routine's sides: {known}; got {side!r}")
    engine = _first(engine, settings.engine)
    return SessionOptions(
        speed=_first(speed, routine.speed, settings.speed),
        voice=_first(voice, routine.voice, _language_voice(routine, engine, settings.voice), settings.voice),
        engine=engine,
        volume=_first(volume, settings.volume),
        hold=hold,
        start_side=side,
        countdown=_first(countdown, settings.countdown),
        guidance=_first(guidance, settings.guidance),
        minutes=minutes,
    )


def _language_voice(routine: Routine, engine: str, saved_voice: str | None) -> str | None:
    """For a routine with a language: a voice of the engine that speaks it (the saved one when
    it does); SpeechError naming the languages the engine has when none does."""
    if routine.language is None:
        return None
    try:
        return voice_for_language(routine.language, engine, prefer=saved_voice)
    except SpeechError as err:
        where = f"{routine.source}: " if routine.source else ""
        raise SpeechError(f"{where}language {routine.language!r}: {err}") from None


def _first(*values):
    return next((v for v in values if v is not None), None)


@dataclass(frozen=True)
class Session:
    routine: Routine
    options: SessionOptions
    timeline: Timeline
    speech: Mapping[str, np.ndarray]  # float32 samples by text (ClipSamples: made when asked for)
    chimes: dict[str, np.ndarray]

    @property
    def speech_pcm16(self) -> Mapping[str, np.ndarray]:
        """The speech as the cache stores it (int16; speech = pcm16 / 32768), where known: an
        export at the session gain of 1 writes these as they are."""
        return self.speech.pcm16 if isinstance(self.speech, ClipSamples) else {}


def load_routine_chimes(routine: Routine) -> dict[str, np.ndarray]:
    """The routine's chimes; a bad chime file's error also names the routine that asks for it."""
    try:
        return load_chimes(routine.chimes)
    except ChimeError as err:
        if routine.source is None or not routine.chimes:
            raise
        line = chime_line(routine.source, err.kind) if err.kind else None
        raise ChimeError(f"{routine.source}{f':{line}' if line else ''}: {err}") from None


def build_session(routine: Routine, options: SessionOptions = SessionOptions(),
                  progress: Callable[[int, int], None] | None = None) -> Session:
    chimes = load_routine_chimes(routine)
    texts = spoken_texts(routine, options.timeline_options)
    clips = synthesize_clips(texts, options.speech_settings, progress=progress)
    speech_lengths = {text: len(clip) for text, clip in clips.items()}
    chime_lengths = {kind: len(clip) for kind, clip in chimes.items()}
    if options.minutes is not None:  # the clips are measured now, so the fit is exact
        routine = fit_holds(routine, speech_lengths, chime_lengths, options.timeline_options,
                            options.minutes).routine
    timeline = build_timeline(routine, speech_lengths, chime_lengths, options.timeline_options,
                              speech_words={text: clip.words for text, clip in clips.items()})
    return Session(routine, options, timeline, ClipSamples(clips), chimes)


@dataclass
class LiveSession:
    """A session that plays while its speech is still being synthesized (`coach start`).

    `plan` grows its timeline as `speech` (synthesizing ahead of the playhead, in playback
    order) makes clips ready; see coach.live_plan.
    """

    routine: Routine
    options: SessionOptions
    chimes: dict[str, np.ndarray]
    speech: SpeechAhead
    plan: GrowingPlan

    @property
    def timeline(self) -> Timeline:
        return self.plan.timeline


def start_live_session(routine: Routine, options: SessionOptions = SessionOptions(),
                       from_pose: str | None = None) -> LiveSession:
    """Begin synthesizing the session's speech in playback order and return at once.
    from_pose (--from): the session begins at that pose, whose speech comes first; raises
    UsageError for one the routine does not have."""
    chimes = load_routine_chimes(routine)
    speech = SpeechAhead(options.engine, options.voice, hold_after_first=True)
    plan = GrowingPlan(routine, options.timeline_options, chimes, speech, from_pose=from_pose)
    return LiveSession(routine, options, chimes, speech, plan)
