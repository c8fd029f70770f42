"""A live session's plan: the timeline grows as speech arrives and follows a change of speed.

`GrowingPlan` is the player's Plan for `coach start`: it asks a clip source (SpeechAhead)
for the session's texts in playback order, and rebuilds the timeline with grow_timeline
as they come in, so playback starts with the first utterance. A speed key adds a speed
change at the playhead and asks for the rest of the session at the new speed.

Loudness: the gain is coach.mixer.fixed_gain, known before any speech, as for an export
of the same session (see coach.mixer): live and exported sound equally loud.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from coach.length import guessed_speech_samples
from coach.mixer import Segment, fixed_gain, mix_segment, segments
from coach.player import find_section
from coach.routine import Routine
from coach.speech.clip import Clip
from coach.timeline import (
    Timeline,
    TimelineOptions,
    grow_timeline,
    session_turns,
    speed_at,
    turn_texts,
    with_words,
)

# How often, at most, the timeline is rebuilt as clips arrive while nothing waits for them
# (an hour's timeline takes ~20 ms to build), and the estimated total recomputed.
REBUILD_EVERY = 1.0
ESTIMATE_EVERY = 3.0


class ClipSource(Protocol):
    version: int

    def want(self, order: Sequence[tuple[str, float]]) -> None: ...

    def get(self, text: str, speed: float) -> Clip | None: ...


class GrowingPlan:
    """The player's plan for a session whose clips arrive while it plays (see coach.player.Plan)."""

    def __init__(self, routine: Routine, options: TimelineOptions, chimes: Mapping[str, np.ndarray],
                 clips: ClipSource, *, gain: float | None = None,
                 clock: Callable[[], float] = time.monotonic, can_change_speed: bool = True,
                 from_pose: str | None = None) -> None:
        self.routine = routine
        self.options = options
        self.chimes = chimes
        self.clips = clips
        self.gain = fixed_gain(chimes) if gain is None else gain
        self.clock = clock
        self.speed = options.speed
        self.speed_changes: list[tuple[int, float]] = []
        self.can_change_speed = can_change_speed
        self.fixed_speed_note: str | None = None  # why it cannot, said once when a speed key is pressed
        self._chime_lengths = {kind: len(clip) for kind, clip in chimes.items()}
        minimal = options.guidance == "minimal"
        self._outro = [] if minimal else list(routine.outro)
        # The turn the session begins with (--from: that pose's speech comes first, nothing
        # before it is played or waited for), in the whole session's order; None: the whole
        # session, intro first. A bad spec raises UsageError listing the poses.
        self.first_turn: int | None = None
        if from_pose is not None:
            self.first_turn = self._turn_of(from_pose)
        self._turns = session_turns(routine, options)[self.first_turn or 0:]
        self._intro = [] if minimal or self.first_turn is not None else list(routine.intro)
        self._built_version = -1
        self._built_at = -float("inf")
        self._segments: list[Segment] = []
        self._estimate: tuple[float, bool] | None = None
        self._estimated_at = -float("inf")
        self.timeline: Timeline = Timeline((), (), 0, complete=False)
        self.clips.want(self._order(0, self.speed))
        self.refresh(urgent=True)
        self.labels = [f"{t.pose.name} ({t.side})" if t.side else t.pose.name for t in self._turns]

    @property
    def has_intro(self) -> bool:
        """Whether the session begins with introductory lines (not --from a pose, not minimal guidance)."""
        return bool(self._intro)

    def _turn_of(self, spec: str) -> int:
        # Sections are turns, in order: the estimated whole session has every one.
        return find_section(self.estimated_timeline(), spec).index

    # --- what to synthesize ---------------------------------------------------------------

    def _order(self, from_turn: int, speed: float) -> list[tuple[str, float]]:
        """(text, speed) in playback order from this plan's turn `from_turn` on (the intro first when 0)."""
        texts = list(self._intro) if from_turn == 0 else []
        for turn in self._turns[from_turn:]:
            texts += turn_texts(turn, self.options.countdown)
        texts += self._outro
        return [(text, speed) for text in dict.fromkeys(texts)]

    # --- the Plan protocol -------------------------------------------------------------------

    def refresh(self, urgent: bool = False) -> bool:
        """Rebuild the timeline when new clips came in; True when it changed."""
        if self.clips.version == self._built_version:
            return False
        if self.timeline.complete and not self.speed_changes:
            self._built_version = self.clips.version
            return False
        now = self.clock()
        if not urgent and now - self._built_at < REBUILD_EVERY:
            return False
        return self._rebuild(now)

    def _rebuild(self, now: float) -> bool:
        version = self.clips.version
        timeline = grow_timeline(self.routine, self._length, self._chime_lengths, self.options,
                                 self.speed_changes, self.first_turn)
        timeline = with_words(timeline, self._words)
        self._built_version, self._built_at = version, now
        if timeline == self.timeline:
            return False
        self.timeline = timeline
        self._segments = segments(timeline)
        return True

    def segments(self) -> Sequence[Segment]:
        return self._segments

    def buffer(self, segment: Segment) -> np.ndarray:
        speech = {}
        for event in segment.events:
            if event.kind == "speech":
                speech[event.text] = self.clips.get(event.text, self._speed_of(event.start)).samples
        return mix_segment(segment, speech, self.chimes, self.gain)

    def clip(self, text: str, at: int) -> Clip | None:
        """The clip the utterance at sample `at` plays (with its words)."""
        return self.clips.get(text, self._speed_of(at))

    def set_speed(self, speed: float, at: int) -> bool:
        """Speak at `speed` whatever starts at sample `at` or later; the rest is synthesized again."""
        if not self.can_change_speed:
            return False
        self.speed_changes = [(s, v) for s, v in self.speed_changes if s < at] + [(at, speed)]
        self.speed = speed
        self.clips.want(self._order(self._turn_at(at), speed))
        self._rebuild(self.clock())
        self._estimate = None  # the total at the new speed, not the one from before the key
        return True

    def total(self) -> tuple[float, bool]:
        """The session's length in seconds, and whether that is an estimate."""
        if self.timeline.complete:
            return self.timeline.length_s, False
        now = self.clock()
        if self._estimate is None or now - self._estimated_at >= ESTIMATE_EVERY:
            self._estimate, self._estimated_at = (self.estimated_timeline().length_s, True), now
        return self._estimate

    # --- helpers -----------------------------------------------------------------------------

    def _speed_of(self, at: int) -> float:
        return speed_at(self.options, self.speed_changes, at)

    def _length(self, text: str, speed: float) -> int | None:
        clip = self.clips.get(text, speed)
        return None if clip is None else len(clip)

    def _words(self, event) -> tuple:
        clip = self.clips.get(event.text, self._speed_of(event.start))
        return clip.words if clip is not None else ()

    def estimated_timeline(self) -> Timeline:
        """The whole session with a guess for every clip not known yet."""

        def length(text: str, speed: float) -> int:
            known = self._length(text, speed)
            return known if known is not None else guessed_speech_samples(text, speed)

        return grow_timeline(self.routine, length, self._chime_lengths, self.options, self.speed_changes,
                             self.first_turn)

    def _turn_at(self, at: int) -> int:
        """The index of the turn (section) being played at sample `at`, or 0 in the intro."""
        index = 0
        for section in self.timeline.sections:
            if section.start <= at:
                index = section.index
        return index


class KnownClips:
    """A ClipSource of clips all made already at one speed (a session built in full)."""

    version = 0

    def __init__(self, speech: Mapping[str, np.ndarray | Clip], speed: float,
                 timeline: Timeline | None = None) -> None:
        self.speed = speed
        # A built session keeps the words on its timeline's events (at session samples).
        words = {e.text: tuple(w.shifted(-e.start) for w in e.words)
                 for e in (timeline.events if timeline else ()) if e.kind == "speech" and e.words}
        self._clips = {text: clip if isinstance(clip, Clip) else Clip(np.asarray(clip), words.get(text, ()))
                       for text, clip in speech.items()}

    def want(self, order) -> None:
        pass

    def get(self, text: str, speed: float) -> Clip | None:
        return self._clips.get(text) if speed == self.speed else None
