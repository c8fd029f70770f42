"""How long a session lasts: estimated before any speech exists, or fitted to a chosen length.

Both walk the real timeline (coach.timeline), so they follow its rules exactly:
- `estimate_seconds` stands in for each clip with a length guessed from its words (for
  `coach list`, where synthesizing every routine would take minutes);
- `fit_holds` takes the measured clip lengths and scales every hold and rest by one factor,
  each kept within the routine's bounds (Routine.hold_bounds), until the timeline lasts the
  chosen length; holds come out in whole seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from coach.errors import UsageError
from coach.routine import CHIME_KINDS, Routine
from coach.timeline import TimelineOptions, build_timeline, samples, spoken_texts

# `--minutes` promises the session within this many seconds of the length asked for.
TOLERANCE_SECONDS = 5.0
MIN_MINUTES, MAX_MINUTES = 1.0, 240.0  # what --minutes takes
# Chimes are at most 2 s (coach.chimes.MAX_CHIME_SECONDS); an estimate takes them at 2 s.
ESTIMATED_CHIME_SECONDS = 2.0
# espeak-ng's clips after trimming, fitted over every line of the library at speed 1
# (bench/bench_routines.py prints how close the estimate comes): 0.27 s a word, 0.15 s a line.
# Validation uses a slower, safer rate (coach.routine.estimate_speech_seconds) on purpose.
SECONDS_PER_WORD = 0.27
SECONDS_PER_LINE = 0.15


def guessed_speech_samples(text: str, speed: float = 1.0) -> int:
    """How long `text` is likely to last when spoken at `speed`, before its clip exists: what
    `coach list` and a live session's first estimated total both use, so they agree."""
    return samples((SECONDS_PER_WORD * len(text.split()) + SECONDS_PER_LINE) / speed)


def estimate_seconds(routine: Routine, options: TimelineOptions = TimelineOptions()) -> float:
    """The session's length in seconds with speech lengths guessed from word counts."""
    texts = spoken_texts(routine, options)
    speech = {t: guessed_speech_samples(t, options.speed) for t in texts}
    chimes = {kind: samples(ESTIMATED_CHIME_SECONDS) for kind in CHIME_KINDS}
    return build_timeline(routine, speech, chimes, options).length_s


@dataclass(frozen=True)
class Fit:
    routine: Routine  # the routine with the holds chosen
    seconds: float  # the session's length with them


def fit_holds(routine: Routine, speech_lengths: Mapping[str, int], chime_lengths: Mapping[str, int],
              options: TimelineOptions, minutes: float) -> Fit:
    """The routine with holds scaled together so the session lasts `minutes` (within
    TOLERANCE_SECONDS); UsageError with the shortest and longest possible when it cannot."""
    if options.hold is not None:
        raise UsageError("--minutes and --hold both set the holds; give one of them")
    target = minutes * 60.0
    bounds = [routine.hold_bounds(p) for p in routine.poses]

    def length(holds) -> float:
        return build_timeline(_with_holds(routine, holds), speech_lengths, chime_lengths, options).length_s

    shortest, longest = length_range(routine, speech_lengths, chime_lengths, options)
    if not shortest - TOLERANCE_SECONDS <= target <= longest + TOLERANCE_SECONDS:
        # What to choose instead: what the routine can last, within what --minutes takes.
        low = max(math.ceil(shortest / 6) / 10, MIN_MINUTES)
        high = min(math.floor(longest / 6) / 10, MAX_MINUTES)
        choose = (f"choose --minutes from {low:g} to {high:g}, or change" if low <= high else
                  f"--minutes takes {MIN_MINUTES:g} to {MAX_MINUTES:g}: change")
        raise UsageError(
            f"--minutes {minutes:g}: at speed {options.speed:g} {routine.name} lasts from {_clock(shortest)} "
            f"(every hold at its min_hold) to {_clock(longest)} (every hold at its max_hold); {choose} "
            "min_hold/max_hold in the routine (docs/routines.md)")

    def scaled(factor: float) -> list[float]:
        return [min(max(p.hold * factor, lo), hi) for p, (lo, hi) in zip(routine.poses, bounds)]

    # The length grows with the factor (never shrinks), so halve the interval until it fits.
    low = min(lo / p.hold for p, (lo, _) in zip(routine.poses, bounds))
    high = max(hi / p.hold for p, (_, hi) in zip(routine.poses, bounds))
    for _ in range(60):
        middle = (low + high) / 2
        if length(scaled(middle)) < target:
            low = middle
        else:
            high = middle
        if high - low < 1e-6:
            break
    holds = _whole_seconds(routine, scaled((low + high) / 2), bounds, target, length)
    fitted = _with_holds(routine, holds)
    return Fit(fitted, length(holds))


def length_range(routine: Routine, speech_lengths: Mapping[str, int], chime_lengths: Mapping[str, int],
                 options: TimelineOptions) -> tuple[float, float]:
    """How long the session lasts (seconds) with every hold at its min_hold, and at its max_hold."""
    bounds = [routine.hold_bounds(p) for p in routine.poses]
    return tuple(build_timeline(_with_holds(routine, [b[end] for b in bounds]), speech_lengths, chime_lengths,
                                options).length_s for end in (0, 1))


def _whole_seconds(routine, holds, bounds, target, length) -> list[float]:
    """Round the holds to whole seconds, then add a second back to those that lost most,
    while the session is short of the target by at least half of what that second adds."""
    rounded = [min(max(float(math.floor(h)), lo), hi) for h, (lo, hi) in zip(holds, bounds)]
    short_by = target - length(rounded)
    by_loss = sorted(range(len(holds)), key=lambda i: holds[i] - rounded[i], reverse=True)
    for i in by_loss:
        adds = max(1, len(routine.sides_of(routine.poses[i])))  # one second on each side it is done
        if short_by >= adds / 2 and rounded[i] + 1 <= bounds[i][1]:
            rounded[i] += 1
            short_by -= adds
    return rounded


def _with_holds(routine: Routine, holds) -> Routine:
    poses = tuple(replace(p, hold=h) for p, h in zip(routine.poses, holds))
    return replace(routine, poses=poses)


def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"
