"""Live playback of a timeline against an injected clock: on time, with pause, skip and back.

Like `sched.scheduler(timefunc, delayfunc)`, the player takes `clock` (monotonic seconds)
and `sleep` (seconds), so the same code runs on the wall clock or in simulated time. It
knows no terminal and no device: keys arrive through a `keys()` callable, sound leaves
through a sink, and what happens is reported to a `Listener` (the display).

Timing: every deadline is computed from one origin, `t0`, the clock time at which the
session's sample 0 would have played; segment k starts at `t0 + start_k / SAMPLE_RATE`.
A late wake-up never shifts anything after it, so no error builds up. Only a pause or a
jump moves the origin, by exactly the time paused or the distance jumped.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from coach.audio import SAMPLE_RATE
from coach.errors import AudioOutputError, UsageError
from coach.mixer import Segment
from coach.sinks import Sink
from coach.timeline import Event, Section, Timeline

# `b` within this many seconds of a section's start goes to the previous section;
# later than that it starts the current one again (like a music player's "previous").
BACK_GRACE = 3.0
# While paused with no display to refresh, how long one sleep lasts; a key still wakes a
# terminal sleep at once, so this only bounds how often an idle pause polls.
IDLE_SLICE = 0.5
# A wake-up this many seconds late means the process was stopped, not merely busy.
LATE_LIMIT = 1.0

PAUSE_KEYS = (" ", "p")
NEXT_KEYS = ("n",)
BACK_KEYS = ("b",)
QUIT_KEYS = ("q",)


@dataclass(frozen=True)
class Status:
    """Where the session is: position in session seconds (stops while paused)."""

    position: float
    paused: bool
    section: Section | None


@dataclass(frozen=True)
class Stop:
    """How run() ended: reason "end" (played to the end) or "quit" (the q key)."""

    reason: str
    position: float
    section: Section | None


class Listener:
    """What the player reports; the displays override what they show. All no-ops here.

    `refresh`: seconds between tick() calls while waiting, or None for no ticks (the
    player then sleeps straight to its next deadline).
    """

    refresh: float | None = None

    def event(self, event: Event, status: Status) -> None: ...

    def tick(self, status: Status) -> None: ...

    def paused(self, status: Status) -> None: ...

    def resumed(self, status: Status) -> None: ...

    def moved(self, status: Status) -> None: ...


@dataclass(frozen=True)
class _Item:
    """One thing due at `at` (samples): play segment `segment`, or announce `event`."""

    at: int
    segment: int | None = None
    event: Event | None = None


def _agenda(timeline: Timeline, segs: Sequence[Segment]) -> list[_Item]:
    items = [_Item(seg.start, segment=i) for i, seg in enumerate(segs)]
    items += [_Item(event.start, event=event) for event in timeline.events]
    # At equal times sound goes first, so announcing (printing) never delays it.
    return sorted(items, key=lambda item: (item.at, item.segment is None))


class Player:
    """Plays pre-mixed segments at their planned times; see the module docstring.

    buffers[i] is segment i's audio (float32, len == segs[i].length); a lazy sequence
    works: the player fetches the next buffer right after starting a sound, while it
    waits. on_sink_error(err) is called when the sink fails mid-session and returns the
    sink to go on with (or raises); without it the error propagates.
    """

    def __init__(self, timeline: Timeline, segs: Sequence[Segment], buffers: Sequence[np.ndarray],
                 sink: Sink, *, clock: Callable[[], float], sleep: Callable[[float], None],
                 keys: Callable[[], str | None] | None = None, listener: Listener | None = None,
                 on_sink_error: Callable[[AudioOutputError], Sink] | None = None) -> None:
        if len(buffers) != len(segs):
            raise ValueError(f"{len(segs)} segments but {len(buffers)} buffers")
        self.timeline = timeline
        self.segs = segs
        self.buffers = buffers
        self.sink = sink
        self.clock = clock
        self.sleep = sleep
        self.keys = keys
        self.listener = listener or Listener()
        self.on_sink_error = on_sink_error
        self._items = _agenda(timeline, segs)
        self._item_times = [item.at for item in self._items]
        self._section_starts = [s.start for s in timeline.sections]
        self._t0 = clock()  # so that position is 0, not nonsense, until run() starts
        self._cursor = 0
        self._paused_at: float | None = None
        self._prepared: tuple[int, np.ndarray] | None = None

    # --- where we are ---------------------------------------------------------------

    @property
    def position(self) -> float:
        """Session seconds: where the session is now (frozen while paused)."""
        if self._paused_at is not None:
            return self._paused_at
        return min(max(self.clock() - self._t0, 0.0), self.timeline.length_s)

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def section_at(self, position: float) -> Section | None:
        """The section that started last at or before `position`; None during the intro."""
        i = bisect.bisect_right(self._section_starts, _to_samples(position)) - 1
        return self.timeline.sections[i] if i >= 0 else None

    def status(self) -> Status:
        position = self.position
        return Status(position, self.paused, self.section_at(position))

    # --- running ----------------------------------------------------------------------

    def run(self, start: int = 0) -> Stop:
        """Play from sample `start` until the end of the session or the q key."""
        self._seek(start / SAMPLE_RATE)
        while True:
            if self.paused:
                deadline = math.inf
            elif self._cursor < len(self._items):
                deadline = self._t0 + self._items[self._cursor].at / SAMPLE_RATE
            else:
                deadline = self._t0 + self.timeline.length_s
            key = self._wait_until(deadline)
            if key is not None:
                if self._on_key(key):
                    self._stop_sound()
                    return self._stop("quit")
                continue
            late = self.clock() - deadline
            if late > LATE_LIMIT:
                # Stopped for a while (Ctrl-Z then fg, a suspended laptop): carry on from
                # where it was, as after a pause, instead of firing everything missed at once.
                self._t0 += late
            if self._cursor >= len(self._items):
                return self._stop("end")
            self._fire(self._items[self._cursor].at)

    def _stop(self, reason: str) -> Stop:
        status = self.status()
        return Stop(reason, status.position, status.section)

    def _wait_until(self, deadline: float) -> str | None:
        """Sleep until `deadline` (clock seconds); a key ends the wait early and is returned."""
        refresh = self.listener.refresh
        while True:
            key = self.keys() if self.keys is not None else None
            if key:
                return key
            left = deadline - self.clock()
            if left <= 0:
                return None
            if refresh is not None:
                self.listener.tick(self.status())
                left = min(left, refresh)
            elif math.isinf(left):
                left = IDLE_SLICE
            self.sleep(left)

    def _fire(self, at: int) -> None:
        """Everything due at sample `at`: sounds first, then announcements."""
        while self._cursor < len(self._items) and self._items[self._cursor].at == at:
            item = self._items[self._cursor]
            self._cursor += 1
            if item.segment is not None:
                self._play(item.segment, 0)
            else:
                self.listener.event(item.event, self.status())
        self._prepare_next()

    def _play(self, index: int, offset: int) -> None:
        buffer = self._buffer(index)
        self._sink_call("play", buffer[offset:] if offset else buffer)

    def _buffer(self, index: int) -> np.ndarray:
        if self._prepared is not None and self._prepared[0] == index:
            return self._prepared[1]
        return self.buffers[index]

    def _prepare_next(self) -> None:
        """Fetch (mix) the next segment's audio now, while there is time to spare."""
        for item in self._items[self._cursor:]:
            if item.segment is not None:
                if self._prepared is None or self._prepared[0] != item.segment:
                    self._prepared = (item.segment, self.buffers[item.segment])
                return

    def _stop_sound(self) -> None:
        self._sink_call("stop")

    def _sink_call(self, method: str, *args) -> None:
        try:
            getattr(self.sink, method)(*args)
        except AudioOutputError as err:
            if self.on_sink_error is None:
                raise
            self.sink = self.on_sink_error(err)
            getattr(self.sink, method)(*args)

    # --- moving -------------------------------------------------------------------------

    def _seek(self, position: float) -> None:
        """Go to `position` (session seconds): what starts there or later is still to come.

        A sound that began before `position` and is still going (resuming mid-cue) is
        played from that point at once, unless paused.
        """
        position = min(max(position, 0.0), self.timeline.length_s)
        at = _to_samples(position)
        self._cursor = bisect.bisect_left(self._item_times, at)
        if self.paused:
            self._paused_at = position
            return
        self._t0 = self.clock() - position
        for i, seg in enumerate(self.segs):
            if seg.start < at < seg.end:
                self._play(i, at - seg.start)
                break
        self._prepare_next()

    def _on_key(self, key: str) -> bool:
        """Act on one key; True means quit."""
        key = key.lower()
        if key in QUIT_KEYS:
            return True
        if key in PAUSE_KEYS:
            if self.paused:
                position, self._paused_at = self._paused_at, None
                self._seek(position)
                self.listener.resumed(self.status())
            else:
                self._paused_at = self.position
                self._stop_sound()
                self.listener.paused(self.status())
        elif key in NEXT_KEYS:
            self._jump(self.next_start(self.position))
        elif key in BACK_KEYS:
            self._jump(self.back_start(self.position))
        return False

    def _jump(self, position: float) -> None:
        self._stop_sound()
        self._seek(position)
        self.listener.moved(self.status())

    def next_start(self, position: float) -> float:
        """Where `n` goes: the next section's start; after the last pose, the end of it (the outro)."""
        at = _to_samples(position)
        for section in self.timeline.sections:
            if section.start > at:
                return section.start / SAMPLE_RATE
        last = self.timeline.sections[-1] if self.timeline.sections else None
        if last is not None and at < last.end:
            return last.end / SAMPLE_RATE
        return position

    def back_start(self, position: float) -> float:
        """Where `b` goes: this section's start, or the previous one's within BACK_GRACE of it."""
        current = self.section_at(position)
        if current is None:
            return 0.0
        if position - current.start / SAMPLE_RATE > BACK_GRACE:
            return current.start / SAMPLE_RATE
        if current.index == 0:
            return 0.0  # back from the first pose: the intro
        return self.timeline.sections[current.index - 1].start / SAMPLE_RATE


