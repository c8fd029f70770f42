"""From a routine and the measured length of every clip to timed events: a pure function.

Every time is an integer count of samples at SAMPLE_RATE, so the timeline is exact and
deterministic to the sample; `Event.start_s` and friends give seconds. The live player,
`coach plan` and every export read this one timeline.

Rules:
- untimed parts (intro, setup, release, side switch, outro) follow each other with short
  gaps that stretch or shrink with the voice speed;
- a hold is exact: chime at its start, chime at exactly start + hold/2, and it ends exactly
  `hold` seconds after it started, whatever the voice speed, on every side; its start chime
  rings `settle` seconds (time to move, not scaled by speed) after the last setup line;
- a rest is timed like a hold, with its own chimes (rest_start at its start, rest_end when
  it ends) or none, and no midpoint;
- poses are done block by block (Routine.blocks): each block on every side in turn; wherever
  the side changes, the side_switch chime rings and the switch lines are spoken;
- guidance chooses what is said: full, brief (no detail cues), minimal (the pose name and
  side, the chimes and the release);
- cues inside a hold never overlap a chime, the countdown or each other; cues that cannot
  fit at this speed are dropped, each with a warning (never overlapped silently).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from coach.audio import SAMPLE_RATE
from coach.routine import CUE_GAP, GUIDANCE_LEVELS, Pose, Routine, fill_placeholders

if TYPE_CHECKING:
    from coach.speech.clip import Word

# Gaps in seconds at speed 1.0; divided by the speed, like the speech itself.
GAP_BETWEEN_LINES = 0.6
GAP_AFTER_INTRO = 1.5
GAP_BETWEEN_POSES = 1.5
GAP_BEFORE_OUTRO = 2.0
# Fixed (not scaled): quiet kept before the midpoint chime and at the end of a hold.
QUIET_BEFORE_CHIME = 0.3
QUIET_BEFORE_HOLD_END = 0.5
QUIET_AFTER_CHIME = 0.2
TAIL = 1.0  # silence after the last sound, so an export does not end abruptly


def samples(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


@dataclass(frozen=True)
class Event:
    """One thing in the session. kind: "speech", "chime" or "hold" (a hold's span, silent).

    part says what role it plays: intro, setup, cue, countdown, release, switch, outro for
    speech; hold_start, midpoint, side_switch for chimes; hold for holds. For a chime, text
    is the chime kind; for a hold, the pose name.
    """

    start: int
    length: int
    kind: str
    part: str
    text: str
    pose: str | None = None
    side: str | None = None
    section: int | None = None
    # Speech only: each word said, at its absolute samples in the session (coach.speech.Word).
    words: tuple[Word, ...] = ()

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.end / SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return self.length / SAMPLE_RATE


@dataclass(frozen=True)
class Section:
    """One pose on one side: where skip, back and --from land."""

    index: int
    pose_number: int  # 1-based, as in the routine file
    pose: str
    side: str | None
    start: int
    end: int
    hold_start: int
    hold_length: int

    @property
    def label(self) -> str:
        return f"{self.pose} ({self.side})" if self.side else self.pose


@dataclass(frozen=True)
class Timeline:
    events: tuple[Event, ...]
    sections: tuple[Section, ...]
    length: int
    warnings: tuple[str, ...] = ()
    # False for a timeline grown only as far as its clips are known (grow_timeline): it ends
    # where the first missing clip would start, and `length` is that point.
    complete: bool = True

    @property
    def length_s(self) -> float:
        return self.length / SAMPLE_RATE

    def audible(self) -> list[Event]:
        return [e for e in self.events if e.kind != "hold"]


@dataclass(frozen=True)
class TimelineOptions:
    speed: float = 1.0
    hold: float | None = None  # overrides every pose's hold (a quick session)
    start_side: str | None = None
    countdown: int = 0  # speak the last N seconds of every hold
    guidance: str = "full"  # one of GUIDANCE_LEVELS

    def __post_init__(self) -> None:
        if self.guidance not in GUIDANCE_LEVELS:
            raise ValueError(f"guidance must be one of {', '.join(GUIDANCE_LEVELS)}, got {self.guidance!r}")


def ordered_sides(routine: Routine, start_side: str | None,
                  sides: tuple[str, ...] | None = None) -> tuple[str | None, ...]:
    """The sides in the order they are done, starting with start_side; (None,) for once."""
    sides = routine.sides if sides is None else sides
    if not sides:
        return (None,)
    if start_side and start_side in sides:
        i = sides.index(start_side)
        sides = sides[i:] + sides[:i]
    return sides


@dataclass(frozen=True)
class Turn:
    """One pose on one side (or once), in session order, with what is said for it."""

    pose_number: int  # 1-based, as in the routine file
    pose: Pose
    side: str | None
    other_side: str | None
    switch: tuple[str, ...] | None  # the side changes here: the switch lines (filled), else None
    setup: tuple[str, ...]
    cues: tuple[tuple[float | None, str], ...]  # (at, text)
    release: tuple[str, ...]


def session_turns(routine: Routine, options: TimelineOptions = TimelineOptions()) -> list[Turn]:
    """Every pose on every side in the order done, with its texts filled for the guidance level."""
    guidance = options.guidance
    turns: list[Turn] = []
    previous_side = None
    for block in routine.blocks():
        sides = ordered_sides(routine, options.start_side, block.sides)
        for side in sides:
            other = _other(sides, side)
            for k, number in enumerate(block.pose_numbers):
                pose = routine.poses[number - 1]
                switch = None
                if k == 0 and side is not None and previous_side is not None and side != previous_side:
                    switch = () if guidance == "minimal" else _filled(routine.switch_lines_of(pose), side, other, block.sides)
                if guidance == "minimal":
                    setup = (_name_line(pose, side),)
                    cues = ()
                else:
                    setup = _filled(pose.setup, side, other, block.sides)
                    kept = [c for c in pose.cues if guidance == "full" or not c.detail]
                    cues = tuple((c.at, fill_placeholders(c.text, side, other, block.sides)) for c in kept)
                release = _filled(pose.release, side, other, block.sides)
                turns.append(Turn(number, pose, side, other, switch, setup, cues, release))
                previous_side = side
    return turns


def _filled(lines, side: str | None, other: str | None, sides: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(fill_placeholders(line, side, other, sides) for line in lines)


def _name_line(pose: Pose, side: str | None) -> str:
    """What minimal guidance says before a hold: the pose's name and side, "Leg up, right."."""
    name = pose.name.rstrip(" .!?:;,")
    return f"{name}, {side}." if side else f"{name}."


def _other(sides: tuple[str | None, ...], side: str | None) -> str | None:
    if side is None or len(sides) < 2:
        return side
    return sides[(sides.index(side) + 1) % len(sides)]


def countdown_texts(n: int) -> list[str]:
    return [str(k) for k in range(n, 0, -1)]


def spoken_texts(routine: Routine, options: TimelineOptions = TimelineOptions()) -> list[str]:
    """Every text the session may speak, placeholders filled, in order, without repeats."""
    minimal = options.guidance == "minimal"
    texts: list[str] = [] if minimal else list(routine.intro)
    for turn in session_turns(routine, options):
        texts += turn.switch or ()
        texts += turn.setup
        texts += [text for _, text in turn.cues]
        texts += turn.release
    texts += [] if minimal else routine.outro
    texts += countdown_texts(options.countdown)
    return list(dict.fromkeys(texts))


def build_timeline(
    routine: Routine,
    speech_lengths: Mapping[str, int],
    chime_lengths: Mapping[str, int],
    options: TimelineOptions = TimelineOptions(),
    speech_words: Mapping[str, Sequence[Word]] | None = None,
) -> Timeline:
    """The session as timed events. speech_lengths: samples per spoken text (placeholders filled);
    speech_words: the words of each text with their samples in its clip, given to its events."""
    timeline = _Builder(routine, lambda text, speed: speech_lengths[text], chime_lengths, options).build()
    if speech_words:
        timeline = with_words(timeline, lambda event: speech_words.get(event.text, ()))
    return timeline


def with_words(timeline: Timeline, words_of: Callable[[Event], Sequence[Word]]) -> Timeline:
    """The timeline with each speech event's words (words_of(event): samples in its clip),
    moved to the session's samples. A growing timeline whose speed changes can give the
    words of the clip each event was placed with."""
    events = tuple(
        replace(e, words=tuple(w.shifted(e.start) for w in words_of(e))) if e.kind == "speech" else e
        for e in timeline.events
    )
    return replace(timeline, events=events)


ClipLength = Callable[[str, float], "int | None"]


def grow_timeline(
    routine: Routine,
    clip_length: ClipLength,
    chime_lengths: Mapping[str, int],
    options: TimelineOptions = TimelineOptions(),
    speed_changes: Sequence[tuple[int, float]] = (),
    first_turn: int | None = None,
) -> Timeline:
    """The session as far as its clips are known, for a voice whose speed may change as it plays.

    clip_length(text, speed) is the clip's length in samples, or None while it is not
    synthesized yet. The timeline stops (complete=False, length = that point) before the
    first spoken line whose clip is missing, or before a pose whose clips are not all
    known, so it never stops inside a hold. Each part depends only on its own clips and
    the ones before it: a longer timeline, grown later, starts with the same events.

    speed_changes: (sample, speed) pairs in time order; whatever starts at or after the
    sample is spoken at that speed (untimed gaps follow it too; holds keep their length).
    A cue of a hold that was already running is kept where it was placed and spoken at
    the new speed if it still fits there, else left out with a warning; while its clip
    at the new speed is missing it is left out of this timeline, without one.

    first_turn: the session begins with that turn (`coach start --from`; 0 is the first pose):
    the intro and the turns before it are left out, and what follows is timed as in the whole
    session, from 0. None: the whole session, intro first.
    """
    return _Builder(routine, clip_length, chime_lengths, options, tuple(speed_changes), first_turn).build()


def speed_at(options: TimelineOptions, speed_changes: Sequence[tuple[int, float]], at: int) -> float:
    """The voice speed for something that starts at sample `at`."""
    i = bisect.bisect_right([sample for sample, _ in speed_changes], at) - 1
    return speed_changes[i][1] if i >= 0 else options.speed


def turn_texts(turn: Turn, countdown: int = 0) -> list[str]:
    """Every text one pose on one side may speak, in the order they come."""
    texts = list(turn.switch or ()) + list(turn.setup) + [text for _, text in turn.cues]
    if countdown and not turn.pose.rest:
        texts += countdown_texts(countdown)
    return texts + list(turn.release)


class _NotReady(Exception):
    """A clip the next part needs is not known yet: the timeline stops here."""


class _Lengths:
    """speech[text] for the builder: the clip's length at the speed `speed` is set to."""

    def __init__(self, clip_length: ClipLength, speed: float) -> None:
        self.clip_length = clip_length
        self.speed = speed

    def __getitem__(self, text: str) -> int:
        length = self.clip_length(text, self.speed)
        if length is None:
            raise _NotReady(text)
        return length


class _Builder:
    def __init__(self, routine, clip_length: ClipLength, chime_lengths, options: TimelineOptions,
                 speed_changes: tuple[tuple[int, float], ...] = (), first_turn: int | None = None) -> None:
        self.routine = routine
        self.first_turn = first_turn
        self.clip_length = clip_length
        self.speed_changes = speed_changes
        self.speech = _Lengths(clip_length, options.speed)
        self.chimes = chime_lengths
        self.options = options
        self.events: list[Event] = []
        self.sections: list[Section] = []
        self.warnings: list[str] = []
        self.t = 0
        self._turn: tuple[Turn, int, int] | None = None  # the turn being built: (turn, index, start)
        self._hold: tuple[int, int] | None = None  # its hold (start, length), once placed
        self._turn_speed = options.speed  # the speed the turn began with: its cues are placed at it

    def speed(self, at: int) -> float:
        return speed_at(self.options, self.speed_changes, at)

    def gap(self, seconds: float) -> int:
        return samples(seconds / self.speed(self.t))

    def say(self, texts, part, pose=None, side=None, section=None) -> None:
        """Speak texts (placeholders already filled) one after the other."""
        for j, text in enumerate(texts):
            if j:
                self.t += self.gap(GAP_BETWEEN_LINES)
            self.speech.speed = self.speed(self.t)
            length = self.speech[text]
            self.events.append(Event(self.t, length, "speech", part, text, pose, side, section))
            self.t += length

    def chime(self, kind, at, pose=None, side=None, section=None) -> None:
        self.events.append(Event(at, self.chimes[kind], "chime", kind, kind, pose, side, section))

    def build(self) -> Timeline:
        try:
            self.build_all()
        except _NotReady:
            if self._turn is not None and self._hold is not None:
                # Stopped inside a pose after its hold (before the release): the pose so far.
                turn, index, start = self._turn
                self.sections.append(Section(index, turn.pose_number, turn.pose.name, turn.side, start,
                                             self.t, *self._hold))
            return self.timeline(self.t, complete=False)
        end = max([self.t] + [e.end for e in self.events])
        return self.timeline(end + samples(TAIL))

    def timeline(self, length: int, complete: bool = True) -> Timeline:
        events = sorted(self.events, key=lambda e: (e.start, e.kind != "hold", e.kind != "chime"))
        return Timeline(tuple(events), tuple(self.sections), length, tuple(self.warnings), complete)

    def build_all(self) -> None:
        minimal = self.options.guidance == "minimal"
        intro = () if minimal or self.first_turn is not None else self.routine.intro
        outro = () if minimal else self.routine.outro
        self.say(intro, "intro")
        if intro:
            self.t += self.gap(GAP_AFTER_INTRO)
        turns = session_turns(self.routine, self.options)[self.first_turn or 0:]
        for k, turn in enumerate(turns):
            index = len(self.sections)
            start = self.t
            self.check_ready(turn)
            self._turn, self._hold, self._turn_speed = (turn, index, start), None, self.speed(start)
            if turn.switch is not None:
                self.side_switch(turn, index)
            hold_start, hold_length = self.pose(turn, index)
            self.sections.append(Section(index, turn.pose_number, turn.pose.name, turn.side, start, self.t,
                                         hold_start, hold_length))
            self._turn = None
            if k < len(turns) - 1:
                self.t += self.gap(GAP_BETWEEN_POSES)
        if outro:
            self.t += self.gap(GAP_BEFORE_OUTRO)
            self.say(outro, "outro")

    def check_ready(self, turn: Turn) -> None:
        """A pose is begun only when every clip it needs is known, so no wait falls inside it."""
        speed = self.speed(self.t)
        if any(self.clip_length(text, speed) is None for text in turn_texts(turn, self.options.countdown)):
            raise _NotReady(turn.pose.name)

    def side_switch(self, turn: Turn, index: int) -> None:
        pose, side = turn.pose, turn.side
        self.chime("side_switch", self.t, pose.name, side, index)
        self.t += self.chimes["side_switch"] + self.gap(GAP_BETWEEN_LINES)
        if turn.switch:
            self.say(turn.switch, "switch", pose.name, side, index)
            self.t += self.gap(GAP_BETWEEN_POSES)

    def pose(self, turn: Turn, index: int) -> tuple[int, int]:
        pose, side = turn.pose, turn.side
        self.say(turn.setup, "setup", pose.name, side, index)
        self.t += samples(self.routine.settle_of(pose))
        hold_seconds = self.options.hold if self.options.hold is not None else pose.hold
        if pose.rest:
            return self.rest(turn, index, hold_seconds)
        hold_start, hold_length = self.t, samples(hold_seconds)
        self._hold = (hold_start, hold_length)
        self.speech.speed = self._turn_speed  # known to be ready (check_ready); respoken() does the rest
        midpoint = hold_start + samples(hold_seconds / 2)
        hold_end = hold_start + hold_length
        self.events.append(Event(hold_start, hold_length, "hold", "hold", pose.name, pose.name, side, index))
        self.chime("hold_start", hold_start, pose.name, side, index)
        self.chime("midpoint", midpoint, pose.name, side, index)

        # Speech never sounds over a chime: each chime's whole clip is kept clear.
        blocked = [(hold_start, hold_start + self.chimes["hold_start"] + samples(QUIET_AFTER_CHIME)),
                   (midpoint - samples(QUIET_BEFORE_CHIME),
                    midpoint + self.chimes["midpoint"] + samples(QUIET_AFTER_CHIME))]
        quiet_end = hold_end - samples(QUIET_BEFORE_HOLD_END)
        countdown = self.countdown(pose, side, index, hold_start, hold_end, blocked)
        if countdown is not None:
            quiet_end = min(quiet_end, countdown - samples(CUE_GAP))
        self.place_cues(turn, index, hold_start, hold_length, quiet_end, blocked,
                        ["the hold-start chime", "the midpoint chime"],
                        "the countdown" if countdown is not None else "the end of the hold")

        # The hold itself ends exactly on time; in a hold shorter than its chimes the release
        # waits for them to stop ringing rather than speaking over them.
        self.t = max(hold_end, hold_start + self.chimes["hold_start"], midpoint + self.chimes["midpoint"])
        self.say(turn.release, "release", pose.name, side, index)
        return hold_start, hold_length

    def rest(self, turn: Turn, index: int, seconds: float) -> tuple[int, int]:
        """A rest: exact like a hold; rest_start rings as it begins and rest_end as it ends
        (the release follows that chime), or no chime at all; no midpoint, no countdown."""
        pose, side = turn.pose, turn.side
        start, length = self.t, samples(seconds)
        self._hold = (start, length)
        self.speech.speed = self._turn_speed
        end = start + length
        self.events.append(Event(start, length, "hold", "rest", pose.name, pose.name, side, index))
        blocked = []
        self.t = end
        if pose.chimes:
            self.chime("rest_start", start, pose.name, side, index)
            self.chime("rest_end", end, pose.name, side, index)
            blocked.append((start, start + self.chimes["rest_start"] + samples(QUIET_AFTER_CHIME)))
            self.t = max(end + self.chimes["rest_end"] + samples(QUIET_AFTER_CHIME),
                         start + self.chimes["rest_start"])
        self.place_cues(turn, index, start, length, end - samples(QUIET_BEFORE_HOLD_END), blocked,
                        ["the rest-start chime"], "the end of the rest")
        self.say(turn.release, "release", pose.name, side, index)
        return start, length

    def countdown(self, pose, side, index, hold_start, hold_end, blocked) -> int | None:
        """Speak the last N seconds; returns where the countdown starts, or None if none."""
        n = self.options.countdown
        if n <= 0:
            return None
        texts = countdown_texts(n)
        starts = [hold_end - samples(k) for k in range(n, 0, -1)]
        fits = starts[0] >= blocked[-1][1] and all(
            self.speech[text] <= samples(1.0) for text in texts)
        if not fits:
            self.warnings.append(f'pose "{pose.name}"{_on(side)}: the {n}-second countdown does not '
                                 "fit this hold; it is left out")
            return None
        for text, at in zip(texts, starts):
            length = self.respoken(text, at, samples(1.0))
            if length is not None:
                self.events.append(Event(at, length, "speech", "countdown", text, pose.name, side, index))
        return starts[0]

    def place_cues(self, turn: Turn, index, hold_start, hold_length, quiet_end, blocked,
                   blocked_names: list[str], end_name: str) -> None:
        """`blocked_names` say what each `blocked` span is, and `end_name` what `quiet_end`
        is, for the line that tells why a cue with its own `at` is left out."""
        if not turn.cues:
            return
        pose, side = turn.pose, turn.side
        windows = _free_windows(hold_start, quiet_end, blocked)
        gap = samples(CUE_GAP)

        fixed = [(at, text) for at, text in turn.cues if at is not None]
        spread = [(at, text) for at, text in turn.cues if at is None]
        placed: list[tuple[int, str]] = []
        for at, text in fixed:
            start = hold_start + samples(at)
            if not _inside(windows, start, start + self.speech[text]):
                if at >= hold_length / SAMPLE_RATE:
                    why = "it is past the end of the hold"
                else:
                    others = list(zip(blocked, blocked_names)) + [
                        ((a - gap, a + self.speech[t] + gap), f"the cue at {(a - hold_start) / SAMPLE_RATE:g} s")
                        for a, t in placed]
                    why = "it would overlap " + _what_is_in_the_way(
                        start, start + self.speech[text], others, quiet_end, end_name)
                    fits = _nearest_start(windows, start, self.speech[text], hold_start)
                    if fits is not None:
                        why += f"; it fits at = {fits:g}"
                self.drop(pose, side, text, f"at {at:g} s {why}")
                continue
            placed.append((start, text))
            windows = _cut(windows, start - gap, start + self.speech[text] + gap)

        while spread:
            starts = _spread(windows, [self.speech[t] for _, t in spread], gap,
                             hold_start, hold_length)
            if starts is not None:
                placed += [(s, t) for s, (_, t) in zip(starts, spread)]
                break
            _, text = spread.pop()
            # The hold's length and the speed both decide it: say both, so either can be changed.
            self.drop(pose, side, text, f"the {hold_length / SAMPLE_RATE:g}-second hold has no room left "
                                        f"for it at speed {self.speed(hold_start):g}")
        placed.sort()
        for k, (start, text) in enumerate(placed):
            # The room this cue has if the speed changed during the hold and it is longer now.
            room = min([quiet_end] + [a for a, _ in blocked if a > start]
                       + ([placed[k + 1][0] - gap] if k + 1 < len(placed) else [])) - start
            length = self.respoken(text, start, room)
            if length is not None:
                self.events.append(Event(start, length, "speech", "cue", text, pose.name, side, index))
            elif self.clip_length(text, self.speed(start)) is not None:
                self.drop(pose, side, text, f"it no longer fits at speed {self.speed(start):g}")

    def respoken(self, text: str, at: int, room: int) -> int | None:
        """The length of a text placed in a hold at the speed its pose began with, spoken at the speed
        in force at `at`: the same unless the speed changed during the hold; None when its
        clip at the new speed is longer than `room` or not known yet."""
        placed = self.speech[text]
        speed = self.speed(at)
        if speed == self.speech.speed:
            return placed
        length = self.clip_length(text, speed)
        return length if length is not None and length <= max(room, placed) else None

    def drop(self, pose, side, text, why) -> None:
        short = text if len(text) <= 40 else text[:37] + "..."
        self.warnings.append(f'pose "{pose.name}"{_on(side)}: cue "{short}" left out: {why}')


def _on(side) -> str:
    return f" ({side})" if side else ""


def _free_windows(start: int, end: int, blocked) -> list[tuple[int, int]]:
    windows = [(start, end)] if end > start else []
    for a, b in blocked:
        windows = _cut(windows, a, b)
    return windows


def _cut(windows, a: int, b: int) -> list[tuple[int, int]]:
    out = []
    for lo, hi in windows:
        if b <= lo or a >= hi:
            out.append((lo, hi))
            continue
        if lo < a:
            out.append((lo, a))
        if b < hi:
            out.append((b, hi))
    return out


def _what_is_in_the_way(a: int, b: int, others, quiet_end: int, end_name: str) -> str:
    """What the sound [a, b) runs into: the first of `others` ((span, name) pairs) it
    touches, else the end of the quiet part of the hold."""
    for (lo, hi), name in sorted(others):
        if a < hi and lo < b:
            return name
    return end_name if b > quiet_end else "the hold's start"


def _nearest_start(windows, start: int, length: int, hold_start: int) -> int | None:
    """The whole second from the hold's start nearest to `start` at which a sound of
    `length` fits in `windows`, as an `at` value; None if it fits nowhere."""
    wanted = round((start - hold_start) / SAMPLE_RATE)
    fitting = []
    for lo, hi in windows:
        first = -(-(lo - hold_start) // SAMPLE_RATE)  # whole seconds, rounded up into the window
        last = (hi - length - hold_start) // SAMPLE_RATE
        if first <= last:
            fitting.append(min(max(wanted, first), last))  # this window's second nearest to `start`
    return min(fitting, key=lambda at: abs(hold_start + at * SAMPLE_RATE - start), default=None)


def _inside(windows, a: int, b: int) -> bool:
    return any(lo <= a and b <= hi for lo, hi in windows)


def _earliest(windows, t: int, length: int) -> int | None:
    for lo, hi in windows:
        s = max(lo, t)
        if s + length <= hi:
            return s
    return None


def _latest(windows, end: int, length: int) -> int | None:
    for lo, hi in reversed(windows):
        s = min(hi, end) - length
        if s >= lo:
            return s
    return None


def _spread(windows, lengths: list[int], gap: int, hold_start: int, hold_length: int) -> list[int] | None:
    """Start samples for cues spread evenly over the hold, in order, within the free windows.

    Each cue aims at its even share of the hold ((i + 0.5) / n); a backward pass finds the
    latest start each cue may take so all later ones still fit, and the forward pass clamps
    to it. None when they cannot all fit.
    """
    n = len(lengths)
    latest: list[int] = [0] * n
    limit = max(hi for _, hi in windows) if windows else hold_start
    for i in range(n - 1, -1, -1):
        s = _latest(windows, limit, lengths[i])
        if s is None:
            return None
        latest[i] = s
        limit = s - gap
    starts = []
    previous_end = None
    for i, length in enumerate(lengths):
        ideal = hold_start + (2 * i + 1) * hold_length // (2 * n) - length // 2
        if previous_end is not None:
            ideal = max(ideal, previous_end + gap)
        s = _earliest(windows, ideal, length)
        if s is None or s > latest[i]:
            s = latest[i]
        starts.append(s)
        previous_end = s + length
    return starts
