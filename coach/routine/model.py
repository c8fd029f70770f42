"""What a routine is: frozen data, no I/O. Loading and checking live in load.py and validate.py."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path

PLACEHOLDERS = ("side", "other_side")
CHIME_KINDS = ("hold_start", "midpoint", "side_switch", "rest_start", "rest_end")
DEFAULT_HOLD = 30.0
DEFAULT_SIDES = ("right", "left")
MIN_HOLD, MAX_HOLD = 1.0, 3600.0
# Seconds between the last setup line and the hold-start chime: time to move into the pose
# with eyes closed. Not scaled by the voice speed: the body does not move faster.
DEFAULT_SETTLE = 3.0
MAX_SETTLE = 120.0
# --minutes scales holds within bounds: at least 30 s by default ("hold each stretch for at
# least 30 seconds"), or the written hold when that is shorter; at most three times the hold.
DEFAULT_MIN_HOLD = 30.0
DEFAULT_MAX_HOLD_FACTOR = 3.0
GUIDANCE_LEVELS = ("full", "brief", "minimal")
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
    """A line spoken during a hold, at `at` seconds into it, or spread evenly when None.

    A detail cue is left out at `--guidance brief` (and every cue at minimal)."""

    text: str
    at: float | None = None
    detail: bool = False


@dataclass(frozen=True)
class Pose:
    """A pose, or a timed rest (`rest`): a rest has no midpoint chime and its own chimes.

    None means "as the routine says": `sides` (the routine's sides; () is done once),
    but a rest is done once), `settle`, `min_hold`, `max_hold`, `side_switch` (the lines spoken when the side changes
    before this pose). Adjacent poses with the same sides and `group` are done as one
    sequence on one side, then on the next.
    """

    name: str
    targets: str = ""
    setup: tuple[str, ...] = ()
    hold: float = DEFAULT_HOLD
    cues: tuple[Cue, ...] = ()
    release: tuple[str, ...] = ()
    sides: tuple[str, ...] | None = None
    rest: bool = False
    chimes: bool = True  # a rest's own chimes; False: a silent rest
    settle: float | None = None
    min_hold: float | None = None
    max_hold: float | None = None
    side_switch: tuple[str, ...] | None = None
    group: str = ""


@dataclass(frozen=True)
class Block:
    """Adjacent poses done as one sequence on each side in turn (or once, when no sides)."""

    pose_numbers: tuple[int, ...]  # 1-based, as in the file
    sides: tuple[str, ...]


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
    settle: float = DEFAULT_SETTLE
    min_hold: float | None = None
    max_hold: float | None = None
    language: str | None = None  # an espeak-ng language code such as "de"; picks the voice

    @property
    def name(self) -> str:
        return self.source.stem if self.source else self.title

    @property
    def total_hold_seconds(self) -> float:
        return sum(p.hold * max(1, len(self.sides_of(p))) for p in self.poses)

    def sides_of(self, pose: Pose) -> tuple[str, ...]:
        """The sides a pose is done on; () for once. A rest is done once unless it says."""
        if pose.sides is None:
            return () if pose.rest else self.sides
        return pose.sides

    def settle_of(self, pose: Pose) -> float:
        return self.settle if pose.settle is None else pose.settle

    def switch_lines_of(self, pose: Pose) -> tuple[str, ...]:
        return self.side_switch if pose.side_switch is None else pose.side_switch

    def hold_bounds(self, pose: Pose) -> tuple[float, float]:
        """The shortest and longest hold --minutes may give this pose."""
        low = _first(pose.min_hold, self.min_hold, min(DEFAULT_MIN_HOLD, pose.hold))
        high = _first(pose.max_hold, self.max_hold, min(MAX_HOLD, DEFAULT_MAX_HOLD_FACTOR * pose.hold))
        return low, max(low, high)

    @property
    def all_sides(self) -> tuple[str, ...]:
        """Every side some pose is done on, in the order they first appear."""
        found = [s for p in self.poses for s in self.sides_of(p)]
        return tuple(dict.fromkeys(found))

    def blocks(self) -> tuple[Block, ...]:
        """The poses in the order they are done: adjacent poses with the same sides and group
        form one block, done on each side in turn; a pose without sides is a block of its own."""
        blocks: list[Block] = []
        previous_key = None
        for number, pose in enumerate(self.poses, 1):
            sides = self.sides_of(pose)
            key = (sides, pose.group) if sides else None
            if key is not None and key == previous_key:
                blocks[-1] = Block(blocks[-1].pose_numbers + (number,), sides)
            else:
                blocks.append(Block((number,), sides))
            previous_key = key
        return tuple(blocks)


def _first(*values):
    return next(v for v in values if v is not None)


def fill_placeholders(text: str, side: str | None, other_side: str | None, sides: tuple[str, ...] = ()) -> str:
    """Put the side names into a text; validation has already checked the placeholders.

    `{side:rechte|linke}` gives the side's own form: one form per side, in the order of
    `sides` (the pose's, as written), so a language that inflects an adjective can say
    "die rechte Hand" where `{side}` alone would say "die Hand rechts"."""
    names = {"side": side, "other_side": other_side}
    out = []
    for literal, name, forms, _ in string.Formatter().parse(text):
        out.append(literal)
        if name is None:
            continue
        value = names[name]
        if forms and value in sides:
            value = forms.split("|")[sides.index(value)]
        out.append(value or "")
    return "".join(out)


def estimate_speech_seconds(text: str, speed: float = 1.0) -> float:
    """A rough speech length from the word count; only for checks before synthesis."""
    words = max(1, len(text.split()))
    return words * 60.0 / (WORDS_PER_MINUTE * speed) + 0.3
