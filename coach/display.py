"""What the person sees, if they look: a rich live panel, or one plain line per event.

Both are player Listeners. `LiveDisplay` (stdout is a terminal, not --quiet) shows the
routine title, pose and side, a hold progress bar with the seconds left, what comes
next, elapsed and total time, and the keys. `LogDisplay` prints `[mm:ss] pose (side): text`
per event, flushed at once, so it reads well in a log file or through a pipe.
rich is imported only for the live panel: --quiet starts that much sooner.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import IO

from typing import TYPE_CHECKING

from coach.audio import SAMPLE_RATE
from coach.player import Listener, Status, Stop
from coach.timeline import Event, Section, Timeline

if TYPE_CHECKING:
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

KEY_HELP = "space pause/resume · n next pose · b back · -/+ speed · 9/0 volume · h keys aloud · q quit"
# What the h key says, for someone who cannot see the screen.
SPOKEN_KEYS = ("Keys: space pauses and resumes. N, next pose. B, back. Minus, slower. Plus, faster. "
               "Nine, quieter. Zero, louder. H, these keys. Q, quit.")
NO_KEY_HELP = "Ctrl-C to stop"
PANEL_WIDTH = 76


def format_clock(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def _resolved(value):
    """A display's starting value, given as itself or as a function that works it out."""
    return value() if callable(value) else value


def format_total(total: float, estimated: bool) -> str:
    """The session's length, `~07:22` while it is an estimate (not every clip is known yet)."""
    return ("~" if estimated else "") + format_clock(total)


def format_settings(status: Status) -> str:
    return f"speed {status.speed:g} · volume {round(status.volume * 100)}%"


def current_word(event: Event, at: float) -> int | None:
    """The index of the word of `event` being said at sample `at` (the last begun), or None."""
    current = None
    for i, word in enumerate(event.words):
        if word.start <= at:
            current = i
        else:
            break
    return current


def event_label(event: Event) -> str:
    """Who/where an event belongs to: "Leg up (right)", or its part ("intro", "outro")."""
    if event.pose:
        return f"{event.pose} ({event.side})" if event.side else event.pose
    return event.part


def event_text(event: Event) -> str:
    if event.kind == "chime":
        return f"(chime: {event.part.replace('_', ' ')})"
    return event.text


class LogDisplay(Listener):
    """One plain line per event, e.g. `[03:12] Leg up (right): (chime: midpoint)`."""

    def __init__(self, timeline: Timeline, title: str, stream: IO[str] | None = None,
                 total: tuple[float, bool] | Callable[[], tuple[float, bool]] | None = None) -> None:
        self.timeline = timeline
        self.title = title
        self.stream = stream
        self.total = total  # or how to work it out, when the title line is printed
        self.captions = False  # every spoken line is printed anyway: nothing to add

    def __enter__(self) -> LogDisplay:
        total = _resolved(self.total) or (self.timeline.length_s, False)
        self._line(f"{self.title} ({format_total(*total)})")
        return self

    def __exit__(self, *exc) -> None:
        return None

    def _line(self, text: str) -> None:
        stream = self.stream or sys.stdout
        print(text, file=stream, flush=True)

    def event(self, event: Event, status: Status) -> None:
        if event.kind == "hold":
            return  # the hold-start chime already marks it
        self._line(f"[{format_clock(event.start_s)}] {event_label(event)}: {event_text(event)}")

    def paused(self, status: Status) -> None:
        self._line(f"[{format_clock(status.position)}] paused")

    def resumed(self, status: Status) -> None:
        self._line(f"[{format_clock(status.position)}] resumed")

    def moved(self, status: Status) -> None:
        where = status.section.label if status.section else "the beginning"
        self._line(f"[{format_clock(status.position)}] moved to {where}")

    def changed(self, status: Status) -> None:
        self._line(f"[{format_clock(status.position)}] {format_settings(status)}")

    def ready(self, status: Status, waited: float) -> None:
        self._line(f"[{format_clock(status.position)}] waited {waited:.2f} s for speech to be ready")

    def note(self, text: str) -> None:
        self._line(f"Note: {text}")

    def replanned(self, timeline: Timeline) -> None:
        self.timeline = timeline

    def finish(self, stop: Stop) -> None:
        if stop.reason == "end":
            self._line(f"[{format_clock(stop.position)}] end of the session")


