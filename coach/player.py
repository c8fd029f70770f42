"""Live playback of a timeline against an injected clock: on time, with pause, skip and back.

Like `sched.scheduler(timefunc, delayfunc)`, the player takes `clock` (monotonic seconds)
and `sleep` (seconds), so the same code runs on the wall clock or in simulated time. It
knows no terminal and no device: keys arrive through a `keys()` callable, sound leaves
through a sink, and what happens is reported to a `Listener` (the display).

Timing: every deadline is computed from one origin, `t0`, the clock time at which the
session's sample 0 would have played; segment k starts at `t0 + start_k / SAMPLE_RATE`.
A late wake-up never shifts anything after it, so no error builds up. Only a pause, a
jump or a wait for speech moves the origin, by exactly the time paused or waited or the
distance jumped. The clock starts when the first sound has been handed to the device
(when it says: when that sound is due), and again after a wait for speech.

A sink with a `lead` (miniaudio) is handed each segment that long before it is due,
with its due time, and its own clock places it: then a late wake-up of this process, or
a slow call into the device, no longer makes a sound late. A key pressed meanwhile
(pause, a jump, the volume) takes back or hands over again what is affected.

What is played comes from a `Plan`: a fixed timeline (`FixedPlan`), or one that grows as
speech is synthesized and follows a change of voice speed (coach.live_plan). When the
playhead reaches the end of a plan that is not complete yet, the player waits there (the
plan only ever ends before a spoken line, never inside a hold) and says so.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from coach.audio import SAMPLE_RATE
from coach.errors import AudioOutputError, UsageError
from coach.mixer import Segment
from coach.sinks import Sink, close_quietly
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
SLOWER_KEYS = ("-",)
FASTER_KEYS = ("+", "=")
QUIETER_KEYS = ("9",)
LOUDER_KEYS = ("0",)
HELP_KEYS = ("h",)
# Cues left out (a short --hold) that are named one by one, from the start or a speed key; then one line.
PLANNED_NOTES = 2
MORE_LEFT_OUT = ("more cues or countdowns are left out: they do not fit the holds at this length and speed; "
                 "`coach plan` with the same options lists them")
SPEED_STEP = 0.1
VOLUME_STEP = 0.1
# How often the player looks again whether speech it waits for is ready.
WAIT_POLL = 0.02
# Seconds between looks for new clips while the timeline is still growing.
GROW_POLL = 0.1
# A volume change on a sink with a lead takes effect this far ahead, where the device
# can splice it in without repeating or skipping a bit of the sound playing.
VOLUME_SPLICE = 0.4


@dataclass(frozen=True)
class Status:
    """Where the session is: position in session seconds (stops while paused or waiting).

    preparing: waiting for speech to be synthesized. total: the session's length in
    seconds, an estimate while `estimated` (not every clip is known yet). keys_aloud: the
    key list is being spoken (the h key); the session is paused meanwhile.
    """

    position: float
    paused: bool
    section: Section | None
    preparing: bool = False
    speed: float = 1.0
    volume: float = 1.0
    total: float | None = None
    estimated: bool = False
    keys_aloud: bool = False


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

    def changed(self, status: Status) -> None:
        """The speed or the volume changed."""

    def preparing(self, status: Status) -> None:
        """Playback waits for speech that is still being synthesized."""

    def ready(self, status: Status, waited: float) -> None:
        """...and goes on, `waited` seconds later (not called for the wait before the first sound)."""

    def note(self, text: str) -> None:
        """Something worth a line in the log (a cue left out after a speed change)."""

    def replanned(self, timeline: Timeline) -> None:
        """The plan grew or changed: the timeline played from now on."""


class Plan(Protocol):
    """What the player plays. `timeline` grows (never changing what comes before its end)
    and changes from a speed change on; refresh() takes in what is new and says whether
    anything is. total is the session length in seconds (an estimate until complete)."""

    timeline: Timeline
    speed: float

    def refresh(self, urgent: bool = False) -> bool: ...

    def segments(self) -> Sequence[Segment]: ...

    def buffer(self, segment: Segment) -> np.ndarray: ...

    def set_speed(self, speed: float, at: int) -> bool: ...

    def total(self) -> tuple[float, bool]: ...


class FixedPlan:
    """A timeline whose every clip is known, with its segments' buffers (a lazy sequence works)."""

    def __init__(self, timeline: Timeline, segs: Sequence[Segment], buffers: Sequence[np.ndarray],
                 speed: float = 1.0) -> None:
        if len(buffers) != len(segs):
            raise ValueError(f"{len(segs)} segments but {len(buffers)} buffers")
        self.timeline, self.segs, self.buffers, self.speed = timeline, segs, buffers, speed
        self._index = {seg.start: i for i, seg in enumerate(segs)}

    def refresh(self, urgent: bool = False) -> bool:
        return False

    def segments(self) -> Sequence[Segment]:
        return self.segs

    def buffer(self, segment: Segment) -> np.ndarray:
        return self.buffers[self._index[segment.start]]

    def set_speed(self, speed: float, at: int) -> bool:
        return False  # every clip is made at one speed

    def total(self) -> tuple[float, bool]:
        return self.timeline.length_s, False


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
    """Plays a plan's pre-mixed segments at their planned times; see the module docstring.

    Player(timeline, segs, buffers, sink, ...) plays a fixed timeline; Player.of(plan, sink,
    ...) a plan. The player fetches the next segment's buffer right after starting a
    sound, while it waits. on_sink_error(err) is called when the sink fails mid-session
    and returns the sink to go on with (or raises); without it the error propagates.
    help_sound() returns the spoken key list (the h key), or None. on_first_sound() is called
    once the first sound has been handed to the sink.
    """

    def __init__(self, timeline: Timeline | None, segs: Sequence[Segment] | None = None,
                 buffers: Sequence[np.ndarray] | None = None, sink: Sink | None = None, *,
                 clock: Callable[[], float], sleep: Callable[[float], None],
                 keys: Callable[[], str | None] | None = None, listener: Listener | None = None,
                 on_sink_error: Callable[[AudioOutputError], Sink] | None = None,
                 plan: Plan | None = None, help_sound: Callable[[], np.ndarray | None] | None = None,
                 volume_range: tuple[float, float] = (0.0, 1.0),
                 speed_range: tuple[float, float] = (0.5, 2.0),
                 on_first_sound: Callable[[], None] | None = None) -> None:
        self.plan = plan if plan is not None else FixedPlan(timeline, segs, buffers)
        self.sink = sink
        self.clock = clock
        self.sleep = sleep
        self.keys = keys
        self.listener = listener or Listener()
        self.on_sink_error = on_sink_error
        self.help_sound = help_sound
        self.volume_range = volume_range
        self.speed_range = speed_range
        self.on_first_sound = on_first_sound
        self.waits = 0  # times playback waited for speech (not counting before the first sound)
        self.waited = 0.0  # seconds spent so
        self.changed_settings = False  # the speed or volume was changed with a key
        self._replan()
        self._t0 = clock()  # so that position is 0, not nonsense, until run() starts
        self._cursor = 0
        self._next_at = 0  # items before this sample are done (fired or passed over)
        self._paused_at: float | None = None
        self._waiting_since: float | None = None  # clock time a wait for speech began
        self._waiting_at = 0  # the sample it waits at: the end of the plan then
        self._help_until: float | None = None  # clock time the spoken key list ends
        self._help_resumes = False  # ...and whether the session goes on then (it was playing)
        self._next_pending = 0  # n pressed before the next pose was known: go on that many once it is
        self._started = False  # the first sound has played
        self._anchor = False  # set the origin when the next sound has been handed to the device
        self._handed_upto = 0  # segments starting before this sample were handed to the sink ahead
        self._prepared: tuple[Segment, np.ndarray] | None = None
        self._tick_cost = 0.0  # seconds the last redraw took (slowly forgotten)
        self._told_fixed_speed = False  # a speed key in a session that keeps one speed was explained
        self._noted: set[str] = set()  # cues left out that were said (or summed up): see _note_left_out
        self._planned_notes = 0  # ...since the start or the last speed key

    @classmethod
    def of(cls, plan: Plan, sink: Sink, **kwargs) -> Player:
        return cls(None, sink=sink, plan=plan, **kwargs)

    @property
    def timeline(self) -> Timeline:
        return self._timeline

    def _replan(self) -> None:
        self._timeline = self.plan.timeline
        self.segs = self.plan.segments()
        self._items = _agenda(self._timeline, self.segs)
        self._item_times = [item.at for item in self._items]
        self._section_starts = [s.start for s in self._timeline.sections]

    def _refresh(self) -> None:
        """Take in what the plan has new (more clips, a changed speed): the rest of the agenda."""
        urgent = self._waiting_since is not None or self._cursor >= len(self._items) or self._next_pending
        if self.plan.refresh(urgent) or self.plan.timeline is not self._timeline:
            warnings = set(self._timeline.warnings)
            self._replan()
            self._cursor = bisect.bisect_left(self._item_times, self._next_at)
            for warning in self._timeline.warnings:
                if warning not in warnings:
                    self._note_left_out(warning)
            self.listener.replanned(self._timeline)
            where = self.position
            while self._next_pending:  # one pose on for each n pressed before it was known
                target = self.next_start(where)
                if target <= where:
                    if self._timeline.complete:
                        self._next_pending = 0
                    break
                left = self._next_pending - 1
                self._jump(target)
                self._next_pending, where = left, target

    def _note_left_out(self, warning: str) -> None:
        """A cue or countdown the timeline left out. A short --hold can leave out every cue, each
        found as the timeline grows (and found again after a speed key rebuilds it): each is
        said once, the first few by name, then one line for the rest (as `coach export` does;
        `coach plan` lists each). A speed key starts the count again: what it left out answers it."""
        if warning in self._noted:
            return
        self._noted.add(warning)
        self._planned_notes += 1
        if self._planned_notes <= PLANNED_NOTES:
            self.listener.note(warning)
        elif self._planned_notes == PLANNED_NOTES + 1:
            self.listener.note(MORE_LEFT_OUT)

    # --- where we are ---------------------------------------------------------------

    @property
    def position(self) -> float:
        """Session seconds: where the session is now (frozen while paused or waiting)."""
        if self._paused_at is not None:
            return self._paused_at
        if self._waiting_since is not None:
            return self._waiting_at / SAMPLE_RATE
        return min(max(self.clock() - self._t0, 0.0), self._timeline.length_s)

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    @property
    def volume(self) -> float:
        return getattr(self.sink, "volume", 1.0)

    def section_at(self, position: float) -> Section | None:
        """The section that started last at or before `position`; None during the intro."""
        i = bisect.bisect_right(self._section_starts, _to_samples(position)) - 1
        return self._timeline.sections[i] if i >= 0 else None

    def status(self) -> Status:
        position = self.position
        total, estimated = self.plan.total()
        return Status(position, self.paused, self.section_at(position), self._waiting_since is not None,
                      self.plan.speed, self.volume, total, estimated, self._help_until is not None)

    # --- running ----------------------------------------------------------------------

    def run(self, start: int = 0) -> Stop:
        """Play from sample `start` until the end of the session or the q key."""
        self._seek(start / SAMPLE_RATE)
        self._anchor = True
        while True:
            self._refresh()
            if self._help_until is not None:
                deadline = self._help_until
            elif self.paused:
                deadline = math.inf
            elif self._waiting_since is not None:
                deadline = self.clock() + WAIT_POLL
            elif self._cursor < len(self._items):
                deadline = self._t0 + self._items[self._cursor].at / SAMPLE_RATE
            else:
                deadline = self._t0 + self._timeline.length_s
            ahead = self._next_to_hand()
            hand_at = (self._t0 + ahead.start / SAMPLE_RATE - self._lead) if ahead is not None else math.inf
            target = min(deadline, hand_at)
            # While clips are still coming, look for new ones often: a sound beyond what is
            # known yet must be handed to the sink its lead ahead, not found when it is due.
            wake = target if self._timeline.complete else min(target, self.clock() + GROW_POLL)
            key = self._wait_until(wake)
            if key is not None:
                if self._on_key(key):
                    self._stop_sound()
                    return self._stop("quit")
                continue
            if wake < target and self.clock() < target:
                continue
            if self._help_until is not None:
                self._help_until = None
                if self._help_resumes and self.paused:
                    self._resume()
                continue
            if self._waiting_since is not None:
                self._refresh()
                if self._cursor < len(self._items) or self._timeline.complete:
                    self._end_wait()
                continue
            if hand_at < deadline:
                self._hand(ahead)
                continue
            late = self.clock() - deadline
            if late > LATE_LIMIT:
                # Stopped for a while (Ctrl-Z then fg, a suspended laptop): carry on from
                # where it was, as after a pause, instead of firing everything missed at once.
                self._t0 += late
            if self._cursor >= len(self._items):
                self._refresh()
                if self._cursor < len(self._items):
                    continue
                if self._timeline.complete:
                    return self._stop("end")
                self._begin_wait()
                continue
            self._fire(self._items[self._cursor].at)

    @property
    def _lead(self) -> float:
        return getattr(self.sink, "lead", 0.0)

    def _next_to_hand(self) -> Segment | None:
        """The next segment to hand to a sink with a lead, once the origin is set; else None."""
        if self._lead <= 0 or self._anchor or self.paused or self._waiting_since is not None \
                or self._help_until is not None:
            return None
        for item in self._items[self._cursor:]:
            if item.segment is not None and self.segs[item.segment].start >= self._handed_upto:
                return self.segs[item.segment]
        return None

    def _hand(self, segment: Segment) -> None:
        """Give the sink `segment` ahead of its time, with the clock time it is due."""
        self._handed_upto = segment.start + 1
        self._sink_call("play", self._buffer(segment), self._t0 + segment.start / SAMPLE_RATE)
        self._prepare_after(segment.start)

    def _begin_wait(self) -> None:
        self._waiting_since = self.clock()
        self._waiting_at = self._timeline.length
        if self._started:
            self.waits += 1
        self.listener.preparing(self.status())

    def _end_wait(self) -> None:
        waited = self.clock() - self._waiting_since
        self._waiting_since = None
        self._t0 = self.clock() - self._waiting_at / SAMPLE_RATE
        self._anchor = True  # the first sound after it sets the origin again, as at the start
        if self._started:
            self.waited += waited
            self.listener.ready(self.status(), waited)
        else:
            self.listener.tick(self.status())

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
            # A redraw just before a deadline would make the sound late by as long as the
            # redraw takes (on a loaded machine, a rich panel can take 100 ms): then skip it.
            if refresh is not None:
                if left > 2 * self._tick_cost + 0.005:
                    began = self.clock()
                    self.listener.tick(self.status())
                    self._tick_cost = max(self.clock() - began, 0.9 * self._tick_cost)
                    left = min(deadline - self.clock(), refresh)
                    if left <= 0:
                        return None
            elif math.isinf(left):
                left = IDLE_SLICE
            self.sleep(left)

    def _fire(self, at: int) -> None:
        """Everything due at sample `at`: sounds first, then announcements."""
        while self._cursor < len(self._items) and self._items[self._cursor].at == at:
            item = self._items[self._cursor]
            self._cursor += 1
            if item.segment is not None:
                if self.segs[item.segment].start >= self._handed_upto:
                    self._play(self.segs[item.segment], 0)
            else:
                self.listener.event(item.event, self.status())
        self._next_at = at + 1
        self._prepare_next()

    def _play(self, segment: Segment, offset: int, at: float | None = None, realign: bool = False) -> None:
        """Play `segment` from sample `offset` of it: now, or at clock time `at` (a sink with a lead).
        realign: set the origin from when the sink says it is due (a sound out of turn, at once)."""
        buffer = self._buffer(segment)
        due = self._sink_call("play", buffer[offset:] if offset else buffer, *(() if at is None else (at,)))
        self._handed_upto = max(self._handed_upto, segment.start + 1)
        if self._anchor or (realign and due is not None):
            # The clock starts once the device has the first sound, not when it was asked
            # for: opening a stream can take a while, and every later sound keeps its place.
            # A device that says when the sound is due sets it from that, at every sound
            # played at once (a resume), so what it is handed ahead lines up with it.
            self._anchor = False
            first = not self._started
            self._started = True
            self._t0 = (due if due is not None else self.clock()) - (segment.start + offset) / SAMPLE_RATE
            if first and self.on_first_sound is not None:
                self.on_first_sound()

    def _buffer(self, segment: Segment) -> np.ndarray:
        if self._prepared is not None and self._prepared[0] == segment:
            return self._prepared[1]
        return self.plan.buffer(segment)

    def _prepare_next(self) -> None:
        """Fetch (mix) the next segment's audio now, while there is time to spare."""
        self._prepare_after(self._handed_upto - 1)

    def _prepare_after(self, sample: int) -> None:
        for item in self._items[self._cursor:]:
            if item.segment is not None and self.segs[item.segment].start > sample:
                segment = self.segs[item.segment]
                if self._prepared is None or self._prepared[0] != segment:
                    self._prepared = (segment, self.plan.buffer(segment))
                return

    def _stop_sound(self) -> None:
        self._sink_call("stop")
        self._handed_upto = self._next_at  # what was handed ahead is taken back with it

    def _sink_call(self, method: str, *args):
        try:
            return getattr(self.sink, method)(*args)
        except AudioOutputError as err:
            if self.on_sink_error is None:
                raise
            lost, self.sink = self.sink, self.on_sink_error(err)
            # Closed on a thread of its own: a device that stopped answering may also not
            # close, and must not hold up the session (nor, left to the garbage collector,
            # the exit).
            threading.Thread(target=close_quietly, args=(lost,), name="close-lost-device", daemon=True).start()
            return getattr(self.sink, method)(*args)

    # --- moving -------------------------------------------------------------------------

    def _seek(self, position: float) -> None:
        """Go to `position` (session seconds): what starts there or later is still to come.

        A sound that began before `position` and is still going (resuming mid-cue) is
        played from that point at once, unless paused.
        """
        position = min(max(position, 0.0), self._timeline.length_s)
        at = _to_samples(position)
        self._cursor = bisect.bisect_left(self._item_times, at)
        self._next_at = at
        self._handed_upto = at
        if self.paused:
            self._paused_at = position
            return
        self._t0 = self.clock() - position
        for seg in self.segs:
            if seg.start < at < seg.end:
                self._play(seg, at - seg.start, realign=True)
                break
        self._prepare_next()

    def _resume(self) -> None:
        position, self._paused_at = self._paused_at, None
        self._seek(position)
        self.listener.resumed(self.status())

    def _on_key(self, key: str) -> bool:
        """Act on one key; True means quit."""
        stopped_at = getattr(key, "stopped_at", None)  # coach.keys.Resumed, after Ctrl-Z and fg
        if stopped_at is not None:
            self._resume_after_stop(key.resumed_at - stopped_at)
            return False
        key = key.lower()
        if key in QUIT_KEYS:
            return True
        if key in PAUSE_KEYS:
            if self._help_until is not None:
                self._help_until, self._help_resumes = None, False
                self._stop_sound()
            if self.paused:
                self._resume()
            else:
                self._pause()
        elif key in NEXT_KEYS:
            target = self.next_start(self.position)
            if target > self.position and not self._next_pending:
                self._jump(target)
            elif not self._timeline.complete:
                self._next_pending += 1  # the next pose is not known yet: go there once it is
        elif key in BACK_KEYS:
            self._jump(self.back_start(self.position))
        elif key in SLOWER_KEYS + FASTER_KEYS:
            self._change_speed(-SPEED_STEP if key in SLOWER_KEYS else SPEED_STEP)
        elif key in QUIETER_KEYS + LOUDER_KEYS:
            self._change_volume(-VOLUME_STEP if key in QUIETER_KEYS else VOLUME_STEP)
        elif key in HELP_KEYS:
            self._speak_help()
        return False

    def _resume_after_stop(self, stopped_for: float) -> None:
        """The process was stopped for `stopped_for` seconds (Ctrl-Z, then fg) and runs again:
        the session goes on as after a pause that long, from where it was when it stopped (a
        hold loses nothing of its length), and what was playing is placed again."""
        if self.paused or self._waiting_since is not None or self._help_until is not None or self._anchor:
            return  # nothing was playing by the clock: it goes on as it is
        self._t0 += max(stopped_for, 0.0)
        position = self.position
        self._stop_sound()
        self._seek(position)

    def _pause(self) -> None:
        if self._waiting_since is not None:
            self._end_wait()
        # Never past what is still to fire: a key read before the first sound (typed while
        # coach was starting) or while the player is late would otherwise resume beyond the
        # next item, playing its sound from an offset without ever announcing it.
        position = self.position
        if self._cursor < len(self._items):
            position = min(position, self._items[self._cursor].at / SAMPLE_RATE)
        self._paused_at = position
        self._stop_sound()
        self.listener.paused(self.status())

    def _jump(self, position: float) -> None:
        self._next_pending = 0
        self._stop_sound()
        if self._help_until is not None:
            # n or b while the key list is spoken: it ends, and the session goes on from there.
            self._help_until = None
            if self._help_resumes:
                self._paused_at = None
            self._help_resumes = False
        if self._waiting_since is not None:
            self._end_wait()
        # The first sound there is played at once and sets the clock from when the device
        # starts it (as at the start), so what follows keeps its distance from it.
        self._anchor = True
        self._seek(position)
        self.listener.moved(self.status())

    def _change_speed(self, step: float) -> None:
        lo, hi = self.speed_range
        speed = round(min(max(self.plan.speed + step, lo), hi), 2)
        if speed == self.plan.speed:
            return
        # From the next thing to start: what is playing finishes at its own speed, and so
        # does what was handed to the sink ahead.
        if self.plan.set_speed(speed, max(self._next_at, self._handed_upto, _to_samples(self.position))):
            self.changed_settings = True
            self._planned_notes = 0
            self._refresh()
            self.listener.changed(self.status())
        elif not self._told_fixed_speed and getattr(self.plan, "fixed_speed_note", None):
            # The key line offers -/+ here too: say once why nothing happens, rather than nothing.
            self._told_fixed_speed = True
            self.listener.note(self.plan.fixed_speed_note)

    def _change_volume(self, step: float) -> None:
        lo, hi = self.volume_range
        volume = round(min(max(self.volume + step, lo), hi), 2)
        if volume == self.volume:
            return
        self.sink.set_volume(volume)
        self.changed_settings = True
        if not self.paused and self._waiting_since is None:
            # What is sounding now goes on from here at the new volume: with a lead, from a
            # moment just ahead, placed by the device where the old one leaves off.
            when = self.clock() + min(self._lead, VOLUME_SPLICE) if self._lead > 0 and not self._anchor else None
            at = _to_samples((when if when is not None else self.clock()) - self._t0)
            self._handed_upto = self._next_at  # what was handed ahead goes again, louder or quieter
            for seg in self.segs:
                if seg.start < at < seg.end:
                    self._play(seg, at - seg.start, when)
                    break
        self.listener.changed(self.status())

    def _speak_help(self) -> None:
        """The key list aloud: the session pauses meanwhile and goes on after it (unless paused before)."""
        sound = self.help_sound() if self.help_sound is not None else None
        if sound is None or not len(sound):
            return
        self._help_resumes = not self.paused or self._help_resumes
        self._help_until = math.inf  # until it is playing: the listener is told it is being said
        if not self.paused:
            self._pause()
        else:
            self.listener.paused(self.status())
        self._sink_call("play", sound)
        self._help_until = self.clock() + len(sound) / SAMPLE_RATE

    def next_start(self, position: float) -> float:
        """Where `n` goes: the next section's start; after the last pose, the end of it (the outro);
        `position` itself while the next pose is not known yet."""
        at = _to_samples(position)
        for section in self._timeline.sections:
            if section.start > at:
                return section.start / SAMPLE_RATE
        last = self._timeline.sections[-1] if self._timeline.sections else None
        # Before the timeline is complete its last section ends before the next pose begins
        # (a pause between poses, or the part not made yet): the next pose is then not known.
        if last is not None and at < last.end and self._timeline.complete:
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
        return self._timeline.sections[current.index - 1].start / SAMPLE_RATE


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
    whole = " ".join(name.lower().split())
    # A pose whose own name holds a colon ("Stretch: hamstrings") is that pose, not a side.
    if ":" in name and not any(pose.lower() == whole for pose in poses.values()):
        name, side = _split_side(name, sides, spec)
    number = _pose_number(name, poses, spec)
    for section in sections:
        if section.pose_number == number and (side is None or section.side == side):
            return section
    own_sides = [s.side for s in sections if s.pose_number == number and s.side]
    if not own_sides:
        raise UsageError(f"--from {spec!r}: pose {number} ({poses[number]}) is done once, on no side; "
                         f"use --from {number}")
    raise UsageError(f"--from {spec!r}: pose {number} has no {side} side in this session; "
                     f"its sides: {', '.join(dict.fromkeys(own_sides))}")


def _split_side(text: str, sides: Sequence[str], spec: str) -> tuple[str, str]:
    """`text` ("pose:side") as the pose and one of `sides`, spelled as the routine spells it:
    the side as written, else in any case (sides are the routine's own names, such as "Left",
    and may hold a colon themselves)."""
    parts = text.split(":")
    for same in (lambda a, b: a == b, lambda a, b: a.casefold() == b.casefold()):
        for cut in range(1, len(parts)):
            wanted = ":".join(parts[cut:]).strip()
            found = [side for side in sides if same(side, wanted)]
            if len(found) == 1:
                return ":".join(parts[:cut]).strip(), found[0]
    known = ", ".join(sides) or "none (this routine has no sides)"
    raise UsageError(f"--from {spec!r}: unknown side {parts[-1].strip()!r}; sides: {known}")


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

