"""What a routine is: frozen data, no I/O. Loading and checking live in load.py and validate.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PLACEHOLDERS = ("side", "other_side")
CHIME_KINDS = ("hold_start", "midpoint", "side_switch")
DEFAULT_HOLD = 30.0
DEFAULT_SIDES = ("right", "left")
MIN_HOLD, MAX_HOLD = 1.0, 3600.0
MIN_SPEED, MAX_SPEED = 0.5, 2.0

# Rough speech length for checks made before any audio exists (espeak's default rate).
WORDS_PER_MINUTE = 175.0
# Time inside a hold that cues cannot use, per chime: a chime may ring up to 2 s and the
# timeline keeps a little quiet around it; and the gap kept between cues (the timeline uses
# the same CUE_GAP). Checks made here are estimates; the timeline has the final word.
CHIME_CLEARANCE = 2.5
CUE_GAP = 0.5


@dataclass(frozen=True)
class Cue:
    """A line spoken during a hold, at `at` seconds into it, or spread evenly when None."""

    text: str
    at: float | None = None


@dataclass(frozen=True)
class Pose:
    name: str
    targets: str = ""
    setup: tuple[str, ...] = ()
    hold: float = DEFAULT_HOLD
    cues: tuple[Cue, ...] = ()
    release: tuple[str, ...] = ()


@dataclass(frozen=True)
class Routine:
    title: str
    poses: tuple[Pose, ...]
    description: str = ""
    credit: str = ""
    props: tuple[str, ...] = ()
    sides: tuple[str, ...] = DEFAULT_SIDES
    hold: float = DEFAULT_HOLD
    speed: float | None = None
    voice: str | None = None
    intro: tuple[str, ...] = ()
    outro: tuple[str, ...] = ()
    side_switch: tuple[str, ...] = ()
    chimes: dict[str, Path] = field(default_factory=dict)
    source: Path | None = None

    @property
    def name(self) -> str:
        return self.source.stem if self.source else self.title

    @property
    def total_hold_seconds(self) -> float:
        return sum(p.hold for p in self.poses) * max(1, len(self.sides))


def fill_placeholders(text: str, side: str | None, other_side: str | None) -> str:
    """Put the side names into a text; validation has already checked the placeholders."""
    return text.format(side=side or "", other_side=other_side or "")


def estimate_speech_seconds(text: str, speed: float = 1.0) -> float:
    """A rough speech length from the word count; only for checks before synthesis."""
    words = max(1, len(text.split()))
    return words * 60.0 / (WORDS_PER_MINUTE * speed) + 0.3