class LiveDisplay(Listener):
    """A rich panel redrawn a few times a second while the player waits."""

    # Seconds between redraws: often enough to follow the words while one is spoken.
    IDLE_REFRESH = 0.2
    WORDS_REFRESH = 0.08

    def __init__(self, timeline: Timeline, title: str, console: Console | None = None,
                 keys: bool = True, labels: list[str] | None = None,
                 first: Status | Callable[[], Status] | None = None, intro: bool = True,
                 stream: IO[str] | None = None) -> None:
        self.timeline = timeline
        self.labels = labels  # every section's label, known before its clips are (else the timeline's)
        self.title = title
        # rich (about 35 ms to import) is loaded when the panel is first drawn, not before:
        # a live session draws it once its first sound is playing (coach.live.GuardedListener).
        self.console = console
        self._stream = stream  # where a console made then writes (None: stdout)
        self.help = KEY_HELP if keys else NO_KEY_HELP
        self.captions = False  # no sound: print each spoken line above the panel as well
        self.now = ""
        self.speaking: Event | None = None  # the utterance last begun, whose words are marked
        self._live = None
        self._first = first  # drawn before the player's first status (or how to work it out)
        self._last = Status(0.0, False, None)
        self.intro = intro  # False: the session begins with its first pose (--from, minimal guidance)

    def __enter__(self) -> LiveDisplay:
        from rich.console import Console
        from rich.live import Live

        if self.console is None:
            self.console = Console(file=self._stream)
        self._live = Live(console=self.console, auto_refresh=False, transient=False,
                          redirect_stdout=True, redirect_stderr=True)
        self._last = _resolved(self._first) or self._last
        self._live.update(self.render(self._last))
        self._live.start(refresh=True)
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(OSError):  # the terminal has hung up: nothing to tidy on it
            if self._live is not None:
                self._live.stop()

    def _show(self, status: Status) -> None:
        self._last = status
        self._live.update(self.render(status), refresh=True)

    def event(self, event: Event, status: Status) -> None:
        if event.kind == "speech":
            self.now = event.text
            self.speaking = event
            if self.captions:
                self._live.console.print(f"[{format_clock(event.start_s)}] {event_label(event)}: {event.text}",
                                         markup=False, highlight=False)
        self._show(status)

    def tick(self, status: Status) -> None:
        self._show(status)

    paused = resumed = moved = changed = preparing = tick

    def ready(self, status: Status, waited: float) -> None:
        self.tick(status)

    def note(self, text: str) -> None:
        self._live.console.print(f"Note: {text}", markup=False, highlight=False)

    def replanned(self, timeline: Timeline) -> None:
        self.timeline = timeline

    def finish(self, stop: Stop) -> None:
        if stop.reason == "end":
            self.now = "The session is complete."
            self.speaking = None
        self._show(replace(self._last, position=stop.position, paused=False, preparing=False,
                           section=stop.section))

    def render(self, status: Status) -> Panel:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        position = status.position
        section = status.section
        at = position * SAMPLE_RATE
        count = len(self.labels) if self.labels is not None else len(self.timeline.sections)
        closing = section is not None and section.index == count - 1 and at >= section.end
        if section is None and not self.intro and count:
            heading = self._label(0)  # its first pose, before the timeline has reached it
        elif section is None:
            heading = "Introduction"
        elif closing:
            heading = "Closing"
        else:
            heading = section.label

        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", style="dim")
        grid.add_column()
        grid.add_row("Pose", Text(heading, style="bold"))
        if section is not None and not closing:
            grid.add_row("Hold", self._hold(section, at))
        if status.preparing:
            grid.add_row("Now", Text("Preparing speech…", style="italic"))
        else:
            grid.add_row("Now", self._now(at))
        grid.add_row("Next", Text(self._next(section, closing)))
        total = status.total if status.total is not None else self.timeline.length_s
        clock = f"{format_clock(position)} / {format_total(total, status.estimated)}"
        grid.add_row("Time", Text(clock + ("   PAUSED" if status.paused else ""),
                                  style="bold yellow" if status.paused else ""))
        grid.add_row("Voice", Text(format_settings(status)))
        # A fixed width, so the panel does not jump about as the texts change.
        return Panel(Group(grid, Text(self.help, style="dim")), title=Text(self.title),
                     width=min(self.console.width, PANEL_WIDTH))

    @property
    def refresh(self) -> float:
        speaking = self.speaking
        if speaking is not None and speaking.words and self._last.position * SAMPLE_RATE < speaking.end:
            return self.WORDS_REFRESH
        return self.IDLE_REFRESH

    def _now(self, at: float):
        """The phrase being said, its current word marked (the words' times are on the event)."""
        from rich.text import Text

        event = self.speaking
        if event is None or not event.words or not event.start <= at < event.end:
            return Text(self.now, overflow="fold")
        current = current_word(event, at)
        text = Text(overflow="fold")
        for i, word in enumerate(event.words):
            if i:
                text.append(" ")
            text.append(word.text, style="bold reverse" if i == current else "")
        return text

    def _hold(self, section: Section, at: float) -> Table:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        length = section.hold_length
        done = min(max(at - section.hold_start, 0.0), length)
        left = math.ceil((length - done) / SAMPLE_RATE) if at >= section.hold_start else length / SAMPLE_RATE
        row = Table.grid(padding=(0, 1))
        row.add_row(ProgressBar(total=length, completed=done, width=30),
                    Text(f"{left:.0f} s left" if at >= section.hold_start else f"{left:g} s, coming up"))
        return row

    def _label(self, index: int) -> str:
        labels = self.labels if self.labels is not None else [s.label for s in self.timeline.sections]
        return labels[index] if index < len(labels) else "closing words"

    def _next(self, section: Section | None, closing: bool) -> str:
        if closing:
            return "end of the session"
        if section is None:
            return self._label(0 if self.intro else 1)
        return self._label(section.index + 1)