def _to_samples(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


# --- --from -----------------------------------------------------------------------------

def find_section(timeline: Timeline, spec: str) -> Section:
    """The section `--from` names: a pose number or name (any case, or a unique prefix),
    optionally with `:side`, e.g. "2", "leg across", "leg across:left". Without a side:
    that pose on the side the session starts with.
    """
    sections = timeline.sections
    if not sections:
        raise UsageError("--from: this routine has no poses to start from")
    poses = _poses(sections)
    sides = list(dict.fromkeys(s.side for s in sections if s.side))
    name, side = spec.strip(), None
    if ":" in name:
        name, _, side = (part.strip() for part in name.rpartition(":"))
        if side.lower() not in sides:
            known = ", ".join(sides) or "none (this routine has no sides)"
            raise UsageError(f"--from {spec!r}: unknown side {side!r}; sides: {known}")
        side = side.lower()
    number = _pose_number(name, poses, spec)
    for section in sections:
        if section.pose_number == number and (side is None or section.side == side):
            return section
    raise UsageError(f"--from {spec!r}: pose {number} has no {side} side in this session")


def _poses(sections: Sequence[Section]) -> dict[int, str]:
    return {s.pose_number: s.pose for s in sections}


def _pose_number(name: str, poses: dict[int, str], spec: str) -> int:
    if name.isdigit():
        if int(name) in poses:
            return int(name)
    else:
        wanted = " ".join(name.lower().split())
        exact = [n for n, pose in poses.items() if pose.lower() == wanted]
        if exact:
            return exact[0]
        prefixed = [n for n, pose in poses.items() if wanted and pose.lower().startswith(wanted)]
        if len(prefixed) == 1:
            return prefixed[0]
        if len(prefixed) > 1:
            raise UsageError(f"--from {spec!r} fits several poses: {_listing(poses, prefixed)}; "
                             "type more of the name")
    raise UsageError(f"--from {spec!r}: no such pose; choose a number or name: {_listing(poses)}")


def _listing(poses: dict[int, str], numbers: Sequence[int] | None = None) -> str:
    return ", ".join(f'{n} "{poses[n]}"' for n in (numbers or sorted(poses)))
